"""Shared objects for the render and effective-trust tests: one small, realistic cluster."""

from __future__ import annotations

from typing import Any

from aitrust.api.v1alpha1 import (
    AIWorkload,
    DataSource,
    Mode,
    ModelEndpoint,
    Tier,
    TrustPolicySpec,
)
from aitrust.core.effective import EffectiveTrust, build_effective_trust
from aitrust.render.networkpolicy import owner_reference

WORKLOAD_NS = "team-a"


def workload(
    name: str = "agent",
    namespace: str = WORKLOAD_NS,
    labels: dict[str, str] | None = None,
    model_endpoints: list[dict[str, Any]] | None = None,
    data_sources: list[dict[str, Any]] | None = None,
) -> AIWorkload:
    return AIWorkload.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
            "spec": {
                "selector": {"matchLabels": labels or {"app": name}},
                "kind": "agent",
                "access": {"modelEndpoints": model_endpoints or [], "dataSources": data_sources or []},
            },
        }
    )


def model_endpoint(name: str, namespace: str, **spec: Any) -> ModelEndpoint:
    spec.setdefault("provider", "in-cluster")
    return ModelEndpoint.model_validate(
        {"metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"}, "spec": spec}
    )


def data_source(name: str, namespace: str, **spec: Any) -> DataSource:
    spec.setdefault("type", "postgres")
    return DataSource.model_validate(
        {"metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"}, "spec": spec}
    )


LLM = model_endpoint("llm", "models", selector={"matchLabels": {"app": "llm"}}, ports=[{"port": 8000}])
EMBED = model_endpoint("embed", WORKLOAD_NS, service={"name": "embed", "port": 80}, ports=[{"port": 8080}])
BEDROCK = model_endpoint(
    "bedrock",
    "models",
    provider="aws-bedrock",
    cidrs=["52.94.0.0/22", "3.5.0.0/19"],
    hosts=["bedrock-runtime.us-east-1.amazonaws.com"],
    ports=[{"port": 443}],
    minTier="trusted",
)
PII = data_source(
    "pii", "data", selector={"matchLabels": {"app": "postgres"}}, ports=[{"port": 5432}], minTier="trusted"
)
VECTORS = data_source(
    "vectors", "data", type="vector-db", hosts=["vectors.example.com"], ports=[{"port": 443}]
)

TARGETS: dict[tuple[str, str, str], ModelEndpoint | DataSource] = {
    (t.kind, t.metadata.namespace, t.metadata.name): t for t in (LLM, EMBED, BEDROCK, PII, VECTORS)
}
SERVICE_SELECTORS = {(WORKLOAD_NS, "embed"): {"app": "embed"}}


def policy(**spec: Any) -> TrustPolicySpec:
    return TrustPolicySpec.model_validate(spec)


QUARANTINE_POLICY = policy(
    quarantine={
        "allowDNS": True,
        "allowedEgress": [
            {"cidr": "10.20.0.0/16", "ports": [{"port": 443}]},
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {"matchLabels": {"app": "otel"}},
                "ports": [{"port": 4317}],
            },
        ],
        "allowedIngressNamespaces": ["monitoring", "ingress-nginx"],
    }
)


def effective(
    tier: Tier,
    wl: AIWorkload | None = None,
    pol: TrustPolicySpec | None = None,
    score: int | None = None,
    service_accounts: tuple[str, ...] = ("agent-sa",),
) -> EffectiveTrust:
    wl = wl or workload(
        model_endpoints=[{"name": "llm", "namespace": "models"}],
        data_sources=[{"name": "pii", "namespace": "data"}],
    )
    default_score = {Tier.TRUSTED: 90, Tier.RESTRICTED: 65, Tier.QUARANTINED: 20}[tier]
    return build_effective_trust(
        wl,
        default_score if score is None else score,
        tier,
        pol or policy(),
        TARGETS,
        SERVICE_SELECTORS,
        service_accounts,
    )


def owner_of(eff: EffectiveTrust) -> dict[str, Any]:
    return owner_reference("AIWorkload", eff.name, eff.uid or "")


def target_owner(target: ModelEndpoint | DataSource) -> dict[str, Any]:
    return owner_reference(target.kind, target.metadata.name, target.metadata.uid or "")


AUDIT = policy(mode=Mode.AUDIT)
