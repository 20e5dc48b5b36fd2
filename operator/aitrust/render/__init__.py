"""Pure renderers: effective trust in, plain Kubernetes manifests and OPA documents out."""
