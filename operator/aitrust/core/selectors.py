"""Label selectors as the API server's query strings (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from aitrust.api.v1alpha1 import LabelSelector


def render_label_selector(selector: LabelSelector) -> str:
    """The `labelSelector` query parameter equivalent to ``selector``."""
    parts = [f"{k}={v}" for k, v in sorted((selector.match_labels or {}).items())]
    for req in selector.match_expressions or []:
        values = ",".join(sorted(req.values or []))
        if req.operator == "In":
            parts.append(f"{req.key} in ({values})")
        elif req.operator == "NotIn":
            parts.append(f"{req.key} notin ({values})")
        elif req.operator == "Exists":
            parts.append(req.key)
        else:
            parts.append(f"!{req.key}")
    return ",".join(parts)


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics; an empty selector matches everything."""
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions or []:
        present = req.key in labels
        if req.operator == "In" and (not present or labels[req.key] not in (req.values or [])):
            return False
        if req.operator == "NotIn" and present and labels[req.key] in (req.values or []):
            return False
        if req.operator == "Exists" and not present:
            return False
        if req.operator == "DoesNotExist" and present:
            return False
    return True
