from __future__ import annotations

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrust.api.v1alpha1 import Grant, LabelSelector, Mode, PortSpec, Tier
from aitrust.core.effective import (
    ExternalDestination,
    InClusterDestination,
    build_effective_trust,
    build_grants_status,
    resolve_destination,
)
from tests.render.scenarios import (
    BEDROCK,
    EMBED,
    LLM,
    PII,
    QUARANTINE_POLICY,
    SERVICE_SELECTORS,
    TARGETS,
    VECTORS,
    data_source,
    effective,
    model_endpoint,
    policy,
    workload,
)


def _grants(
    tier: Tier,
    model_endpoints: list[dict[str, str]] | None = None,
    data_sources: list[dict[str, str]] | None = None,
) -> dict[str, tuple[bool, str]]:
    eff = effective(tier, wl=workload(model_endpoints=model_endpoints, data_sources=data_sources))
    return {g.target: (g.allowed, g.reason) for g in eff.grants}


def test_tier_meets_or_misses_the_targets_min_tier() -> None:
    refs: dict[str, list[dict[str, str]]] = {
        "model_endpoints": [{"name": "llm", "namespace": "models"}],
        "data_sources": [{"name": "pii", "namespace": "data"}],
    }
    assert _grants(Tier.RESTRICTED, **refs) == {
        "ModelEndpoint/models/llm": (True, "tier restricted meets minTier restricted"),
        "DataSource/data/pii": (False, "tier restricted is below minTier trusted"),
    }
    assert _grants(Tier.TRUSTED, **refs) == {
        "ModelEndpoint/models/llm": (True, "tier trusted meets minTier restricted"),
        "DataSource/data/pii": (True, "tier trusted meets minTier trusted"),
    }
    assert _grants(Tier.QUARANTINED, **refs) == {
        "ModelEndpoint/models/llm": (False, "tier quarantined is below minTier restricted"),
        "DataSource/data/pii": (False, "tier quarantined is below minTier trusted"),
    }


def test_reference_min_tier_overrides_the_targets() -> None:
    raised = _grants(
        Tier.RESTRICTED, model_endpoints=[{"name": "llm", "namespace": "models", "minTier": "trusted"}]
    )
    assert raised == {"ModelEndpoint/models/llm": (False, "tier restricted is below minTier trusted")}
    lowered = _grants(
        Tier.RESTRICTED, data_sources=[{"name": "pii", "namespace": "data", "minTier": "restricted"}]
    )
    assert lowered == {"DataSource/data/pii": (True, "tier restricted meets minTier restricted")}


def test_target_min_tier_defaults_to_restricted() -> None:
    plain = model_endpoint("plain", "models", selector={"matchLabels": {"app": "plain"}})
    eff = build_effective_trust(
        workload(model_endpoints=[{"name": "plain", "namespace": "models"}]),
        60,
        Tier.RESTRICTED,
        policy(),
        {("ModelEndpoint", "models", "plain"): plain},
    )
    (grant,) = eff.grants
    assert grant.required_tier is Tier.RESTRICTED
    assert grant.allowed


def test_missing_target_is_a_denied_grant() -> None:
    eff = effective(
        Tier.TRUSTED,
        wl=workload(
            model_endpoints=[{"name": "ghost", "namespace": "models"}],
            data_sources=[{"name": "gone", "minTier": "trusted"}],
        ),
    )
    ghost, gone = eff.grants
    assert (ghost.allowed, ghost.reason, ghost.required_tier, ghost.destination) == (
        False,
        "target not found",
        Tier.RESTRICTED,
        None,
    )
    assert (gone.namespace, gone.required_tier, gone.allowed) == ("team-a", Tier.TRUSTED, False)


def test_target_of_the_wrong_kind_counts_as_missing() -> None:
    wrong = {("DataSource", "models", "llm"): LLM}
    eff = build_effective_trust(
        workload(data_sources=[{"name": "llm", "namespace": "models"}]), 95, Tier.TRUSTED, policy(), wrong
    )
    assert [(g.kind, g.allowed, g.reason) for g in eff.grants] == [("DataSource", False, "target not found")]


