"""Apply rendered NetworkPolicies: write only on difference, never touch what we do not own."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes.client.exceptions import ApiException

from aitrust.kube.client import FIELD_MANAGER, Kube, raw_json
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


async def apply_networkpolicy(
    kube: Kube, desired: dict[str, Any], live: dict[str, Any] | Literal[False] | None = False
) -> ApplyResult:
    """Create, update or leave the policy. ``live``: the stored object if the caller knows it
    (None: known absent), which saves the read; a stale guess costs a 409 and one retry.
    Runs on the event loop (``Kube.aio``): it is on the path from a signal to enforcement."""
    ns, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
    if live is False:
        live = await read_networkpolicy(kube, ns, name)
    try:
        return await _write(kube, desired, live)
    except ApiException as exc:
        if exc.status != 409:
            raise
        return await _write(kube, desired, await read_networkpolicy(kube, ns, name))


def _path(namespace: str, name: str = "") -> str:
    return f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies" + (f"/{name}" if name else "")


async def read_networkpolicy(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        live: dict[str, Any] = await kube.aio.request("GET", _path(namespace, name))
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


async def _write(kube: Kube, desired: dict[str, Any], live: dict[str, Any] | None) -> ApplyResult:
    ns, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
    params = {"fieldManager": FIELD_MANAGER}
    if live is None:
        await kube.aio.request("POST", _path(ns), desired, params=params)
        return ApplyResult(name, "created")
    if not is_ours(live):
        return ApplyResult(name, "foreign")
    if not _differs(live, desired):
        return ApplyResult(name, "unchanged")
    body = dict(desired)
    body["metadata"] = {**desired["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]}
    await kube.aio.request("PUT", _path(ns, name), body, params=params)
    return ApplyResult(name, "updated")


async def delete_networkpolicy(kube: Kube, namespace: str, name: str) -> ApplyResult:
    """Delete a policy only if it is ours."""
    live = await read_networkpolicy(kube, namespace, name)
    if live is None:
        return ApplyResult(name, "absent")
    if not is_ours(live):
        return ApplyResult(name, "foreign")
    try:
        await kube.aio.request("DELETE", _path(namespace, name))
    except ApiException as exc:
        if exc.status != 404:
            raise
    return ApplyResult(name, "deleted")
