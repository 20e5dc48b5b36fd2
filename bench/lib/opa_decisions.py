"""OPA decision latency with 10,000 workloads of data, rendered by aitrust's own renderer."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from aitrust.api.v1alpha1 import AIWorkload, DataSource, Mode, ModelEndpoint, Tier, TrustPolicySpec
from aitrust.core.effective import EffectiveTrust, build_effective_trust
from aitrust.kube.opa import load_policies
from aitrust.render.opa import OPA_ROOT, render_opa_data
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
        resource, action = (
            ({"kind": "ModelEndpoint", "name": "llm"}, "invoke")
            if j % 2
            else ({"kind": "DataSource", "name": "docs"}, "read")
        )
        out.append({"input": {"subject": subject, "resource": resource, "action": action}})
    return out


class OneWriteClient:
    """A minimal HTTP/1.1 keep-alive client that sends each request, headers and body, in one write.

    OPA's ``timer_server_handler_ns`` starts once the request headers are read, so a client that
    writes the body separately (httpx and http.client both do) adds to it however long Python
    takes between the two writes: tens of microseconds, and milliseconds whenever the client is
    descheduled on a busy machine. That is the client's time, not the decision's; PEPs written in
    Go (net/http flushes headers and a small body together) or Envoy never show it.
    """

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host = host
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def post_json(self, path: str, body: bytes) -> tuple[int, Any]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + body)
        status = int(self.reader.readline().split()[1])
        headers: dict[str, str] = {}
        while (line := self.reader.readline()) not in (b"\r\n", b"\n", b""):
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", ""):
            chunks = []
            while size := int(self.reader.readline().split(b";")[0], 16):
                chunks.append(self.reader.read(size))
                self.reader.readline()
            self.reader.readline()
            payload = b"".join(chunks)
        else:
            payload = self.reader.read(int(headers.get("content-length", "0")))
        return status, json.loads(payload) if payload else None

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


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
            r = client.put(f"/v1/data/{OPA_ROOT}", content=body, headers={"Content-Type": "application/json"})
            r.raise_for_status()
            load_s = time.perf_counter() - started
        bodies = [json.dumps(i).encode() for i in decision_inputs(effs)]
        asker = OneWriteClient("127.0.0.1", server.port)
        try:
            for body_in in bodies[:200]:  # warm up: compile and caches
                status, _ = asker.post_json("/v1/data/aitrust/authz/decision", body_in)
                if status != 200:
                    raise RuntimeError(f"OPA answered {status}")
            roundtrip, server_ms, eval_ms, allowed = [], [], [], 0
            for k in range(requests):
                t0 = time.perf_counter()
                status, doc = asker.post_json(
                    "/v1/data/aitrust/authz/decision?metrics=true", bodies[k % len(bodies)]
                )
                roundtrip.append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    raise RuntimeError(f"OPA answered {status}: {doc}")
                metrics = doc.get("metrics", {})
                server_ms.append(metrics.get("timer_server_handler_ns", 0) / 1e6)
                eval_ms.append(metrics.get("timer_rego_query_eval_ns", 0) / 1e6)
                if "allow" not in doc.get("result", {}):
                    raise RuntimeError(f"no decision: {doc}")
                allowed += bool(doc["result"]["allow"])
        finally:
            asker.close()
    finally:
        server.stop()
    return OpaResult(workloads, len(body), load_s, roundtrip, server_ms, eval_ms, allowed)