def test_reference_namespace_defaults_to_the_workloads() -> None:
    eff = effective(Tier.TRUSTED, wl=workload(model_endpoints=[{"name": "embed"}]))
    (grant,) = eff.grants
    assert (grant.namespace, grant.allowed) == ("team-a", True)


def test_destinations() -> None:
    assert resolve_destination(LLM) == InClusterDestination(
        namespace="models",
        pod_selector=LabelSelector.model_validate({"matchLabels": {"app": "llm"}}),
        ports=(PortSpec(port=8000),),
    )
    assert resolve_destination(EMBED, SERVICE_SELECTORS) == InClusterDestination(
        namespace="team-a",
        pod_selector=LabelSelector.model_validate({"matchLabels": {"app": "embed"}}),
        ports=(PortSpec(port=8080),),
    )
    assert resolve_destination(EMBED, {}) is None
    assert resolve_destination(BEDROCK) == ExternalDestination(
        cidrs=("3.5.0.0/19", "52.94.0.0/22"),
        hosts=("bedrock-runtime.us-east-1.amazonaws.com",),
        ports=(PortSpec(port=443),),
    )
    assert resolve_destination(data_source("bare", "data")) is None


def test_selector_wins_over_service_and_ports_are_sorted_and_unique() -> None:
    both = model_endpoint(
        "both",
        "models",
        selector={"matchLabels": {"app": "a"}},
        service={"name": "svc", "port": 80},
        ports=[{"port": 9000}, {"port": 53, "protocol": "UDP"}, {"port": 9000}, {"port": 80}],
    )
    dest = resolve_destination(both, {("models", "svc"): {"app": "b"}})
    assert isinstance(dest, InClusterDestination)
    assert dest.pod_selector.match_labels == {"app": "a"}
    assert [(p.protocol, p.port) for p in dest.ports] == [("TCP", 80), ("TCP", 9000), ("UDP", 53)]


def test_allowed_grants_that_cannot_become_egress_rules_say_so() -> None:
    targets = {
        **TARGETS,
        ("DataSource", "data", "bare"): data_source("bare", "data"),
    }
    wl = workload(
        model_endpoints=[{"name": "embed"}],
        data_sources=[{"name": "vectors", "namespace": "data"}, {"name": "bare", "namespace": "data"}],
    )
    eff = build_effective_trust(wl, 90, Tier.TRUSTED, policy(), targets)  # no Service selectors
    reasons = {g.name: g.reason for g in eff.grants}
    assert all(g.allowed for g in eff.grants)
    assert reasons["embed"].endswith("Service team-a/embed not resolved, no egress rule")
    assert reasons["vectors"].endswith("hosts only, NetworkPolicy cannot allow them (use an egress gateway)")
    assert reasons["bare"].endswith("target has no selector, service or cidrs, no egress rule")
    assert VECTORS.spec.hosts == ["vectors.example.com"]


def test_dns_follows_the_top_level_setting_unless_quarantined() -> None:
    pol = policy(allowDNS=False, quarantine={"allowDNS": True})
    assert effective(Tier.TRUSTED, pol=pol).allow_dns is False
    assert effective(Tier.QUARANTINED, pol=pol).allow_dns is True
    pol = policy(allowDNS=True, quarantine={"allowDNS": False})
    assert effective(Tier.RESTRICTED, pol=pol).allow_dns is True
    assert effective(Tier.QUARANTINED, pol=pol).allow_dns is False


