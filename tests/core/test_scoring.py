from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from aitrust.api.v1alpha1 import (
    AIWorkloadStatus,
    DeclaredModel,
    Severity,
    SignalRecord,
    Thresholds,
    Tier,
    TrustPolicySpec,
)
from aitrust.core.posture import CHECKS, Finding
from aitrust.core.rules import UNTIL_ACKNOWLEDGED, format_time, score_signal
from aitrust.core.scoring import (
    MAX_STATUS_SIGNALS,
    SIGNATURE_BONUS,
    TrustResult,
    score_tier,
    score_trust,
    score_workload,
)
from aitrust.core.signal import Signal
from aitrust.core.signatures import SignatureStatus, SignatureVerdict

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
POLICY = TrustPolicySpec()  # thresholds 80/50, hysteresis 5, half-life 1h
POSTURE_ENDS = {"BASE", "AIT-SIG", "CLAMP-POSTURE"}


def finding(check_id: str = "AIT-P016", points: int = 8) -> Finding:
    check = CHECKS[check_id]
    return Finding(
        check_id=check_id,
        title=check.title,
        severity=check.severity,
        points=points,
        reason='container "x": something',
        remediation=check.remediation,
        references=check.references,
    )


def record(
    rid: str = "s1",
    points: int = 35,
    age: timedelta = timedelta(0),
    rule: str = "AIT-R001",
    severity: Severity = Severity.HIGH,
    until: str | None = None,
    source: str = "falco",
) -> SignalRecord:
    return SignalRecord(
        id=rid,
        source=source,
        rule=rule,
        severity=severity,
        points=points,
        time=format_time(NOW - age),
        quarantine_until=until,
    )


def verdict(status: SignatureStatus, name: str = "m") -> SignatureVerdict:
    return SignatureVerdict(
        model=name, digest="sha256:" + "a" * 64, status=status, reason="r", key_id="0123456789abcdef"
    )


def total(result: TrustResult) -> int:
    return sum(f.points for f in result.factors)


def posture_part(result: TrustResult) -> int:
    return sum(
        f.points for f in result.factors if f.source in ("posture", "signature") or f.id in POSTURE_ENDS
    )


# --- examples ----------------------------------------------------------------------------------


def test_no_findings_no_signals_is_a_perfect_score() -> None:
    result = score_trust([], [], POLICY, NOW)
    assert (result.score, result.posture_score, result.tier) == (100, 100, Tier.TRUSTED)
    assert [(f.id, f.points) for f in result.factors] == [("BASE", 100)]
    assert result.quarantine is None and result.signals == []


def test_findings_lower_the_posture_in_order() -> None:
    result = score_trust([finding("AIT-P002", 8), finding("AIT-P016", 8)], [], POLICY, NOW)
    assert [(f.id, f.points, f.source) for f in result.factors] == [
        ("BASE", 100, "policy"),
        ("AIT-P002", -8, "posture"),
        ("AIT-P016", -8, "posture"),
    ]
    assert result.score == result.posture_score == 84
    assert result.factors[1].reason.startswith("Privilege escalation allowed: ")
    assert result.factors[1].references == list(CHECKS["AIT-P002"].references)


def test_posture_below_zero_is_clamped_explicitly() -> None:
    result = score_trust([finding("AIT-P001", 60), finding("AIT-P012", 70)], [], POLICY, NOW)
    assert result.posture_score == 0 and result.score == 0
    assert result.factors[-1].id == "CLAMP-POSTURE" and result.factors[-1].points == 30
    assert total(result) == 0


def test_verified_signatures_earn_a_bonus_capped_at_100() -> None:
    ok = [verdict(SignatureStatus.VERIFIED, "a"), verdict(SignatureStatus.VERIFIED, "b")]
    result = score_trust([finding(points=10)], [], POLICY, NOW, signatures=ok)
    assert result.score == 90 + SIGNATURE_BONUS
    sig = next(f for f in result.factors if f.id == "AIT-SIG")
    assert (
        sig.points == SIGNATURE_BONUS
        and sig.source == "signature"
        and "a (key 0123456789abcdef)" in sig.reason
    )
    capped = score_trust([], [], POLICY, NOW, signatures=ok)
    assert capped.score == 100 and [f.id for f in capped.factors] == ["BASE", "AIT-SIG", "CLAMP-POSTURE"]
    partial = score_trust([], [], POLICY, NOW, signatures=[*ok, verdict(SignatureStatus.MISSING)])
    assert "AIT-SIG" not in {f.id for f in partial.factors}


