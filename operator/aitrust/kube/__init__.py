"""IO against the Kubernetes API (the imperative shell)."""
