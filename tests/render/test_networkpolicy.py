from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrust.api.v1alpha1 import Tier
from aitrust.core.effective import EffectiveTrust
from aitrust.render.hashing import SPEC_HASH_ANNOTATION, manifest_hash
from aitrust.render.networkpolicy import (
    endpoint_policy_name,
    render_endpoint_ingress_policy,
    render_enforcement_plan,
    render_workload_policy,
    workload_policy_name,
)
from tests.render.scenarios import (
    AUDIT,
    BEDROCK,
    LLM,
    PII,
    QUARANTINE_POLICY,
    SERVICE_SELECTORS,
    VECTORS,
    effective,
    owner_of,
    policy,
    target_owner,
    workload,
)

GOLDEN = Path(__file__).parent / "golden"

DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


def _workload_policy(eff: EffectiveTrust) -> dict[str, Any]:
    return render_workload_policy(eff, owner_of(eff))


def _cross_namespace() -> EffectiveTrust:
    wl = workload(
        model_endpoints=[{"name": "llm", "namespace": "models"}, {"name": "embed"}],
        data_sources=[{"name": "pii", "namespace": "data"}],
    )
    return effective(Tier.TRUSTED, wl=wl)


def _external() -> EffectiveTrust:
    wl = workload(
        model_endpoints=[{"name": "bedrock", "namespace": "models"}],
        data_sources=[{"name": "vectors", "namespace": "data"}],
    )
    return effective(Tier.TRUSTED, wl=wl, pol=policy(allowDNS=False))


def _endpoint_ingress() -> dict[str, Any]:
    refs = [{"name": "llm", "namespace": "models"}]
    granted = effective(Tier.RESTRICTED)
    trainer = effective(Tier.TRUSTED, wl=workload("trainer", "team-b", model_endpoints=refs))
    jailed = effective(Tier.QUARANTINED, wl=workload("jailed", "team-b", model_endpoints=refs))
    notebook = effective(Tier.QUARANTINED, wl=workload("notebook", "team-c", model_endpoints=refs), pol=AUDIT)
    stranger = effective(Tier.TRUSTED, wl=workload("stranger", "team-c"))
    return render_endpoint_ingress_policy(
        LLM, [stranger, notebook, trainer, jailed, granted], target_owner(LLM), SERVICE_SELECTORS
    )


CASES: dict[str, Callable[[], Any]] = {
    "trusted": lambda: _workload_policy(effective(Tier.TRUSTED)),
    "restricted": lambda: _workload_policy(effective(Tier.RESTRICTED)),
    "quarantined-dns": lambda: _workload_policy(effective(Tier.QUARANTINED, pol=QUARANTINE_POLICY)),
    "quarantined-no-dns": lambda: _workload_policy(
        effective(Tier.QUARANTINED, pol=policy(quarantine={"allowDNS": False}))
    ),
    "audit-plan": lambda: render_enforcement_plan(effective(Tier.RESTRICTED, pol=AUDIT)),
    "external": lambda: _workload_policy(_external()),
    "cross-namespace": lambda: _workload_policy(_cross_namespace()),
    "endpoint-ingress": _endpoint_ingress,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    rendered = yaml.safe_dump(CASES[case](), sort_keys=False, width=120)
    path = GOLDEN / f"{case}.yaml"
    if os.environ.get("AITRUST_UPDATE_GOLDEN") == "1":
        path.write_text(rendered)
    assert path.exists(), f"{path} missing; regenerate with AITRUST_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(), (
        f"{case} drifted from {path}; regenerate with AITRUST_UPDATE_GOLDEN=1"
    )


def test_golden_directory_has_no_stale_files() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.yaml")) == sorted(CASES)


# --- behaviour, independent of the golden files -------------------------------------


def _egress_peers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [peer for rule in manifest["spec"]["egress"] for peer in rule.get("to", [])]