def test_signal_penalty_halves_every_half_life() -> None:
    fresh = score_trust([], [record(points=60)], POLICY, NOW)
    hour = score_trust([], [record(points=60, age=timedelta(hours=1))], POLICY, NOW)
    two = score_trust([], [record(points=60, age=timedelta(hours=2))], POLICY, NOW)
    assert (fresh.score, hour.score, two.score) == (40, 70, 85)
    slow = TrustPolicySpec.model_validate({"signals": {"halfLife": "4h"}})
    assert score_trust([], [record(points=60, age=timedelta(hours=4))], slow, NOW).score == 70


def test_signal_factors_group_by_rule_and_name_their_points() -> None:
    records = [
        record("a", 35, timedelta(minutes=1)),
        record("b", 35, timedelta(minutes=2)),
        record("c", 15, rule="Launch Suspicious Network Tool in Container", severity=Severity.MEDIUM),
    ]
    result = score_trust([finding(points=8)], records, POLICY, NOW)
    shell = next(f for f in result.factors if f.id == "AIT-R001")
    assert shell.source == "signal" and shell.points < -60
    assert shell.reason == (
        "2 signals AIT-R001 (Shell or interpreter spawned in an AI workload), latest 2026-05-01T11:59:00Z: "
        "70 points before decay"
    )
    assert total(result) == result.score
    assert [f.id for f in result.factors].index("AIT-R001") < [f.id for f in result.factors].index(
        "Launch Suspicious Network Tool in Container"
    )


def test_rounding_goes_into_an_explicit_factor() -> None:
    # Two rules of 0.4 points each: neither rounds to a point, together they do.
    records = [
        record("a", 1, timedelta(hours=1.32), rule="r1"),
        record("b", 1, timedelta(hours=1.32), rule="r2"),
    ]
    result = score_trust([], records, POLICY, NOW)
    assert result.score == 99
    assert [(f.id, f.points) for f in result.factors] == [("BASE", 100), ("ROUNDING", -1)]


def test_score_is_clamped_at_zero_explicitly() -> None:
    records = [record(f"s{i}", 60, rule=f"r{i}") for i in range(3)]
    result = score_trust([finding(points=30)], records, POLICY, NOW)
    assert result.score == 0 and result.factors[-1].id == "CLAMP" and result.factors[-1].points == 110
    assert total(result) == 0 and result.tier is Tier.QUARANTINED


def test_anomaly_records_are_baseline_factors() -> None:
    anomaly = record("x", 15, rule="anomaly:region:eu-north-1", severity=Severity.MEDIUM, source="anomaly")
    [*_, factor] = score_trust([], [anomaly], POLICY, NOW).factors
    assert factor.id == "anomaly:region:eu-north-1" and factor.source == "baseline"


def test_future_dated_records_count_at_most_their_points() -> None:
    result = score_trust([], [record(points=20, age=-timedelta(hours=5))], POLICY, NOW)
    assert result.score == 80


def test_redelivered_ids_count_once_the_heavier_copy() -> None:
    light, heavy = record("dup", 5), record("dup", 35)
    for records in ([light, heavy], [heavy, light], [heavy, heavy]):
        result = score_trust([], records, POLICY, NOW)
        assert result.score == 65 and result.signals == [heavy]


def test_unreadable_record_times_are_dropped() -> None:
    bad = SignalRecord.model_construct(
        id="bad",
        source="falco",
        rule="r",
        severity=Severity.HIGH,
        points=50,
        time="yesterday",
        quarantine_until=None,
    )
    result = score_trust([], [bad, record("ok", 10)], POLICY, NOW)
    assert result.score == 90 and [r.id for r in result.signals] == ["ok"]


# --- quarantine holds -------------------------------------------------------------------------


