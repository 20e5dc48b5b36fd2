"""The metric contract of issue #6, read from a running operator's /metrics.

The operator reconciles a workload in enforce mode, ingests a signal, finds a shadow AI pod and
fails to push to an unreachable OPA, so that every labelled series exists; then every contract
name must be exposed with exactly its documented label names, and no label value may be a pod
name (labels stay bounded).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aitrust.testing.cluster import wait_until
from aitrust.testing.processes import free_port
from tests.conftest import Kubectl, OperatorFactory
from tests.deploy.contract import METRICS
from tests.integration.test_signals import TOKEN, falco_event, setup_estate

pytestmark = pytest.mark.integration

# Issue #6, "Metrics": name -> (type, label names). Histograms and gauges without labels too.
CONTRACT: dict[str, tuple[str, frozenset[str]]] = {
    "aitrust_trust_score": ("gauge", frozenset({"namespace", "workload"})),
    "aitrust_workload_tier": ("gauge", frozenset({"namespace", "workload", "tier"})),
    "aitrust_workloads": ("gauge", frozenset({"tier", "mode"})),
    "aitrust_signals_total": ("counter", frozenset({"source", "result"})),
    "aitrust_enforcement_latency_seconds": ("histogram", frozenset()),
    "aitrust_opa_sync_errors_total": ("counter", frozenset({"target"})),
    "aitrust_reconcile_errors_total": ("counter", frozenset({"kind"})),
    "aitrust_shadow_ai_workloads": ("gauge", frozenset({"namespace"})),
    "aitrust_build_info": ("gauge", frozenset({"version"})),
}
# Counters nothing in this run increments: their families must still be declared.
MAY_BE_EMPTY = {"aitrust_reconcile_errors_total"}

SHADOW_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "llm-under-the-desk", "labels": {"app": "llm-under-the-desk"}},
    "spec": {
        "containers": [
            {
                "name": "ollama",
                "image": "ollama/ollama:0.5.7",
                "ports": [{"containerPort": 11434}],
                "resources": {"limits": {"nvidia.com/gpu": "1"}},
            }
        ]
    },
}


def _family_name(name: str) -> str:
    """prometheus_client's parser names a counter family without its _total suffix."""
    return name.removesuffix("_total")


def _scrape(url: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(httpx.get(url, timeout=5).text)}


def test_contract_documents_the_same_labels() -> None:
    for name, (_, labels) in CONTRACT.items():
        assert METRICS[name] == labels, name


def test_every_contract_metric_is_exposed_with_its_labels(
    kubectl: Kubectl, namespace: str, start_operator: OperatorFactory
) -> None:
    setup_estate(kubectl, namespace)
    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(SHADOW_POD))
    metrics_port, signals_port, dead_opa = free_port(), free_port(), free_port()
    opa_url = f"http://127.0.0.1:{dead_opa}"
    start_operator(
        f"--metrics-port={metrics_port}",
        "--metrics-host=127.0.0.1",
        f"--signals-port={signals_port}",
        "--signals-host=127.0.0.1",
        f"--signals-token-secret={namespace}/signal-tokens",
        "--default-policy-mode=enforce",
        f"--opa-url={opa_url}",
    )
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    # Reconciled and enforced.
    wait_until(
        lambda: kubectl.json("get", "aiw", "agent", "-n", namespace).get("status", {}).get("trustScore"),
        timeout=30,
    )
    wait_until(
        lambda: (
            kubectl.run("get", "networkpolicy", "aitrust-agent", "-n", namespace, check=False).returncode == 0
        ),
        timeout=30,
    )
    # Ingested.
    r = httpx.post(
        f"http://127.0.0.1:{signals_port}/v1/signals/falco",
        json=falco_event(namespace),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1

    def all_series_present() -> dict[str, Any] | None:
        families = _scrape(url)
        for name in set(CONTRACT) - MAY_BE_EMPTY:
            family = families.get(_family_name(name))
            if family is None or not family.samples:
                return None
        return families

    families = wait_until(all_series_present, timeout=60, interval=0.5)

    for name, (kind, labels) in CONTRACT.items():
        family = families[_family_name(name)]
        assert family.type == kind, (name, family.type)
        assert family.documentation, f"{name} has no HELP text"
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue  # the client's creation timestamps carry the same labels; not a series we use
            expected = labels | {"le"} if sample.name.endswith("_bucket") else labels
            assert set(sample.labels) == expected, (sample.name, sample.labels)
    for name in MAY_BE_EMPTY:
        raw = httpx.get(url, timeout=5).text
        assert f"# TYPE {name} counter" in raw or f"# TYPE {_family_name(name)} counter" in raw, name

    # The values behind the series: this run's workload, signal, shadow pod and OPA target.
    def value(name: str, **labels: str) -> float:
        family = families[_family_name(name)]
        matches = [
            s.value
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        assert len(matches) == 1, (name, labels, family.samples)
        return float(matches[0])

    status = kubectl.json("get", "aiw", "agent", "-n", namespace)["status"]
    assert value("aitrust_workload_tier", namespace=namespace, workload="agent", tier=status["tier"]) == 1
    assert value("aitrust_signals_total", source="falco", result="accepted") >= 1
    assert value("aitrust_opa_sync_errors_total", target=opa_url) >= 1
    assert value("aitrust_shadow_ai_workloads", namespace=namespace) == 1
    results = {s.labels["result"] for s in families["aitrust_signals"].samples if s.name.endswith("_total")}
    assert results <= {"accepted", "unmatched", "rejected", "duplicate"}
    tiers = {s.labels["tier"] for s in families["aitrust_workloads"].samples}
    assert tiers <= {"trusted", "restricted", "quarantined"}

    # Bounded labels: no pod name anywhere in an aitrust series.
    pods = {p["metadata"]["name"] for p in kubectl.json("get", "pods", "-n", namespace)["items"]}
    assert {"agent-0", "llm-under-the-desk"} <= pods
    for family in families.values():
        if not family.name.startswith("aitrust_"):
            continue
        for sample in family.samples:
            for label, text in sample.labels.items():
                assert not any(pod in text for pod in pods), (sample.name, label, text)
