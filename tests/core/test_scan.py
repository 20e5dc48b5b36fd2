"""The offline scan: per-workload verdicts, the operator's evaluation of AIWorkloads, and tier gaps."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrust.api.v1alpha1 import Factor, Thresholds, Tier, TrustPolicySpec
from aitrust.core.classify import classify_workload
from aitrust.core.scan import (
    BUILTIN_POLICY,
    Document,
    ScanReport,
    build_scan_report,
    build_tier_gap,
    is_workload_object,
)
from aitrust.core.scoring import score_tier, score_workload
from aitrust.core.workloads import build_pod_specs

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PLATFORM = Path(__file__).resolve().parents[1] / "corpus" / "scan" / "platform.yaml"


def _objects() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(PLATFORM.read_text()) if d]


def _docs(objects: list[dict[str, Any]], file: str = "platform.yaml") -> list[Document]:
    return [Document(obj, file, i, i * 10 + 1) for i, obj in enumerate(objects)]


def _scan(objects: list[dict[str, Any]], policy: TrustPolicySpec | None = None) -> ScanReport:
    return build_scan_report(_docs(objects), NOW, policy)


def _find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def _workload(report: ScanReport, name: str) -> Any:
    return next(w for w in report.workloads if w.name == name)


# --- per-workload verdicts --------------------------------------------------------------------


def test_every_workload_is_classified_scored_and_located() -> None:
    objects = _objects()
    report = _scan(objects)
    assert [w.name for w in report.workloads] == ["llama-chat", "support-bot", "ollama-test", "status-page"]
    for w in report.workloads:
        obj = _find(objects, w.kind, w.name)
        assert w.ai == classify_workload(obj)
        index = objects.index(obj)
        assert (w.source.file, w.source.index, w.source.line) == ("platform.yaml", index, index * 10 + 1)
    assert [w.ai.is_ai for w in report.workloads] == [True, True, True, False]


def test_managed_means_an_aiworkload_in_the_namespace_selects_the_pods() -> None:
    objects = _objects()
    report = _scan(objects)
    assert {w.name: w.managed_by for w in report.workloads} == {
        "llama-chat": ["llama-chat"],
        "support-bot": ["support-bot"],
        "ollama-test": [],
        "status-page": [],
    }
    # The same AIWorkload in another namespace manages nothing here.
    moved = copy.deepcopy(objects)
    _find(moved, "AIWorkload", "llama-chat")["metadata"]["namespace"] = "elsewhere"
    assert not _workload(_scan(moved), "llama-chat").managed
    # Nor does one whose selector misses a label of the pod template.
    narrowed = copy.deepcopy(objects)
    _find(narrowed, "AIWorkload", "llama-chat")["spec"]["selector"]["matchLabels"]["tier"] = "gpu"
    assert not _workload(_scan(narrowed), "llama-chat").managed
    # matchExpressions work too.
    expr = copy.deepcopy(objects)
    _find(expr, "AIWorkload", "llama-chat")["spec"]["selector"] = {
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["model"]}]
    }
    assert _workload(_scan(expr), "llama-chat").managed


def test_scores_are_the_operators_scores_for_the_same_pods_and_policy() -> None:
    objects = _objects()
    report = _scan(objects)
    policy = TrustPolicySpec.model_validate(_find(objects, "TrustPolicy", "default")["spec"])
    for w in report.workloads:
        if w.managed:
            continue
        result = score_workload(build_pod_specs(_find(objects, w.kind, w.name)), policy, NOW)
        assert (w.trust_score, w.tier) == (result.score, result.tier)
        assert w.trust_score == 100 - sum(f.points for f in w.findings)
        assert w.policy == "default"


def test_findings_carry_what_a_reader_needs_to_fix_them() -> None:
    objects = _objects()
    base = _workload(_scan(objects), "ollama-test")
    finding = next(f for f in base.findings if f.id == "AIT-P001")
    assert finding.severity == "critical" and finding.points > 0
    assert "privileged" in finding.reason and finding.remediation and finding.references
    # Dropping privileged removes the finding and raises the score by exactly its points.
    fixed = copy.deepcopy(objects)
    container = _find(fixed, "Deployment", "ollama-test")["spec"]["template"]["spec"]["containers"][0]
    del container["securityContext"]
    after = _workload(_scan(fixed), "ollama-test")
    assert "AIT-P001" not in {f.id for f in after.findings}
    assert after.trust_score > base.trust_score


def test_declared_models_count_for_managed_workloads() -> None:
    objects = _objects()
    with_digest = _workload(_scan(objects), "llama-chat")
    without = copy.deepcopy(objects)
    del _find(without, "AIWorkload", "llama-chat")["spec"]["models"][0]["digest"]
    no_digest = _workload(_scan(without), "llama-chat")
    assert "AIT-P020" in {f.id for f in no_digest.findings}
    assert "AIT-P020" not in {f.id for f in with_digest.findings}


def test_policy_resolution_file_then_ref_then_namespace_default_then_builtin() -> None:
    objects = _objects()
    strict: dict[str, Any] = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "strict", "namespace": "llm"},
        "spec": {"thresholds": {"trusted": 99, "restricted": 98}},
    }
    with_ref = [*copy.deepcopy(objects), strict]
    _find(with_ref, "AIWorkload", "llama-chat")["spec"]["trustPolicyRef"] = {"name": "strict"}
    report = _scan(with_ref)
    assert _workload(report, "llama-chat").policy == "strict"
    assert _workload(report, "llama-chat").tier is Tier.QUARANTINED  # 95 < 98
    assert _workload(report, "status-page").policy == "default"

    no_default = [o for o in objects if o["kind"] != "TrustPolicy"]
    assert {w.policy for w in _scan(no_default).workloads} == {BUILTIN_POLICY}

    lenient = TrustPolicySpec(thresholds=Thresholds(trusted=20, restricted=10), hysteresis=0)
    overridden = _scan(with_ref, lenient)
    assert {w.policy for w in overridden.workloads} == {"--policy"}
    assert {w.tier for w in overridden.workloads} == {Tier.TRUSTED}


def test_a_missing_policy_ref_falls_back_to_builtins_and_says_so() -> None:
    objects = _objects()
    _find(objects, "AIWorkload", "support-bot")["spec"]["trustPolicyRef"] = {"name": "nope"}
    report = _scan(objects)
    bot = next(a for a in report.ai_workloads if a.name == "support-bot")
    assert bot.policy == BUILTIN_POLICY
    assert any("nope" in p for p in bot.problems)


# --- AIWorkloads: evaluation, NetworkPolicies, OPA ---------------------------------------------


def test_aiworkload_grants_follow_tier_and_min_tier() -> None:
    report = _scan(_objects())
    bot = next(a for a in report.ai_workloads if a.name == "support-bot")
    assert bot.tier is Tier.RESTRICTED and bot.workloads == ["Deployment/support-bot"]
    grants = {g.target: g.allowed for g in bot.grants}
    assert grants == {
        "ModelEndpoint/llm/llama": True,  # minTier restricted
        "ModelEndpoint/llm/openai": False,  # minTier trusted
        "DataSource/llm/customer-db": False,  # minTier trusted
    }
    assert sum(f.points for f in bot.factors) == bot.trust_score


def test_network_policies_are_the_operators() -> None:
    report = _scan(_objects())
    by_name = {m["metadata"]["name"]: m for m in report.network_policies}
    assert set(by_name) == {
        "aitrust-llama-chat",
        "aitrust-support-bot",
        "aitrust-ingress-llama",
        "aitrust-ingress-customer-db",
    }
    egress = by_name["aitrust-support-bot"]["spec"]["egress"]
    peers = [peer for rule in egress for peer in rule.get("to", [])]
    # The llama endpoint resolves through its Service to the vLLM pods; openai is not granted.
    assert peers[-1]["podSelector"] == {"matchLabels": {"app": "llama-chat"}}
    assert not any("ipBlock" in p for p in peers)
    ingress = by_name["aitrust-ingress-llama"]["spec"]["ingress"]
    assert ingress[0]["from"][0]["podSelector"] == {"matchLabels": {"app": "support-bot"}}
    assert ingress[0]["ports"] == [{"port": 8000, "protocol": "TCP"}]
    assert by_name["aitrust-ingress-customer-db"]["spec"]["ingress"] == []  # nobody granted


def test_audit_mode_renders_no_workload_policy() -> None:
    objects = _objects()
    _find(objects, "TrustPolicy", "default")["spec"]["mode"] = "audit"
    report = _scan(objects)
    assert report.network_policies == []
    assert {a.mode.value for a in report.ai_workloads} == {"audit"}
    assert report.opa_data["workloads"]["llm"]["support-bot"]["mode"] == "audit"


def test_opa_data_mirrors_the_evaluations() -> None:
    report = _scan(_objects())
    docs = report.opa_data["workloads"]["llm"]
    for a in report.ai_workloads:
        assert docs[a.name]["tier"] == a.tier.value and docs[a.name]["score"] == a.trust_score
        assert set(docs[a.name]["grants"]) == {g.target for g in a.grants}
    assert report.opa_data["subjects"]["llm"]["llama-chat"] == ["llama-chat"]


def test_a_missing_target_is_a_problem_and_denied() -> None:
    objects = [o for o in _objects() if o["kind"] != "DataSource"]
    report = _scan(objects)
    bot = next(a for a in report.ai_workloads if a.name == "support-bot")
    assert any("DataSource llm/customer-db" in p for p in bot.problems)
    denied = next(g for g in bot.grants if g.target == "DataSource/llm/customer-db")
    assert not denied.allowed and "not found" in denied.reason


def test_stored_status_is_ignored() -> None:
    objects = _objects()
    fresh = next(a for a in _scan(objects).ai_workloads if a.name == "support-bot")
    _find(objects, "AIWorkload", "support-bot")["status"] = {
        "tier": "trusted",
        "signals": [
            {
                "id": "1",
                "source": "falco",
                "rule": "Shell",
                "severity": "critical",
                "points": 90,
                "time": "2026-05-01T11:59:00Z",
            }
        ],
    }
    stale = next(a for a in _scan(objects).ai_workloads if a.name == "support-bot")
    assert (stale.trust_score, stale.tier) == (fresh.trust_score, fresh.tier)


def test_signed_models_verify_with_keys_from_scanned_secrets() -> None:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    objects = _objects()
    model = _find(objects, "AIWorkload", "llama-chat")["spec"]["models"][0]
    model["signature"] = {
        "algorithm": "ed25519",
        "signature": base64.b64encode(key.sign(model["digest"].encode())).decode(),
        "keyRef": {"name": "model-keys", "key": "llama.pem"},
    }
    unresolved = _workload(_scan(objects), "llama-chat")
    assert "AIT-P023" in {f.id for f in unresolved.findings}  # key not available
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "model-keys", "namespace": "llm"},
        "data": {"llama.pem": base64.b64encode(pem).decode()},
    }
    verified = _workload(_scan([*objects, secret]), "llama-chat")
    assert not {"AIT-P021", "AIT-P022", "AIT-P023"} & {f.id for f in verified.findings}
    llama = next(a for a in _scan([*objects, secret]).ai_workloads if a.name == "llama-chat")
    assert "AIT-SIG" in {f.id for f in llama.factors}
    assert verified.trust_score > unresolved.trust_score


# --- input handling ---------------------------------------------------------------------------


def test_invalid_aitrust_objects_are_errors_with_their_location() -> None:
    objects = _objects()
    bad_kind = copy.deepcopy(_find(objects, "AIWorkload", "support-bot"))
    bad_kind["metadata"]["name"] = "broken"
    bad_kind["spec"]["kind"] = "oracle"
    empty = copy.deepcopy(bad_kind)
    empty["metadata"]["name"] = "everything"
    empty["spec"] = {"kind": "agent", "selector": {}}
    report = _scan([*objects, bad_kind, empty])
    assert [(e.index, "broken" in e.message or "everything" in e.message) for e in report.errors] == [
        (len(objects), True),
        (len(objects) + 1, True),
    ]
    assert "selector must not be empty" in report.errors[1].message
    assert all(e.file == "platform.yaml" and e.line is not None for e in report.errors)


def test_other_objects_are_skipped_and_counted() -> None:
    extra: list[Any] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "llm"}},
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "x"},
        },
        {"replicaCount": 2},  # a values file found next to manifests
        "just a string",
    ]
    report = _scan([*_objects(), *extra])
    assert report.summary.skipped == 4
    assert report.summary.workloads == 4


def test_summary_counts() -> None:
    s = _scan(_objects()).summary
    assert (s.workloads, s.ai, s.managed, s.shadow_ai, s.ai_workloads) == (4, 3, 2, 1, 2)
    assert sum(s.by_tier.values()) == 4 and sum(s.by_category.values()) == 3
    assert s.network_policies == 4


def test_kserve_runtimes_in_the_scan_resolve_the_predictor_image() -> None:
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m", "namespace": "ns"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "custom"}, "runtime": "rt"}}},
    }
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime",
        "metadata": {"name": "rt"},
        "spec": {"containers": [{"name": "kserve-container", "image": "ghcr.io/acme/rt:latest"}]},
    }
    alone = _scan([isvc]).workloads[0]
    resolved = _scan([runtime, isvc]).workloads[0]
    assert "AIT-P016" not in {f.id for f in alone.findings}
    assert "AIT-P016" in {f.id for f in resolved.findings}  # the runtime's :latest image


def test_is_workload_object() -> None:
    assert is_workload_object({"kind": "Deployment"})
    assert is_workload_object(
        {"kind": "Rollout", "spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}}
    )
    assert not is_workload_object({"kind": "Rollout", "spec": {}})
    for kind in ("Service", "ConfigMap", "AIWorkload", "ServingRuntime"):
        assert not is_workload_object({"kind": kind})


# --- tier gap ----------------------------------------------------------------------------------


def _factor(id_: str, points: int, source: str = "posture") -> Factor:
    return Factor(id=id_, points=points, reason=f"{id_} reason", source=source)


def test_tier_gap_needs_threshold_plus_hysteresis_and_ranks_fixes() -> None:
    policy = TrustPolicySpec(thresholds=Thresholds(trusted=80, restricted=50), hysteresis=5)
    factors = [
        _factor("BASE", 100, "policy"),
        _factor("AIT-P003", -8),
        _factor("AIT-P001", -30),
        _factor("falco:shell", -12, "signal"),
        _factor("ROUNDING", -1, "policy"),
    ]
    gap = build_tier_gap(49, Tier.QUARANTINED, factors, policy)
    assert (gap.next_tier, gap.required_score, gap.gap) == (Tier.RESTRICTED, 55, 6)
    assert [f.id for f in gap.fixes] == ["AIT-P001", "falco:shell", "AIT-P003"]
    assert [f.cumulative for f in gap.fixes] == [30, 42, 50]
    assert gap.sufficient == 1
    assert "privileged" in gap.fixes[0].action  # the check's remediation
    assert "1h" in gap.fixes[1].action  # the policy's half-life

    restricted = build_tier_gap(62, Tier.RESTRICTED, factors, policy)
    assert (restricted.next_tier, restricted.required_score, restricted.gap) == (Tier.TRUSTED, 85, 23)
    assert restricted.sufficient == 1

    top = build_tier_gap(95, Tier.TRUSTED, factors, policy)
    assert top.next_tier is None and top.gap == 0 and top.sufficient == 0


def test_tier_gap_with_a_hold_or_not_enough_fixes() -> None:
    policy = TrustPolicySpec()
    gap = build_tier_gap(90, Tier.QUARANTINED, [_factor("QUARANTINE-HOLD", 0, "policy")], policy, hold=True)
    assert gap.hold and gap.gap == 0 and gap.fixes == []
    short = build_tier_gap(10, Tier.QUARANTINED, [_factor("AIT-P013", -5)], policy)
    assert short.gap == 45 and short.sufficient == 0


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=40), max_size=8),
    st.integers(min_value=0, max_value=100),
    st.integers(min_value=0, max_value=20),
)
def test_tier_gap_properties(penalties: list[int], score: int, hysteresis: int) -> None:
    policy = TrustPolicySpec(thresholds=Thresholds(trusted=80, restricted=50), hysteresis=hysteresis)
    tier = score_tier(score, policy.thresholds, 0)
    factors = [_factor(f"AIT-P{i:03d}", -p) for i, p in enumerate(penalties)]
    gap = build_tier_gap(score, tier, factors, policy)
    assert [f.points for f in gap.fixes] == sorted(penalties, reverse=True)
    assert all(a.cumulative <= b.cumulative for a, b in zip(gap.fixes, gap.fixes[1:], strict=False))
    assert all(f.cumulative <= 100 - score for f in gap.fixes)
    if gap.sufficient:
        assert gap.fixes[gap.sufficient - 1].cumulative >= gap.gap
        assert gap.sufficient == 1 or gap.fixes[gap.sufficient - 2].cumulative < gap.gap
    if gap.next_tier is not None and gap.required_score is not None:
        # Climbing from the current tier needs the margin the operator requires.
        risen = score_tier(score + gap.gap, policy.thresholds, policy.hysteresis, tier)
        assert risen.rank >= tier.rank + 1


@pytest.mark.parametrize("tier", list(Tier))
def test_tier_gap_at_every_tier(tier: Tier) -> None:
    gap = build_tier_gap(50, tier, [_factor("AIT-P001", -30)], TrustPolicySpec())
    assert (gap.next_tier is None) == (tier is Tier.TRUSTED)