def test_hold_until_acknowledged_forces_quarantine_whatever_the_score() -> None:
    hold = record(
        "h", 0, timedelta(hours=30), rule="AIT-R025", severity=Severity.CRITICAL, until=UNTIL_ACKNOWLEDGED
    )
    result = score_trust([], [hold], POLICY, NOW, previous_tier=Tier.TRUSTED)
    assert result.score == 100 and result.tier is Tier.QUARANTINED
    assert result.quarantine is not None and result.quarantine.active
    assert (result.quarantine.reason, result.quarantine.until) == ("AIT-R025", None)
    assert result.quarantine.since == hold.time
    assert result.signals == [hold]  # kept although its penalty is gone
    assert any(f.id == "QUARANTINE-HOLD" and f.points == 0 for f in result.factors)
    assert total(result) == result.score
    # Acknowledged after it happened: the hold ends; the tier climbs back only via hysteresis.
    acked = score_trust([], [hold], POLICY, NOW, previous_tier=Tier.QUARANTINED, acknowledged_at=NOW)
    assert acked.quarantine is None and acked.tier is Tier.TRUSTED and acked.signals == []
    # An acknowledgement older than the signal does not.
    old_ack = NOW - timedelta(hours=31)
    assert score_trust([], [hold], POLICY, NOW, acknowledged_at=old_ack).tier is Tier.QUARANTINED


def test_timed_hold_expires() -> None:
    until = format_time(NOW + timedelta(minutes=30))
    hold = record("h", 60, timedelta(minutes=5), rule="no-shells", until=until)
    during = score_trust([], [hold], POLICY, NOW)
    assert (
        during.tier is Tier.QUARANTINED and during.quarantine is not None and during.quarantine.until == until
    )
    after = score_trust([], [hold], POLICY, NOW + timedelta(minutes=31), previous_tier=Tier.QUARANTINED)
    assert after.quarantine is None and after.tier is Tier.RESTRICTED  # score 63 clears 50 + 5


# --- pruning and bounds ----------------------------------------------------------------------


def test_decayed_records_are_pruned_and_the_list_is_bounded() -> None:
    old = record("old", 35, timedelta(hours=12))
    assert score_trust([], [old], POLICY, NOW).signals == []
    many = [record(f"s{i:03d}", 1 + i % 30, timedelta(minutes=i), rule=f"r{i % 7}") for i in range(150)]
    hold = record("hold", 1, timedelta(hours=9), until=UNTIL_ACKNOWLEDGED)
    result = score_trust([], [*many, hold], POLICY, NOW)
    assert len(result.signals) == MAX_STATUS_SIGNALS and result.signals[0] is hold
    kept = {r.id for r in result.signals}
    dropped = [r for r in many if r.id not in kept]
    weight = {r.id: r.points * 0.5 ** (int(r.id[1:]) / 60) for r in many}
    assert max(weight[r.id] for r in dropped) <= min(weight[i] for i in kept if i != "hold")
    AIWorkloadStatus(signals=result.signals)  # fits the API's max_length


def test_results_are_api_serialisable_and_immutable() -> None:
    result = score_trust([finding()], [record()], POLICY, NOW)
    status = AIWorkloadStatus(
        trust_score=result.score, posture_score=result.posture_score, tier=result.tier, factors=result.factors
    )
    dumped = json.loads(status.model_dump_json(by_alias=True))
    assert sum(f["points"] for f in dumped["factors"]) == dumped["trustScore"]
    with pytest.raises(ValueError, match="frozen"):
        result.factors[0].points = 1


def test_results_are_built_as_model_construct_would() -> None:
    # score_trust builds TrustResult directly (hot path); it must be what model_construct makes.
    result = score_trust([finding()], [record(until=UNTIL_ACKNOWLEDGED)], POLICY, NOW)
    values = {name: getattr(result, name) for name in TrustResult.model_fields}
    expected = TrustResult.model_construct(**values)
    assert list(result.__dict__) == list(expected.__dict__) == list(TrustResult.model_fields)
    assert result == expected
    assert result.model_fields_set == expected.model_fields_set
    assert result.__pydantic_extra__ is expected.__pydantic_extra__ is None
    assert result.__pydantic_private__ is expected.__pydantic_private__ is None
    assert result.model_dump() == expected.model_dump()
    assert not TrustResult.__private_attributes__ and not TrustResult.__pydantic_post_init__
    with pytest.raises(ValueError, match="frozen"):
        result.score = 1  # type: ignore[misc]