def test_workload_fields_and_quarantine_settings() -> None:
    eff = effective(Tier.QUARANTINED, pol=QUARANTINE_POLICY, score=12, service_accounts=("b", "a", "b"))
    assert (eff.namespace, eff.name, eff.uid, eff.score, eff.tier, eff.mode) == (
        "team-a",
        "agent",
        "uid-team-a-agent",
        12,
        Tier.QUARANTINED,
        Mode.ENFORCE,
    )
    assert eff.quarantined
    assert eff.service_accounts == ("a", "b")
    assert eff.pod_selector.match_labels == {"app": "agent"}
    assert eff.quarantine_ingress_namespaces == ("ingress-nginx", "monitoring")
    assert [r.cidr for r in eff.quarantine_egress] == ["10.20.0.0/16", None]
    assert effective(Tier.TRUSTED, pol=policy(mode="audit")).mode is Mode.AUDIT


def test_quarantine_denies_even_a_quarantined_min_tier() -> None:
    eff = effective(
        Tier.QUARANTINED,
        wl=workload(model_endpoints=[{"name": "llm", "namespace": "models", "minTier": "quarantined"}]),
    )
    (grant,) = eff.grants
    assert (grant.allowed, grant.reason) == (False, "workload is quarantined")
    ok = effective(
        Tier.RESTRICTED,
        wl=workload(model_endpoints=[{"name": "llm", "namespace": "models", "minTier": "quarantined"}]),
    )
    assert ok.grants[0].allowed


def test_duplicate_references_keep_the_first() -> None:
    wl = workload(
        model_endpoints=[
            {"name": "llm", "namespace": "models", "minTier": "trusted"},
            {"name": "llm", "namespace": "models", "minTier": "restricted"},
        ]
    )
    eff = effective(Tier.RESTRICTED, wl=wl)
    assert [(g.target, g.allowed) for g in eff.grants] == [("ModelEndpoint/models/llm", False)]


def test_grants_status_and_lookup() -> None:
    eff = effective(Tier.RESTRICTED)
    assert build_grants_status(eff) == [
        Grant(
            target="ModelEndpoint/models/llm", allowed=True, reason="tier restricted meets minTier restricted"
        ),
        Grant(target="DataSource/data/pii", allowed=False, reason="tier restricted is below minTier trusted"),
    ]
    found = eff.grant_for("DataSource", "data", "pii")
    assert found is not None
    assert found.destination == resolve_destination(PII)
    assert eff.grant_for("ModelEndpoint", "data", "pii") is None


def test_effective_trust_is_frozen() -> None:
    eff = effective(Tier.TRUSTED)
    with pytest.raises(pydantic.ValidationError):
        eff.score = 1  # type: ignore[misc]


_tiers = st.sampled_from(list(Tier))


@settings(max_examples=200, deadline=None)
@given(
    tier=_tiers,
    refs=st.lists(
        st.tuples(
            st.sampled_from([*sorted(TARGETS), ("ModelEndpoint", "models", "ghost")]), st.none() | _tiers
        ),
        max_size=6,
    ),
)
def test_allowed_iff_target_exists_and_tier_meets_required(
    tier: Tier, refs: list[tuple[tuple[str, str, str], Tier | None]]
) -> None:
    eps = [
        {"name": n, "namespace": ns, **({"minTier": m.value} if m else {})}
        for (k, ns, n), m in refs
        if k == "ModelEndpoint"
    ]
    dss = [
        {"name": n, "namespace": ns, **({"minTier": m.value} if m else {})}
        for (k, ns, n), m in refs
        if k == "DataSource"
    ]
    eff = effective(tier, wl=workload(model_endpoints=eps, data_sources=dss))
    first: dict[tuple[str, str, str], Tier | None] = {}
    for key, m in refs:
        first.setdefault(key, m)
    assert sorted(g.key for g in eff.grants) == sorted(first)
    for grant in eff.grants:
        target = TARGETS.get(grant.key)
        required = first[grant.key] or (target.spec.min_tier if target else Tier.RESTRICTED)
        assert grant.required_tier is required
        assert grant.allowed is (target is not None and tier is not Tier.QUARANTINED and tier.meets(required))
