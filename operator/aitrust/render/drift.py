"""Whether a stored NetworkPolicy is ours and still what we render: pure, for the shell's writes
and for recognising the watch echo of our own writes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from aitrust.render.hashing import SPEC_HASH_ANNOTATION
from aitrust.render.networkpolicy import MANAGED_BY, MANAGED_BY_LABEL, policy_owner


def is_ours(live: dict[str, Any], labels: Mapping[str, str] | None = None) -> bool:
    """Managed by aitrust and, given the identifying ``labels`` of the policy we mean to write,
    generated for that same workload or target. Names can collide (workload ``ingress-x`` and
    ModelEndpoint ``x``; a ModelEndpoint and a DataSource of one name): the second owner must
    neither overwrite nor delete the first one's policy."""
    live_labels = (live.get("metadata") or {}).get("labels") or {}
    if live_labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        return False
    return labels is None or policy_owner(live_labels) == policy_owner(labels)


def policy_differs(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Compare what we render with what is stored: spec, our labels, hash and owners."""
    lm, dm = live.get("metadata") or {}, desired["metadata"]
    if (lm.get("annotations") or {}).get(SPEC_HASH_ANNOTATION) != dm["annotations"][SPEC_HASH_ANNOTATION]:
        return True
    if any((lm.get("labels") or {}).get(k) != v for k, v in dm.get("labels", {}).items()):
        return True
    owners = [(o.get("uid"), o.get("kind")) for o in lm.get("ownerReferences") or []]
    if owners != [(o["uid"], o["kind"]) for o in dm.get("ownerReferences", [])]:
        return True
    # A manual edit keeps our hash annotation but changes the spec: compare the spec itself.
    return bool(_normalise(live.get("spec") or {}) != _normalise(desired["spec"]))


def policy_fingerprint(policy: dict[str, Any]) -> str:
    """A digest of what ``policy_differs`` compares (our labels only): equal for a desired policy and
    its stored copy, different after any edit of ours. 64 bytes instead of the whole object."""
    meta = policy.get("metadata") or {}
    labels = sorted(
        (k, v)
        for k, v in (meta.get("labels") or {}).items()
        if k == MANAGED_BY_LABEL or k.startswith("aitrust.dev/")
    )
    payload = [
        meta.get("namespace"),
        meta.get("name"),
        (meta.get("annotations") or {}).get(SPEC_HASH_ANNOTATION),
        [(o.get("uid"), o.get("kind")) for o in meta.get("ownerReferences") or []],
        labels,
        _prune(policy.get("spec") or {}),
    ]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


_DESIRED_FINGERPRINTS: dict[tuple[Any, Any, Any], str] = {}
_MAX_DESIRED_FINGERPRINTS = 50_000


def desired_fingerprint(policy: dict[str, Any]) -> str:
    """``policy_fingerprint`` of a policy we rendered, cached by namespace, name and spec hash.

    The hash covers spec, labels and owners, everything the fingerprint reads besides the name,
    so an unchanged render costs a dict lookup instead of walking a spec of hundreds of peers."""
    meta = policy.get("metadata") or {}
    spec_hash = (meta.get("annotations") or {}).get(SPEC_HASH_ANNOTATION)
    if spec_hash is None:
        return policy_fingerprint(policy)
    key = (meta.get("namespace"), meta.get("name"), spec_hash)
    found = _DESIRED_FINGERPRINTS.get(key)
    if found is None:
        if len(_DESIRED_FINGERPRINTS) >= _MAX_DESIRED_FINGERPRINTS:
            _DESIRED_FINGERPRINTS.clear()
        found = _DESIRED_FINGERPRINTS[key] = policy_fingerprint(policy)
    return found


def _normalise(spec: dict[str, Any]) -> str:
    return json.dumps(_prune(spec), sort_keys=True)


def _prune(value: Any) -> Any:
    # The API server omits empty lists (omitempty): `ingress: []` is stored as no `ingress` at all.
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v != []}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value
