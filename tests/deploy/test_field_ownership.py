"""Server-side apply by Argo CD or Flux does not fight the operator: on the real API server, the
operator's field manager owns only the status of the AIWorkloads users apply, and owns the
NetworkPolicies it generates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aitrust.kube.client import FIELD_MANAGER
from aitrust.testing.cluster import wait_until
from tests.conftest import Kubectl, OperatorFactory

pytestmark = pytest.mark.integration

GITOPS = "argocd-controller"  # the field manager a GitOps tool applies with

WORKLOAD = {
    "apiVersion": "aitrust.dev/v1alpha1",
    "kind": "AIWorkload",
    "metadata": {"name": "agent", "labels": {"team": "ml"}},
    "spec": {"kind": "agent", "selector": {"matchLabels": {"app": "agent"}}},
}
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "agent-0", "labels": {"app": "agent"}},
    "spec": {"containers": [{"name": "agent", "image": "registry.example.com/agent@sha256:" + "c" * 64}]},
}


NP_GET = ("get", "networkpolicy", "aitrust-agent")


def _apply(kubectl: Kubectl, namespace: str, obj: dict[str, Any]) -> Any:
    # No --force-conflicts: a field the operator had taken would make this fail.
    return kubectl.run(
        "apply",
        "--server-side",
        f"--field-manager={GITOPS}",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(obj),
    )


def _managed(obj: dict[str, Any]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = obj["metadata"].get("managedFields") or []
    return entries


def test_operator_owns_only_status_and_its_network_policies(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    _apply(kubectl, namespace, POD)
    _apply(kubectl, namespace, WORKLOAD)
    start_operator("--default-policy-mode=enforce")
    wait_until(
        lambda: kubectl.json("get", "aiw", "agent", "-n", namespace).get("status", {}).get("tier"), timeout=30
    )
    policy = wait_until(
        lambda: (
            (
                p := kubectl.run(*NP_GET, "-n", namespace, "-o", "json", "--show-managed-fields", check=False)
            ).returncode
            == 0
            and json.loads(p.stdout)
        ),
        timeout=30,
    )

    workload = kubectl.json("get", "aiw", "agent", "-n", namespace, "--show-managed-fields")
    ours = [e for e in _managed(workload) if e["manager"] == FIELD_MANAGER]
    assert ours, f"no {FIELD_MANAGER} entry: {_managed(workload)}"
    for entry in ours:
        assert entry.get("subresource") == "status", entry
        assert set(entry["fieldsV1"]) == {"f:status"}, entry["fieldsV1"]
    spec_owners = {e["manager"] for e in _managed(workload) if "f:spec" in e.get("fieldsV1", {})}
    assert spec_owners == {GITOPS}
    # Nothing else writes the user's object (kopf neither: no finalizers, annotations or status).
    assert {e["manager"] for e in _managed(workload)} == {GITOPS, FIELD_MANAGER}
    assert not workload["metadata"].get("finalizers")

    policy_managers = {e["manager"] for e in _managed(policy)}
    assert policy_managers == {FIELD_MANAGER}
    owned = next(e["fieldsV1"] for e in _managed(policy) if e["manager"] == FIELD_MANAGER)
    assert "f:spec" in owned

    # The GitOps tool re-applies a changed spec: no conflict, and the operator's status stays.
    changed = json.loads(json.dumps(WORKLOAD))
    changed["metadata"]["labels"]["team"] = "platform"
    _apply(kubectl, namespace, changed)
    after = kubectl.json("get", "aiw", "agent", "-n", namespace)
    assert after["metadata"]["labels"]["team"] == "platform"
    assert after["status"].get("tier")
