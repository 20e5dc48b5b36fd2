"""The signal API against a real API server: authenticated, durable, deduplicated."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from aitrust.testing.cluster import wait_until
from aitrust.testing.payloads import LLMJACKING_STEPS, cloudtrail_llmjacking, falco_shell_event
from aitrust.testing.processes import ManagedProcess, free_port
from tests.conftest import Kubectl, OperatorFactory

TOKEN = "s3cr3t-token-for-falcosidekick"


def role_of(namespace: str) -> str:
    """One IAM role per test namespace: a role shared by workloads maps a record to all of them."""
    return f"arn:aws:iam::123456789012:role/agent-{namespace}"


def apply(kubectl: Kubectl, namespace: str, *objs: dict[str, Any]) -> None:
    kubectl.apply(namespace, *objs)


def setup_estate(kubectl: Kubectl, namespace: str) -> None:
    token = base64.b64encode(TOKEN.encode()).decode()
    apply(
        kubectl,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "signal-tokens"},
            "data": {"falcosidekick": token},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "agent", "annotations": {"eks.amazonaws.com/role-arn": role_of(namespace)}},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "agent-0", "labels": {"app": "agent"}},
            "spec": {
                "serviceAccountName": "agent",
                "containers": [{"name": "agent", "image": "registry.example.com/agent@sha256:" + "b" * 64}],
            },
        },
        {
            "apiVersion": "aitrust.dev/v1alpha1",
            "kind": "AIWorkload",
            "metadata": {"name": "agent"},
            "spec": {"kind": "agent", "selector": {"matchLabels": {"app": "agent"}}},
        },
    )


def falco_event(namespace: str, event_id: str | None = None) -> dict[str, Any]:
    return falco_shell_event(namespace, "agent-0", event_id)


def llmjacking(namespace: str) -> dict[str, Any]:
    # Five of the steps: the sequence escalates from three on.
    return cloudtrail_llmjacking(role_of(namespace), LLMJACKING_STEPS[:3] + LLMJACKING_STEPS[4:])


@pytest.fixture
def signal_api(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> tuple[str, ManagedProcess, OperatorFactory]:
    setup_estate(kubectl, namespace)
    port = free_port()
    args = (
        f"--signals-port={port}",
        "--signals-host=127.0.0.1",
        f"--signals-token-secret={namespace}/signal-tokens",
    )
    proc = start_operator(*args)
    wait_until(
        lambda: kubectl.json("get", "aiw", "agent", "-n", namespace).get("status", {}).get("tier"), timeout=15
    )
    return f"http://127.0.0.1:{port}", proc, lambda: start_operator(*args)


def status(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    result: dict[str, Any] = kubectl.json("get", "aiw", "agent", "-n", namespace).get("status", {})
    return result


def post(url: str, path: str, body: Any, token: str | None = TOKEN, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(url + path, json=body, headers=headers, timeout=10, **kw)


def test_falco_alert_lowers_trust_and_counts_once(
    kubectl: Kubectl, namespace: str, signal_api: tuple[str, ManagedProcess, Any]
) -> None:
    url, _, _ = signal_api
    before = status(kubectl, namespace)
    event = falco_event(namespace)

    r = post(url, "/v1/signals/falco", event)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1
    assert r.json()["matched"] == [{"id": event["uuid"], "workloads": [f"{namespace}/agent"]}]
    # A 2xx means it is in the API server (the journal); status follows within moments.
    after = wait_until(
        lambda: (s := status(kubectl, namespace)).get("signals") and s, timeout=5, interval=0.02
    )
    assert [s["id"] for s in after["signals"]] == [event["uuid"]]
    assert after["trustScore"] < before["trustScore"]

    def journaled() -> bool:
        records = kubectl.json("get", "configmaps", "-A", "-l", "aitrust.dev/journal=signals")["items"]
        return any(event["uuid"] in json.dumps(r.get("data")) for r in records)

    wait_until(lambda: not journaled(), timeout=5)  # applied: its journal record is deleted
    assert any(f["source"] == "signal" for f in after["factors"])

    again = post(url, "/v1/signals/falco", event)
    assert again.status_code == 200 and again.json()["accepted"] == 0 and again.json()["duplicates"] == 1
    assert len(status(kubectl, namespace)["signals"]) == 1


def rejected_falco(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    wanted = 'aitrust_signals_total{result="rejected",source="falco"}'
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.replace(" ", "") in (wanted, 'aitrust_signals_total{source="falco",result="rejected"}'):
            return float(value)
    return 0.0


def test_unauthenticated_and_malformed_requests_change_nothing(
    kubectl: Kubectl, namespace: str, signal_api: tuple[str, ManagedProcess, Any]
) -> None:
    url, _, _ = signal_api
    before = status(kubectl, namespace)
    rejected_before = rejected_falco(url)
    assert post(url, "/v1/signals/falco", falco_event(namespace), token=None).status_code == 401
    assert (
        post(url, "/v1/signals/falco", falco_event(namespace), token="wrong-token-wrong-token").status_code
        == 401
    )

    bad = falco_event(namespace)
    del bad["rule"]
    r = post(url, "/v1/signals/falco", bad)
    assert r.status_code == 400 and "rule" in r.json()["path"]
    r = httpx.post(
        url + "/v1/signals/falco",
        content=b"{not json",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    r = httpx.post(
        url + "/v1/signals/falco",
        content=b"x",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"},
    )
    assert r.status_code == 415
    r = httpx.post(
        url + "/v1/signals/falco",
        content=b"[" + b"1," * (1 << 20) + b"1]",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    # Every refusal counts (the alert AITrustSignalsRejected reads it): 401 twice, 400 twice, 415, 413.
    assert rejected_falco(url) - rejected_before == 6
    after = status(kubectl, namespace)
    assert after.get("signals", []) == before.get("signals", [])
    assert after["trustScore"] == before["trustScore"]


def test_llmjacking_from_the_irsa_role_quarantines(
    kubectl: Kubectl, namespace: str, signal_api: tuple[str, ManagedProcess, Any]
) -> None:
    url, _, _ = signal_api
    r = post(url, "/v1/signals/cloudtrail", llmjacking(namespace))
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 5
    wait_until(lambda: status(kubectl, namespace).get("tier") == "quarantined", timeout=5)
    assert status(kubectl, namespace)["quarantine"]["active"] is True


def test_kill_9_right_after_ack_loses_nothing(
    kubectl: Kubectl, namespace: str, signal_api: tuple[str, ManagedProcess, Any]
) -> None:
    url, proc, restart = signal_api
    ids = []
    for _ in range(5):
        event = falco_event(namespace)
        assert post(url, "/v1/signals/falco", event).status_code == 200
        ids.append(event["uuid"])
    proc.kill()  # SIGKILL: no shutdown hooks
    restart()
    # In status already, or replayed from the journal by the restarted operator.
    wait_until(
        lambda: set(ids) <= {s["id"] for s in status(kubectl, namespace).get("signals", [])}, timeout=15
    )
    wait_until(lambda: status(kubectl, namespace).get("tier") != "trusted", timeout=10)