def test_restricted_workload_reaches_only_what_its_tier_allows() -> None:
    manifest = _workload_policy(effective(Tier.RESTRICTED))
    peers = _egress_peers(manifest)
    assert DNS_PEER in peers
    selectors = [p["podSelector"] for p in peers if "podSelector" in p]
    assert {"matchLabels": {"app": "llm"}} in selectors
    assert {"matchLabels": {"app": "postgres"}} not in selectors  # pii needs trusted
    assert manifest["spec"]["ingress"] == [{}]
    assert manifest["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert manifest["spec"]["podSelector"] == {"matchLabels": {"app": "agent"}}


def test_trusted_workload_reaches_both_targets_on_their_ports() -> None:
    rules = _workload_policy(effective(Tier.TRUSTED))["spec"]["egress"]
    ports = sorted(p["port"] for r in rules if r["to"] != [DNS_PEER] for p in r["ports"])
    assert ports == [5432, 8000]


def test_metadata_labels_owner_and_hash() -> None:
    eff = effective(Tier.TRUSTED)
    manifest = _workload_policy(eff)
    meta = manifest["metadata"]
    assert meta["name"] == "aitrust-agent"
    assert meta["namespace"] == "team-a"
    assert meta["labels"] == {"app.kubernetes.io/managed-by": "aitrust", "aitrust.dev/workload": "agent"}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "aitrust.dev/v1alpha1",
            "kind": "AIWorkload",
            "name": "agent",
            "uid": "uid-team-a-agent",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert meta["annotations"][SPEC_HASH_ANNOTATION] == manifest_hash(manifest)


def test_hash_is_stable_and_tracks_the_spec() -> None:
    restricted = _workload_policy(effective(Tier.RESTRICTED))
    again = _workload_policy(effective(Tier.RESTRICTED))
    trusted = _workload_policy(effective(Tier.TRUSTED))
    h = SPEC_HASH_ANNOTATION
    assert restricted["metadata"]["annotations"][h] == again["metadata"]["annotations"][h]
    assert restricted["metadata"]["annotations"][h] != trusted["metadata"]["annotations"][h]


def test_reference_order_does_not_change_the_policy() -> None:
    forward = workload(model_endpoints=[{"name": "llm", "namespace": "models"}, {"name": "embed"}])
    backward = workload(model_endpoints=[{"name": "embed"}, {"name": "llm", "namespace": "models"}])
    assert _workload_policy(effective(Tier.TRUSTED, wl=forward)) == _workload_policy(
        effective(Tier.TRUSTED, wl=backward)
    )


def test_no_dns_rule_when_policy_disallows_dns() -> None:
    eff = effective(Tier.TRUSTED, pol=policy(allowDNS=False))
    assert DNS_PEER not in _egress_peers(_workload_policy(eff))


def test_quarantine_cuts_grants_and_limits_ingress() -> None:
    eff = effective(Tier.QUARANTINED, pol=QUARANTINE_POLICY)
    spec = _workload_policy(eff)["spec"]
    peers = _egress_peers(_workload_policy(eff))
    assert DNS_PEER in peers
    assert {"ipBlock": {"cidr": "10.20.0.0/16"}} in peers
    assert not any(p.get("podSelector") == {"matchLabels": {"app": "llm"}} for p in peers)
    assert spec["ingress"] == [
        {
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
            ]
        }
    ]


def test_quarantine_without_dns_or_ingress_denies_everything() -> None:
    eff = effective(Tier.QUARANTINED, pol=policy(allowDNS=True, quarantine={"allowDNS": False}))
    spec = _workload_policy(eff)["spec"]
    assert spec["egress"] == []
    assert spec["ingress"] == []


def test_quarantine_dns_follows_quarantine_setting_not_top_level() -> None:
    eff = effective(Tier.QUARANTINED, pol=policy(allowDNS=False, quarantine={"allowDNS": True}))
    assert _workload_policy(eff)["spec"]["egress"] == [
        {"to": [DNS_PEER], "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    ]


def test_external_target_becomes_ip_blocks_and_hosts_only_target_adds_nothing() -> None:
    peers = _egress_peers(_workload_policy(_external()))
    assert peers == [{"ipBlock": {"cidr": "3.5.0.0/19"}}, {"ipBlock": {"cidr": "52.94.0.0/22"}}]


def test_endpoint_ingress_admits_only_currently_granted_workloads() -> None:
    manifest = _endpoint_ingress()
    assert manifest["metadata"]["name"] == "aitrust-ingress-llm"
    assert manifest["metadata"]["namespace"] == "models"
    assert manifest["metadata"]["labels"]["aitrust.dev/endpoint"] == "llm"
    assert manifest["metadata"]["ownerReferences"][0]["kind"] == "ModelEndpoint"
    spec = manifest["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    assert spec["podSelector"] == {"matchLabels": {"app": "llm"}}
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}]
    admitted = [
        (p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], p["podSelector"])
        for p in rule["from"]
    ]
    # jailed (quarantined, enforce) and stranger (no reference) are out; notebook is audit-only.
    assert admitted == [
        ("team-a", {"matchLabels": {"app": "agent"}}),
        ("team-b", {"matchLabels": {"app": "trainer"}}),
        ("team-c", {"matchLabels": {"app": "notebook"}}),
    ]


