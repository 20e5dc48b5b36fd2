from __future__ import annotations

import copy
from typing import Any

from aitrust.kube.networkpolicies import _differs, is_ours
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


def test_a_deny_all_policy_as_stored_is_not_drift() -> None:
    assert not _differs(stored(DESIRED), DESIRED)


def test_manual_edits_are_drift_even_with_our_hash() -> None:
    live = stored(DESIRED)
    live["spec"]["egress"] = [{}]
    assert _differs(live, DESIRED)
    other_owner = stored(DESIRED)
    other_owner["metadata"]["ownerReferences"] = [{"kind": "AIWorkload", "uid": "u2"}]
    assert _differs(other_owner, DESIRED)


def test_ownership_is_by_label() -> None:
    assert is_ours(stored(DESIRED))
    assert not is_ours({"metadata": {"labels": {"team": "x"}}})
