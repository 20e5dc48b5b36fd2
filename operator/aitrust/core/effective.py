"""Effective trust: one normalised, frozen view of what a workload may reach right now.

Everything downstream (NetworkPolicy and OPA renderers, status grants) reads this model only,
so enforcement and reporting cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from aitrust.api.v1alpha1 import (
    AccessRef,
    AIWorkload,
    DataSource,
    EgressRule,
    Grant,
    LabelSelector,
    Mode,
    ModelEndpoint,
    PortSpec,
    Tier,
    TrustPolicySpec,
)

TargetKind = Literal["ModelEndpoint", "DataSource"]
TargetKey = tuple[str, str, str]  # (kind, namespace, name)

# The target's own default minTier (TargetSpec.min_tier); used when the target is missing.
DEFAULT_MIN_TIER = Tier.RESTRICTED


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InClusterDestination(_Frozen):
    """Pods in the cluster: the target's namespace plus a pod selector."""

    type: Literal["in-cluster"] = "in-cluster"
    namespace: str
    pod_selector: LabelSelector
    ports: tuple[PortSpec, ...] = ()  # empty means all ports


class ExternalDestination(_Frozen):
    """Outside the cluster: IP blocks (NetworkPolicy) and host names (OPA / egress gateways)."""

    type: Literal["external"] = "external"
    cidrs: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    ports: tuple[PortSpec, ...] = ()


Destination = Annotated[InClusterDestination | ExternalDestination, Field(discriminator="type")]