def test_endpoint_ingress_with_no_granted_workload_denies_all_ingress() -> None:
    manifest = render_endpoint_ingress_policy(PII, [effective(Tier.RESTRICTED)], target_owner(PII))
    assert manifest["spec"]["ingress"] == []
    assert manifest["metadata"]["labels"]["aitrust.dev/endpoint-kind"] == "DataSource"


def test_endpoint_ingress_rejects_external_targets() -> None:
    for target in (BEDROCK, VECTORS):
        with pytest.raises(ValueError, match="not in-cluster"):
            render_endpoint_ingress_policy(target, [], target_owner(target))


def test_long_names_are_bounded_and_distinct() -> None:
    a, b = "x" * 250 + "a", "x" * 250 + "b"
    assert len(workload_policy_name(a)) <= 253
    assert workload_policy_name(a) != workload_policy_name(b)
    assert len(endpoint_policy_name(a)) <= 253
    eff = effective(Tier.TRUSTED, wl=workload(a, labels={"app": "x"}))
    assert len(_workload_policy(eff)["metadata"]["labels"]["aitrust.dev/workload"]) <= 63


def test_enforcement_plan_describes_the_enforced_state() -> None:
    plan = render_enforcement_plan(effective(Tier.RESTRICTED, pol=AUDIT))
    own, *endpoints = plan
    assert own["name"] == "aitrust-agent"
    assert own["egress"] == ["DNS", "ModelEndpoint/models/llm"]
    assert own["blocked"] == ["DataSource/data/pii: tier restricted is below minTier trusted"]
    assert own["manifest"] == _workload_policy(effective(Tier.RESTRICTED, pol=AUDIT))
    assert [(e["name"], e["namespace"], e["admit"]) for e in endpoints] == [
        ("aitrust-ingress-pii", "data", False),
        ("aitrust-ingress-llm", "models", True),
    ]


def test_enforcement_plan_when_quarantined() -> None:
    (own, *endpoints) = render_enforcement_plan(effective(Tier.QUARANTINED, pol=QUARANTINE_POLICY))
    assert own["egress"] == ["DNS", "quarantine allowedEgress[0]", "quarantine allowedEgress[1]"]
    assert own["ingress"] == ["ingress-nginx", "monitoring"]
    assert len(own["blocked"]) == 2
    assert not any(e["admit"] for e in endpoints)


_tiers = st.sampled_from(list(Tier))


@settings(max_examples=150, deadline=None)
@given(
    tier=_tiers,
    llm_min=st.none() | _tiers,
    pii_min=st.none() | _tiers,
    bedrock_min=st.none() | _tiers,
    dns=st.booleans(),
)
def test_egress_holds_exactly_the_allowed_grants(
    tier: Tier, llm_min: Tier | None, pii_min: Tier | None, bedrock_min: Tier | None, dns: bool
) -> None:
    def ref(name: str, ns: str, min_tier: Tier | None) -> dict[str, Any]:
        return {"name": name, "namespace": ns, **({"minTier": min_tier.value} if min_tier else {})}

    wl = workload(
        model_endpoints=[ref("llm", "models", llm_min), ref("bedrock", "models", bedrock_min)],
        data_sources=[ref("pii", "data", pii_min)],
    )
    eff = effective(tier, wl=wl, pol=policy(allowDNS=dns, quarantine={"allowDNS": dns}))
    peers = _egress_peers(_workload_policy(eff))
    expected_dns = dns
    assert (DNS_PEER in peers) is expected_dns
    pod_peers = {
        p["podSelector"]["matchLabels"]["app"] for p in peers if p != DNS_PEER and "podSelector" in p
    }
    cidrs = {p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p}
    allowed = {g.name for g in eff.grants if g.allowed}
    assert pod_peers == {"llm"} & allowed | ({"postgres"} if "pii" in allowed else set())
    assert cidrs == ({"3.5.0.0/19", "52.94.0.0/22"} if "bedrock" in allowed else set())
    if tier is Tier.QUARANTINED:
        assert not allowed
