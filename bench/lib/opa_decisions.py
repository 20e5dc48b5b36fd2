"""OPA decision latency with 10,000 workloads of data, rendered by aitrust's own renderer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from aitrust.api.v1alpha1 import AIWorkload, DataSource, Mode, ModelEndpoint, Tier, TrustPolicySpec
from aitrust.core.effective import EffectiveTrust, build_effective_trust
from aitrust.kube.opa import load_policies
from aitrust.render.opa import render_opa_data
from aitrust.testing.cluster import OpaServer

ROOT = Path(__file__).resolve().parents[2]
PER_NAMESPACE = 100


def synthetic_effective(count: int) -> list[EffectiveTrust]:
    """``count`` workloads in namespaces of 100: mostly trusted, some restricted, quarantined, audit.

    Each has its own service account except every tenth pair, which shares one (the Rego then
    combines several verdicts), and two grants: a ModelEndpoint and a confidential DataSource.
    """
    targets: dict[tuple[str, str, str], ModelEndpoint | DataSource] = {}
    effs = []
    for i in range(count):
        ns = f"team-{i // PER_NAMESPACE:03d}"
        if ("ModelEndpoint", ns, "llm") not in targets:
            targets[("ModelEndpoint", ns, "llm")] = ModelEndpoint.model_validate(
                {
                    "metadata": {"name": "llm", "namespace": ns},
                    "spec": {"provider": "in-cluster", "selector": {"matchLabels": {"app": "llm"}}},
                }
            )
            targets[("DataSource", ns, "docs")] = DataSource.model_validate(
                {
                    "metadata": {"name": "docs", "namespace": ns},
                    "spec": {
                        "type": "vector-db",
                        "minTier": "trusted",
                        "selector": {"matchLabels": {"app": "db"}},
                    },
                }
            )
        workload = AIWorkload.model_validate(
            {
                "metadata": {"name": f"wl-{i:05d}", "namespace": ns, "uid": f"uid-{i}"},
                "spec": {
                    "kind": "agent",
                    "selector": {"matchLabels": {"app": f"wl-{i:05d}"}},
                    "access": {"modelEndpoints": [{"name": "llm"}], "dataSources": [{"name": "docs"}]},
                },
            }
        )
        tier = Tier.QUARANTINED if i % 20 == 7 else Tier.RESTRICTED if i % 7 == 3 else Tier.TRUSTED
        score = {Tier.TRUSTED: 92, Tier.RESTRICTED: 64, Tier.QUARANTINED: 20}[tier]
        policy = TrustPolicySpec(mode=Mode.AUDIT if i % 10 == 9 else Mode.ENFORCE)
        sa = f"sa-{i - 1:05d}" if i % 10 == 1 else f"sa-{i:05d}"
        effs.append(build_effective_trust(workload, score, tier, policy, targets, service_accounts=[sa]))
    return effs


def decision_inputs(effs: list[EffectiveTrust]) -> list[dict[str, Any]]:
    """A spread of questions: by workload name, by service account, by SPIFFE id, allowed and denied."""
    out = []
    for j, eff in enumerate(effs[:: max(1, len(effs) // 1000)]):
        sa = eff.service_accounts[0]
        subject: dict[str, Any] = [
            {"namespace": eff.namespace, "workload": eff.name},
            {"namespace": eff.namespace, "serviceAccount": sa},
            {"spiffeId": f"spiffe://cluster.local/ns/{eff.namespace}/sa/{sa}"},
        ][j % 3]
        resource = (
            {"kind": "ModelEndpoint", "name": "llm"} if j % 2 else {"kind": "DataSource", "name": "docs"}
        )
        out.append({"input": {"subject": subject, "resource": resource, "action": "invoke"}})
    return out


@dataclass
class OpaResult:
    workloads: int
    data_bytes: int
    load_s: float
    roundtrip_ms: list[float]
    server_ms: list[float]  # OPA's own timer_server_handler_ns
    eval_ms: list[float]  # timer_rego_query_eval_ns
    allowed: int


def measure(workdir: Path, workloads: int = 10_000, requests: int = 3000) -> OpaResult:
    effs = synthetic_effective(workloads)
    data = render_opa_data(effs, revision="bench")
    server = OpaServer(workdir=workdir / "opa-decisions").start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            for policy_id, rego in load_policies(ROOT / "policies").items():
                r = client.put(f"/v1/policies/{policy_id}", content=rego.encode())
                r.raise_for_status()
            body = httpx.Request("PUT", "/", json=data).read()
            started = time.perf_counter()
            r = client.put("/v1/data/aitrust", content=body, headers={"Content-Type": "application/json"})
            r.raise_for_status()
            load_s = time.perf_counter() - started
            inputs = decision_inputs(effs)
            for body_in in inputs[:200]:  # warm up: compile and caches
                client.post("/v1/data/aitrust/authz/decision", json=body_in).raise_for_status()
            roundtrip, server_ms, eval_ms, allowed = [], [], [], 0
            for k in range(requests):
                t0 = time.perf_counter()
                r = client.post("/v1/data/aitrust/authz/decision?metrics=true", json=inputs[k % len(inputs)])
                roundtrip.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
                doc = r.json()
                metrics = doc.get("metrics", {})
                server_ms.append(metrics.get("timer_server_handler_ns", 0) / 1e6)
                eval_ms.append(metrics.get("timer_rego_query_eval_ns", 0) / 1e6)
                if "allow" not in doc.get("result", {}):
                    raise RuntimeError(f"no decision: {doc}")
                allowed += bool(doc["result"]["allow"])
    finally:
        server.stop()
    return OpaResult(workloads, len(body), load_s, roundtrip, server_ms, eval_ms, allowed)