class EffectiveGrant(_Frozen):
    kind: TargetKind
    namespace: str
    name: str
    required_tier: Tier
    allowed: bool
    reason: str
    destination: Destination | None = None  # None: target missing or not resolvable to an address

    @property
    def key(self) -> TargetKey:
        return (self.kind, self.namespace, self.name)

    @property
    def target(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


class EffectiveTrust(_Frozen):
    namespace: str
    name: str
    uid: str | None = None
    score: int
    tier: Tier
    mode: Mode
    pod_selector: LabelSelector
    service_accounts: tuple[str, ...] = ()
    allow_dns: bool
    quarantine_ingress_namespaces: tuple[str, ...] = ()
    quarantine_egress: tuple[EgressRule, ...] = ()
    grants: tuple[EffectiveGrant, ...] = ()

    @property
    def quarantined(self) -> bool:
        return self.tier is Tier.QUARANTINED

    def grant_for(self, kind: str, namespace: str, name: str) -> EffectiveGrant | None:
        for grant in self.grants:
            if grant.key == (kind, namespace, name):
                return grant
        return None


def resolve_destination(
    target: ModelEndpoint | DataSource,
    service_selectors: Mapping[tuple[str, str], Mapping[str, str]] = {},
) -> Destination | None:
    """Where the target's traffic goes, or None when it cannot be expressed as an address.

    An explicit pod selector wins over a Service; a Service is resolved through the selector map
    because NetworkPolicy only sees pods. The Service port is not used as a pod port: policies are
    evaluated after DNAT, on the target port, which only the target's ``ports`` can state.
    """
    spec = target.spec
    ns = target.metadata.namespace
    ports = _sorted_ports(spec.ports)
    if spec.selector is not None:
        return InClusterDestination(namespace=ns, pod_selector=spec.selector, ports=ports)
    if spec.service is not None:
        labels = service_selectors.get((ns, spec.service.name))
        if not labels:
            return None  # an unresolved or selector-less Service has no pods we can name
        return InClusterDestination(
            namespace=ns, pod_selector=LabelSelector(match_labels=dict(sorted(labels.items()))), ports=ports
        )
    if spec.cidrs or spec.hosts:
        return ExternalDestination(
            cidrs=tuple(sorted(set(spec.cidrs))), hosts=tuple(sorted(set(spec.hosts))), ports=ports
        )
    return None


def build_effective_trust(
    workload: AIWorkload,
    score: int,
    tier: Tier,
    policy: TrustPolicySpec,
    targets: Mapping[tuple[str, str, str], ModelEndpoint | DataSource],
    service_selectors: Mapping[tuple[str, str], Mapping[str, str]] = {},
    service_accounts: Sequence[str] = (),
) -> EffectiveTrust:
    """Combine a workload, its score and tier, its TrustPolicy and the resolved targets.

    ``targets`` is keyed by (kind, namespace, name); ``service_selectors`` by (namespace, service).
    A target referenced twice keeps its first reference.
    """
    ns = workload.metadata.namespace
    refs: list[tuple[TargetKind, AccessRef]] = [
        ("ModelEndpoint", r) for r in workload.spec.access.model_endpoints
    ]
    refs += [("DataSource", r) for r in workload.spec.access.data_sources]
    grants: list[EffectiveGrant] = []
    seen: set[TargetKey] = set()
    for kind, ref in refs:
        key: TargetKey = (kind, ref.namespace or ns, ref.name)
        if key in seen:
            continue
        seen.add(key)
        grants.append(_build_grant(kind, key[1], ref, tier, targets.get(key), service_selectors))
    quarantined = tier is Tier.QUARANTINED
    return EffectiveTrust(
        namespace=ns,
        name=workload.metadata.name,
        uid=workload.metadata.uid,
        score=score,
        tier=tier,
        mode=policy.mode,
        pod_selector=workload.spec.selector,
        service_accounts=tuple(sorted(set(service_accounts))),
        allow_dns=policy.quarantine.allow_dns if quarantined else policy.allow_dns,
        quarantine_ingress_namespaces=tuple(sorted(set(policy.quarantine.allowed_ingress_namespaces))),
        quarantine_egress=tuple(policy.quarantine.allowed_egress),
        grants=tuple(grants),
    )


def _build_grant(
    kind: TargetKind,
    ns: str,
    ref: AccessRef,
    tier: Tier,
    target: ModelEndpoint | DataSource | None,
    service_selectors: Mapping[tuple[str, str], Mapping[str, str]],
) -> EffectiveGrant:
    name = ref.name
    if target is None or target.kind != kind:
        required = ref.min_tier or DEFAULT_MIN_TIER
        return EffectiveGrant(
            kind=kind,
            namespace=ns,
            name=name,
            required_tier=required,
            allowed=False,
            reason="target not found",
        )
    required = ref.min_tier or target.spec.min_tier
    destination = resolve_destination(target, service_selectors)
    if tier is Tier.QUARANTINED and required is Tier.QUARANTINED:
        # minTier quarantined would admit anyone; quarantine still cuts all access.
        allowed, reason = False, "workload is quarantined"
    elif tier.meets(required):
        allowed, reason = True, f"tier {tier.value} meets minTier {required.value}"
        reason += _reachability_note(target, destination)
    else:
        allowed, reason = False, f"tier {tier.value} is below minTier {required.value}"
    return EffectiveGrant(
        kind=kind,
        namespace=ns,
        name=name,
        required_tier=required,
        allowed=allowed,
        reason=reason,
        destination=destination,
    )


def _reachability_note(target: ModelEndpoint | DataSource, destination: Destination | None) -> str:
    """Say so when an allowed grant cannot become a NetworkPolicy rule, so status explains the block."""
    if destination is None:
        if target.spec.service is not None:
            service = f"{target.metadata.namespace}/{target.spec.service.name}"
            return f"; Service {service} not resolved, no egress rule"
        return "; target has no selector, service or cidrs, no egress rule"
    if isinstance(destination, ExternalDestination) and not destination.cidrs:
        return "; hosts only, NetworkPolicy cannot allow them (use an egress gateway)"
    return ""


def build_grants_status(eff: EffectiveTrust) -> list[Grant]:
    return [Grant(target=g.target, allowed=g.allowed, reason=g.reason) for g in eff.grants]


def _sorted_ports(ports: Sequence[PortSpec]) -> tuple[PortSpec, ...]:
    unique = {(p.protocol, p.port): p for p in ports}
    return tuple(unique[k] for k in sorted(unique))
