"""Apply rendered NetworkPolicies: write only on difference, never touch what we do not own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes.client.exceptions import ApiException

from aitrust.kube.client import FIELD_MANAGER, Kube, raw_json
from aitrust.render.drift import is_ours, policy_differs
from aitrust.render.networkpolicy import MANAGED_BY, MANAGED_BY_LABEL

Outcome = Literal["created", "updated", "unchanged", "foreign", "deleted", "absent"]


@dataclass(frozen=True)
class ApplyResult:
    name: str
    outcome: Outcome
    resource_version: str | None = None  # of the stored object, when known: its watch echo carries it


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
    selector = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
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
        stored = await kube.aio.request("POST", _path(ns), desired, params=params)
        return ApplyResult(name, "created", _resource_version(stored))
    if not is_ours(live, desired["metadata"]["labels"]):
        return ApplyResult(name, "foreign")
    if not policy_differs(live, desired):
        return ApplyResult(name, "unchanged", _resource_version(live))
    body = dict(desired)
    body["metadata"] = {**desired["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]}
    stored = await kube.aio.request("PUT", _path(ns, name), body, params=params)
    return ApplyResult(name, "updated", _resource_version(stored))


def _resource_version(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    return rv if isinstance(rv, str) else None


async def delete_networkpolicy(
    kube: Kube, namespace: str, name: str, labels: Mapping[str, str]
) -> ApplyResult:
    """Delete a policy only if it is ours and generated for the object ``labels`` identify."""
    live = await read_networkpolicy(kube, namespace, name)
    if live is None:
        return ApplyResult(name, "absent")
    if not is_ours(live, labels):
        return ApplyResult(name, "foreign")
    try:
        await kube.aio.request("DELETE", _path(namespace, name))
    except ApiException as exc:
        if exc.status != 404:
            raise
    return ApplyResult(name, "deleted")
