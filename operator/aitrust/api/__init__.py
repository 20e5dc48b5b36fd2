"""The aitrust.dev/v1alpha1 API as pydantic models; the CRD YAML is generated from them."""
