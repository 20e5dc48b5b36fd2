"""Apply rendered NetworkPolicies: write only on difference, never touch what we do not own."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes.client.exceptions import ApiException

from aitrust.kube.client import FIELD_MANAGER, Kube, drain, raw_json
from aitrust.render.hashing import SPEC_HASH_ANNOTATION

MANAGED_BY = ("app.kubernetes.io/managed-by", "aitrust")

Outcome = Literal["created", "updated", "unchanged", "foreign", "deleted", "absent"]


@dataclass(frozen=True)
class ApplyResult:
    name: str
    outcome: Outcome


def is_ours(live: dict[str, Any]) -> bool:
    labels = (live.get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY[0]) == MANAGED_BY[1]


def _differs(live: dict[str, Any], desired: dict[str, Any]) -> bool:
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


def matches_desired(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    return is_ours(live) and not _differs(live, desired)


def policy_fingerprint(policy: dict[str, Any]) -> str:
    """A digest of what ``_differs`` compares (our labels only): equal for a desired policy and
    its stored copy, different after any edit of ours. 64 bytes instead of the whole object."""
    meta = policy.get("metadata") or {}
    labels = sorted(
        (k, v)
        for k, v in (meta.get("labels") or {}).items()
        if k == MANAGED_BY[0] or k.startswith("aitrust.dev/")
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


def _normalise(spec: dict[str, Any]) -> str:
    return json.dumps(_prune(spec), sort_keys=True)


def _prune(value: Any) -> Any:
    # The API server omits empty lists (omitempty): `ingress: []` is stored as no `ingress` at all.
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v != []}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def apply_networkpolicy(
    kube: Kube, desired: dict[str, Any], live: dict[str, Any] | Literal[False] | None = False
) -> ApplyResult:
    """Create, update or leave the policy. ``live``: the stored object if the caller knows it
    (None: known absent), which saves the read; a stale guess costs a 409 and one retry."""
    ns, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
    if live is False:
        live = read_networkpolicy(kube, ns, name)
    try:
        return _write(kube, desired, live)
    except ApiException as exc:
        if exc.status != 409:
            raise
        return _write(kube, desired, read_networkpolicy(kube, ns, name))


def read_networkpolicy(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        live: dict[str, Any] = raw_json(
            kube.networking.read_namespaced_network_policy(name, namespace, _preload_content=False)
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return live


def list_managed_networkpolicies(kube: Kube, namespaces: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    selector = "=".join(MANAGED_BY)
    if namespaces:
        calls = [
            kube.networking.list_namespaced_network_policy(
                ns, label_selector=selector, _preload_content=False
            )
            for ns in namespaces
        ]
    else:
        calls = [
            kube.networking.list_network_policy_for_all_namespaces(
                label_selector=selector, _preload_content=False
            )
        ]
    return [i for raw in calls for i in raw_json(raw)["items"]]


def _write(kube: Kube, desired: dict[str, Any], live: dict[str, Any] | None) -> ApplyResult:
    ns, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
    if live is None:
        response = kube.networking.create_namespaced_network_policy(
            ns,
            desired,  # type: ignore[arg-type]
            field_manager=FIELD_MANAGER,
            _preload_content=False,
        )
        drain(response)
        return ApplyResult(name, "created")
    if not is_ours(live):
        return ApplyResult(name, "foreign")
    if not _differs(live, desired):
        return ApplyResult(name, "unchanged")
    body = dict(desired)
    body["metadata"] = {**desired["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]}
    response = kube.networking.replace_namespaced_network_policy(
        name,
        ns,
        body,  # type: ignore[arg-type]
        field_manager=FIELD_MANAGER,
        _preload_content=False,
    )
    drain(response)
    return ApplyResult(name, "updated")


def delete_networkpolicy(kube: Kube, namespace: str, name: str) -> ApplyResult:
    """Delete a policy only if it is ours."""
    try:
        live = raw_json(
            kube.networking.read_namespaced_network_policy(name, namespace, _preload_content=False)
        )
    except ApiException as exc:
        if exc.status == 404:
            return ApplyResult(name, "absent")
        raise
    if not is_ours(live):
        return ApplyResult(name, "foreign")
    try:
        drain(kube.networking.delete_namespaced_network_policy(name, namespace, _preload_content=False))
    except ApiException as exc:
        if exc.status != 404:
            raise
    return ApplyResult(name, "deleted")
