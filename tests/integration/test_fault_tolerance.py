"""The operator survives what production throws at it: API outages, and replicas that die."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aitrust.testing.cluster import LocalControlPlane, wait_until
from aitrust.testing.processes import free_port
from tests.conftest import Kubectl, install_crds, operator_process
from tests.integration.test_signals import TOKEN, falco_event, post, setup_estate


@pytest.fixture(scope="module")
def own_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalControlPlane]:
    """A control plane of its own: these tests stop its API server."""
    cp = LocalControlPlane(workdir=tmp_path_factory.mktemp("fault-cp")).start()
    try:
        install_crds(Kubectl(cp.kubeconfig))
        yield cp
    finally:
        cp.stop()


def new_namespace(kubectl: Kubectl, ns: str, estate: bool = True) -> None:
    kubectl.run("create", "namespace", ns)
    wait_until(lambda: kubectl.run("get", "sa", "default", "-n", ns, check=False).returncode == 0, timeout=30)
    if estate:
        setup_estate(kubectl, ns)


def signal_args(ns: str) -> tuple[int, tuple[str, ...]]:
    port = free_port()
    return port, (
        f"--signals-port={port}",
        "--signals-host=127.0.0.1",
        f"--signals-token-secret={ns}/signal-tokens",
    )


def status(kubectl: Kubectl, namespace: str, name: str = "agent") -> dict[str, Any]:
    result: dict[str, Any] = kubectl.json("get", "aiw", name, "-n", namespace).get("status", {})
    return result


def test_api_outage_gives_503_and_keeps_policies(
    own_control_plane: LocalControlPlane, tmp_path: Path
) -> None:
    kubectl = Kubectl(own_control_plane.kubeconfig)
    ns = "outage"
    new_namespace(kubectl, ns)
    port, args = signal_args(ns)
    proc = operator_process(own_control_plane, tmp_path, *args)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: (
                kubectl.run("get", "networkpolicy", "aitrust-agent", "-n", ns, check=False).returncode == 0
            ),
            timeout=20,
        )
        first = falco_event(ns)
        assert post(url, "/v1/signals/falco", first).status_code == 200
        wait_until(
            lambda: status(kubectl, ns).get("tier") == "quarantined" or status(kubectl, ns).get("signals"),
            timeout=10,
        )
        policy_before = kubectl.json("get", "networkpolicy", "aitrust-agent", "-n", ns)["spec"]

        own_control_plane.stop_apiserver()
        outage_started = time.monotonic()
        during = post(url, "/v1/signals/falco", falco_event(ns))
        assert during.status_code == 503, during.text
        while time.monotonic() - outage_started < 20:
            assert proc.alive(), proc.log_tail()
            time.sleep(1)
        own_control_plane.start_apiserver()

        assert proc.alive(), "the operator must ride out the outage without a restart"
        after = wait_until(
            lambda: (r := post(url, "/v1/signals/falco", falco_event(ns))).status_code == 200 and r,
            timeout=60,
            interval=1,
        )
        assert after.json()["accepted"] == 1
        policy_after = kubectl.json("get", "networkpolicy", "aitrust-agent", "-n", ns)["spec"]
        assert (
            policy_after["egress"] == policy_before["egress"] or status(kubectl, ns)["tier"] == "quarantined"
        )
    finally:
        proc.stop()
        print(proc.log_tail(60))


def test_two_replicas_one_leader_and_handover(own_control_plane: LocalControlPlane, tmp_path: Path) -> None:
    kubectl = Kubectl(own_control_plane.kubeconfig)
    ns = "ha"
    kubectl.run("create", "namespace", ns)
    args = ("--leader-elect", f"--leader-election-namespace={ns}")
    first = operator_process(own_control_plane, tmp_path, *args, name="replica-a")
    second = operator_process(own_control_plane, tmp_path, *args, name="replica-b", wait=False)
    try:
        time.sleep(3)
        leaders = [p for p in (first, second) if "became the leader" in p.log_path.read_text()]
        assert leaders == [first], "exactly one replica leads"
        assert "aitrust operator synced" not in second.log_path.read_text()

        def create(name: str) -> None:
            wl = {
                "apiVersion": "aitrust.dev/v1alpha1",
                "kind": "AIWorkload",
                "metadata": {"name": name},
                "spec": {"kind": "agent", "selector": {"matchLabels": {"app": name}}},
            }
            kubectl.run("apply", "-n", ns, "-f", "-", input=json.dumps(wl))

        create("before")
        wait_until(lambda: status(kubectl, ns, "before").get("tier"), timeout=15)
        first.kill()
        killed = time.monotonic()
        create("after")
        wait_until(lambda: status(kubectl, ns, "after").get("tier"), timeout=30, interval=0.5)
        handover = time.monotonic() - killed
        print(f"leader handover: {handover:.1f}s")
        assert "became the leader" in second.log_path.read_text()
        lease = kubectl.json("get", "lease", "aitrust-operator", "-n", ns)
        assert lease["spec"]["holderIdentity"] != ""
        assert lease["spec"]["leaseTransitions"] >= 1
    finally:
        first.stop()
        second.stop()


def test_signal_that_claims_to_raise_trust_has_no_effect(
    own_control_plane: LocalControlPlane, tmp_path: Path
) -> None:
    kubectl = Kubectl(own_control_plane.kubeconfig)
    ns = "boost"
    new_namespace(kubectl, ns)
    port, args = signal_args(ns)
    proc = operator_process(own_control_plane, tmp_path, *args)
    try:
        before = wait_until(lambda: status(kubectl, ns).get("trustScore"), timeout=15)
        event = {
            "specversion": "1.0",
            "id": "boost-1",
            "source": "attacker",
            "type": "dev.aitrust.signal",
            "datacontenttype": "application/json",
            "data": {
                "workload": {"namespace": ns, "name": "agent"},
                "severity": "info",
                "rule": "all good",
                "trustBoost": 50,
                "points": -80,
                "score": 100,
            },
        }
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/signals", json=event, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert r.status_code in (200, 400), r.text
        time.sleep(1)
        assert status(kubectl, ns)["trustScore"] <= before
        assert all(s["points"] >= 0 for s in status(kubectl, ns).get("signals", []))
    finally:
        proc.stop()


def test_kill_9_mid_stream_then_everything_reconverges(
    own_control_plane: LocalControlPlane, tmp_path: Path
) -> None:
    """Signals stream in while the operator is SIGKILLed; every acknowledged one survives."""
    import asyncio

    from aitrust.testing.cluster import OpaServer

    kubectl = Kubectl(own_control_plane.kubeconfig)
    ns = "midstream"
    new_namespace(kubectl, ns)
    opa = OpaServer(workdir=tmp_path / "opa").start()
    port, signals = signal_args(ns)
    args = (*signals, f"--opa-url={opa.url}")
    proc = operator_process(own_control_plane, tmp_path, *args, name="first")
    url = f"http://127.0.0.1:{port}/v1/signals/falco"
    acked: list[str] = []

    async def stream() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            for i in range(200):
                event = falco_event(ns)
                event["priority"] = "Informational"  # low points: the workload keeps streaming targets
                try:
                    r = await client.post(url, json=event, headers={"Authorization": f"Bearer {TOKEN}"})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    acked.append(event["uuid"])
                if i == 40:
                    proc.kill()  # SIGKILL in the middle of the stream

    try:
        asyncio.run(stream())
        assert len(acked) >= 40
        second = operator_process(own_control_plane, tmp_path, *args, name="second")
        try:
            # The successor replays the journal the killed one left behind; status keeps the latest 100.
            def missing() -> list[str]:
                recorded = {s["id"] for s in status(kubectl, ns).get("signals", [])}
                return [i for i in acked[-100:] if i not in recorded]

            try:
                wait_until(lambda: not missing(), timeout=20)
            except TimeoutError:
                raise AssertionError(f"{len(missing())} acknowledged signals lost") from None
            # Statuses, policies and OPA reconverge after the restart.
            wait_until(lambda: status(kubectl, ns).get("trustScore") is not None, timeout=15)
            wait_until(
                lambda: (
                    kubectl.run("get", "networkpolicy", "aitrust-agent", "-n", ns, check=False).returncode
                    == 0
                ),
                timeout=15,
            )

            def opa_has_workload() -> bool:
                r = httpx.get(f"{opa.url}/v1/data/aitrust_data/workloads/{ns}/agent")
                return bool(r.json().get("result"))

            wait_until(opa_has_workload, timeout=15)
        finally:
            second.stop()
    finally:
        proc.stop()
        opa.stop()


def test_selector_matching_500_pods_keeps_status_small(
    own_control_plane: LocalControlPlane, tmp_path: Path
) -> None:
    kubectl = Kubectl(own_control_plane.kubeconfig)
    ns = "big"
    new_namespace(kubectl, ns, estate=False)
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"worker-{i}", "labels": {"app": "swarm"}},
            "spec": {
                "containers": [
                    {
                        "name": f"c{j}",
                        "image": f"registry.example.com/agent-{i % 7}:latest",
                        "env": [{"name": "OPENAI_API_KEY", "value": "sk-leaked"}],
                    }
                    for j in range(3)
                ]
            },
        }
        for i in range(500)
    ]
    kubectl.run(
        "apply", "-n", ns, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": pods})
    )
    proc = operator_process(own_control_plane, tmp_path, name="big")
    try:
        wl = {
            "apiVersion": "aitrust.dev/v1alpha1",
            "kind": "AIWorkload",
            "metadata": {"name": "swarm"},
            "spec": {"kind": "agent", "selector": {"matchLabels": {"app": "swarm"}}},
        }
        kubectl.run("apply", "-n", ns, "-f", "-", input=json.dumps(wl))
        result = wait_until(
            lambda: (s := status(kubectl, ns, "swarm")).get("matchedPods") == 500 and s, timeout=60
        )
        assert sum(f["points"] for f in result["factors"]) == result["trustScore"]
        size = len(json.dumps(result))
        assert size < 32_000, f"status is {size} bytes for 500 pods"
        assert len(result["factors"]) <= 40
        assert proc.alive()
    finally:
        proc.stop()