# --- tiers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "previous", "expected"),
    [
        (85, None, Tier.TRUSTED),
        (80, None, Tier.TRUSTED),
        (79, Tier.TRUSTED, Tier.RESTRICTED),  # down at once
        (49, Tier.TRUSTED, Tier.QUARANTINED),
        (82, Tier.RESTRICTED, Tier.RESTRICTED),  # not clear of 80 by 5
        (85, Tier.RESTRICTED, Tier.TRUSTED),
        (54, Tier.QUARANTINED, Tier.QUARANTINED),
        (55, Tier.QUARANTINED, Tier.RESTRICTED),
        (84, Tier.QUARANTINED, Tier.RESTRICTED),  # climbs only as far as the margin allows
        (90, Tier.QUARANTINED, Tier.TRUSTED),
        (60, Tier.TRUSTED, Tier.RESTRICTED),
    ],
)
def test_tier_hysteresis(score: int, previous: Tier | None, expected: Tier) -> None:
    assert score_tier(score, Thresholds(), 5, previous) is expected


def test_hold_beats_everything() -> None:
    assert score_tier(100, Thresholds(), 5, Tier.TRUSTED, hold=True) is Tier.QUARANTINED


# --- full evaluation ---------------------------------------------------------------------------


def test_score_workload_end_to_end(load: Callable[[str], Any], ed_key: Any, pem_of: Any, sign: Any) -> None:
    loaded = load("hardened-vllm.yaml")
    wl = loaded.workload()
    assert wl is not None and wl.models[0].digest is not None
    digest = wl.models[0].digest
    signed = DeclaredModel.model_validate(
        {
            **wl.models[0].model_dump(by_alias=True, exclude_none=True),
            "signature": {
                "algorithm": "ed25519",
                "signature": sign(ed_key, digest.encode()),
                "keyRef": {"name": "signing", "key": "pub"},
            },
        }
    )
    wl = wl.model_copy(update={"models": [signed]})
    keys = {"signing/pub": pem_of(ed_key)}
    clean = score_workload(
        loaded.pods(), POLICY, NOW, workload=wl, services=loaded.services(), public_keys=keys
    )
    assert clean.score == 100 and clean.tier is Tier.TRUSTED
    assert [f.id for f in clean.factors] == ["BASE", "AIT-SIG", "CLAMP-POSTURE"]

    shell = Signal(
        id="f1", source="falco", time=NOW, severity=Severity.MEDIUM, rule="Terminal shell in container"
    )
    records = [score_signal(shell, POLICY, NOW)]
    hit = score_workload(
        loaded.pods(),
        POLICY,
        NOW,
        workload=wl,
        services=loaded.services(),
        public_keys=keys,
        signals=records,
        previous_tier=clean.tier,
    )
    assert hit.score == 65 and hit.tier is Tier.RESTRICTED
    later = score_workload(
        loaded.pods(),
        POLICY,
        NOW + timedelta(hours=3),
        workload=wl,
        services=loaded.services(),
        public_keys=keys,
        signals=hit.signals,
        previous_tier=hit.tier,
    )
    assert later.score == 96 and later.tier is Tier.TRUSTED  # 96 clears 80 + 5


# --- properties --------------------------------------------------------------------------------

SEVERITIES = list(Severity)


@st.composite
def records_st(draw: st.DrawFn, max_size: int = 25) -> list[SignalRecord]:
    n = draw(st.integers(min_value=0, max_value=max_size))
    out = []
    for i in range(n):
        until = draw(
            st.sampled_from([None, None, None, UNTIL_ACKNOWLEDGED, format_time(NOW + timedelta(minutes=10))])
        )
        out.append(
            record(
                rid=f"s{draw(st.integers(min_value=0, max_value=max_size + 5))}" if i % 3 else f"u{i}",
                points=draw(st.integers(min_value=0, max_value=100)),
                age=timedelta(seconds=draw(st.integers(min_value=-3600, max_value=48 * 3600))),
                rule=draw(st.sampled_from(["AIT-R001", "AIT-R004", "custom", "anomaly:rate:x"])),
                severity=draw(st.sampled_from(SEVERITIES)),
                until=until,
            )
        )
    return out


