"""Two replicas on the real API server: both Ready, only the leader labelled for the signal
Service, and a graceful stop hands the Lease over.

No kubelet runs here: the Pods named by each instance's POD_NAME are plain API objects, which is
all the role labelling needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from aitrust.testing.cluster import LocalControlPlane
from aitrust.testing.processes import ManagedProcess, free_port, wait_for
from tests.conftest import Kubectl, operator_process

pytestmark = pytest.mark.integration

ROLE = "aitrust.dev/role"
LEASE = "aitrust-ha-test"


def _pod(name: str, role: str | None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "aitrust-operator"}
    if role:
        labels[ROLE] = role
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "operator", "image": "registry.example.com/aitrust:test"}]},
    }


def _role(kubectl: Kubectl, namespace: str, pod: str) -> str | None:
    labels: dict[str, str] = kubectl.json("get", "pod", pod, "-n", namespace)["metadata"].get("labels", {})
    return labels.get(ROLE)


def _lease(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    spec: dict[str, Any] = kubectl.json("get", "lease", LEASE, "-n", namespace)["spec"]
    return spec


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _replica(
    cp: LocalControlPlane, log_dir: Path, namespace: str, pod: str, health_port: int, *, wait: bool
) -> ManagedProcess:
    return operator_process(
        cp,
        log_dir,
        "--leader-elect",
        f"--leader-election-namespace={namespace}",
        f"--leader-election-lease={LEASE}",
        f"--health-port={health_port}",
        f"--namespace={namespace}",
        name=pod,
        env={"POD_NAME": pod, "POD_NAMESPACE": namespace},
        wait=wait,
    )


def test_standby_is_ready_leader_is_labelled_and_a_graceful_stop_hands_over(
    control_plane: LocalControlPlane, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    # Both Pods carry a stale leader label, as after a container restart that lost the Lease.
    kubectl.run(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": [_pod("op-a", "leader"), _pod("op-b", "leader")]}
        ),
    )
    port_a, port_b = free_port(), free_port()
    first = _replica(control_plane, tmp_path, namespace, "op-a", port_a, wait=True)
    second: ManagedProcess | None = None
    try:
        wait_for("op-a labelled leader", lambda: _role(kubectl, namespace, "op-a") == "leader", 60, [first])
        assert _lease(kubectl, namespace)["holderIdentity"] == "op-a"
        assert "aitrust.dev/role=standby" in first.log_path.read_text(), "standby first, then leader"
        assert _ready(port_a)

        second = _replica(control_plane, tmp_path, namespace, "op-b", port_b, wait=False)
        standby = second
        # The standby drops the stale label before it reports Ready, then stays Ready.
        wait_for(
            "op-b labelled standby", lambda: _role(kubectl, namespace, "op-b") == "standby", 60, [second]
        )
        wait_for("op-b /readyz", lambda: _ready(port_b), 60, [second])
        assert _lease(kubectl, namespace)["holderIdentity"] == "op-a", "the standby must not lead"
        assert "became the leader" not in standby.log_path.read_text()
        assert _role(kubectl, namespace, "op-a") == "leader"
        transitions = int(_lease(kubectl, namespace).get("leaseTransitions") or 0)

        # A graceful stop (SIGTERM, as the kubelet sends): the leader gives the Lease up on its way out.
        first.stop(timeout=30)
        assert not first.alive()
        assert "released the Lease" in first.log_path.read_text(), first.log_tail()
        assert _lease(kubectl, namespace).get("holderIdentity") in (None, "", "op-b")

        wait_for(
            "op-b takes the Lease",
            lambda: _lease(kubectl, namespace).get("holderIdentity") == "op-b",
            90,
            [second],
        )
        wait_for("op-b labelled leader", lambda: _role(kubectl, namespace, "op-b") == "leader", 90, [second])
        assert int(_lease(kubectl, namespace)["leaseTransitions"]) == transitions + 1
        assert _ready(port_b)
        assert "aitrust operator synced" in second.log_path.read_text()
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.stop()
                print(f"--- {proc.name} ---\n{proc.log_tail(60)}")
