"""A rendered workload NetworkPolicy and what the API server stores of it, shared by tests."""

from __future__ import annotations

import copy
from typing import Any

from aitrust.render.hashing import SPEC_HASH_ANNOTATION

DESIRED: dict[str, Any] = {
    "metadata": {
        "name": "aitrust-agent",
        "namespace": "ml",
        "labels": {"app.kubernetes.io/managed-by": "aitrust", "aitrust.dev/workload": "agent"},
        "annotations": {SPEC_HASH_ANNOTATION: "h1"},
        "ownerReferences": [{"kind": "AIWorkload", "uid": "u1"}],
    },
    "spec": {
        "podSelector": {"matchLabels": {"app": "agent"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [],
        "egress": [],
    },
}


def stored(desired: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns: empty lists omitted, extra metadata added."""
    live = copy.deepcopy(desired)
    live["spec"] = {k: v for k, v in live["spec"].items() if v != []}
    live["metadata"]["resourceVersion"] = "42"
    live["metadata"]["labels"]["extra"] = "kept"
    return live