findings_st = st.lists(
    st.builds(finding, st.sampled_from(sorted(CHECKS)), st.integers(min_value=0, max_value=100)),
    max_size=8,
    unique_by=lambda f: f.check_id,
)
verdicts_st = st.lists(st.builds(verdict, st.sampled_from(list(SignatureStatus))), max_size=3)
tiers_st = st.one_of(st.none(), st.sampled_from(list(Tier)))
policy_st = st.builds(
    lambda trusted, gap, hyst, half: TrustPolicySpec.model_validate(
        {
            "thresholds": {"trusted": trusted, "restricted": max(0, trusted - gap)},
            "hysteresis": hyst,
            "signals": {"halfLife": half},
        }
    ),
    st.integers(min_value=1, max_value=100),
    st.integers(min_value=0, max_value=60),
    st.integers(min_value=0, max_value=50),
    st.sampled_from(["1h", "30m", "6h", "90s"]),
)
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _score(
    findings: Sequence[Finding],
    records: Sequence[SignalRecord],
    policy: TrustPolicySpec,
    now: datetime = NOW,
    **kw: Any,
) -> TrustResult:
    return score_trust(findings, records, policy, now, **kw)


@PROPS
@given(findings_st, records_st(), verdicts_st, policy_st, tiers_st)
def test_property_score_bounds_and_exact_factors(
    findings: list[Finding],
    records: list[SignalRecord],
    verdicts: list[SignatureVerdict],
    policy: TrustPolicySpec,
    previous: Tier | None,
) -> None:
    result = _score(findings, records, policy, signatures=verdicts, previous_tier=previous)
    assert 0 <= result.score <= result.posture_score <= 100
    assert total(result) == result.score
    assert posture_part(result) == result.posture_score
    assert all(isinstance(f.points, int) for f in result.factors)
    assert len(result.signals) <= MAX_STATUS_SIGNALS
    assert len({r.id for r in result.signals}) == len(result.signals)
    # Same inputs, same output.
    assert _score(findings, records, policy, signatures=verdicts, previous_tier=previous) == result


@PROPS
@given(findings_st, records_st(), records_st(max_size=3), policy_st)
def test_property_a_new_signal_never_raises_the_score(
    findings: list[Finding], records: list[SignalRecord], extra: list[SignalRecord], policy: TrustPolicySpec
) -> None:
    before = _score(findings, records, policy)
    fresh = [r.model_copy(update={"id": f"new-{i}"}) for i, r in enumerate(extra)]
    after = _score(findings, [*records, *fresh], policy)
    assert after.score <= before.score
    assert after.posture_score == before.posture_score


@PROPS
@given(findings_st, records_st(), policy_st, st.integers(min_value=1, max_value=72 * 3600))
def test_property_decay_is_monotone_towards_the_posture(
    findings: list[Finding], records: list[SignalRecord], policy: TrustPolicySpec, step: int
) -> None:
    earlier = _score(findings, records, policy, NOW)
    later = _score(findings, records, policy, NOW + timedelta(seconds=step))
    assert earlier.score <= later.score <= later.posture_score
    far = _score(findings, records, policy, NOW + timedelta(days=60))
    assert far.score == far.posture_score


@PROPS
@given(findings_st, records_st(), policy_st, tiers_st, st.booleans())
def test_property_tier_honours_thresholds_hysteresis_and_holds(
    findings: list[Finding],
    records: list[SignalRecord],
    policy: TrustPolicySpec,
    previous: Tier | None,
    ack: bool,
) -> None:
    result = _score(findings, records, policy, previous_tier=previous, acknowledged_at=NOW if ack else None)
    thresholds = policy.thresholds
    raw = score_tier(result.score, thresholds, 0)
    if result.quarantine is not None:
        assert result.tier is Tier.QUARANTINED
        return
    assert result.tier.rank <= raw.rank  # never above what the score supports
    if previous is None or raw.rank <= previous.rank:
        assert result.tier is raw  # downgrades (and first evaluations) are immediate
    else:
        assert result.tier.rank >= previous.rank  # an upgrade never lowers the tier
        if result.tier is not previous:
            threshold = thresholds.trusted if result.tier is Tier.TRUSTED else thresholds.restricted
            assert result.score >= threshold + policy.hysteresis


@PROPS
@given(records_st(max_size=10), st.integers(min_value=0, max_value=3600))
def test_property_acknowledgement_only_ever_lifts_holds(records: list[SignalRecord], delay: int) -> None:
    assume(any(r.quarantine_until for r in records))
    held = _score([], records, POLICY)
    acked = _score([], records, POLICY, acknowledged_at=NOW + timedelta(seconds=delay))
    assert acked.score == held.score
    assert acked.quarantine is None or held.quarantine is not None
