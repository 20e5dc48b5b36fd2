"""aitrust: trust scoring and zero-trust enforcement for AI workloads on Kubernetes."""

__version__ = "0.1.0"
