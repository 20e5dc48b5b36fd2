"""The signal API: authenticated, bounded ingestion that commits to the Kubernetes API before it answers."""
