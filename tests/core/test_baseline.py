from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from aitrust.api.v1alpha1 import BaselineSettings, Severity
from aitrust.core.baseline import (
    MAX_EVENTS,
    MAX_REGIONS,
    MAX_SOURCES,
    Baseline,
    dump_baseline,
    load_baseline,
    update_baseline,
)
from aitrust.core.signal import Signal, WorkloadHint

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
SETTINGS = BaselineSettings()  # 24h learning, 10x rate factor


def call(
    at: datetime,
    event: str = "InvokeModel",
    region: str = "us-east-1",
    ip: str = "10.0.3.17",
    sid: str | None = None,
    source: str = "cloudtrail",
) -> Signal:
    return Signal(
        id=sid or f"{event}-{at.isoformat()}",
        source=source,  # type: ignore[arg-type]
        time=at,
        severity=Severity.INFO,
        rule=event,
        event_name=event,
        region=region,
        source_ip=ip,
        target=WorkloadHint(namespace="llm", workload="chat"),
    )


def feed(
    signals: Iterable[Signal], state: Baseline | None = None, settings: BaselineSettings = SETTINGS
) -> tuple[Baseline, list[Signal]]:
    anomalies: list[Signal] = []
    for signal in signals:
        state, found = update_baseline(state, signal, settings, signal.time)
        anomalies.extend(found)
    assert state is not None
    return state, anomalies


def steady(hours: float, per_hour: int = 60, start: datetime = T0, **kw: str) -> list[Signal]:
    step = timedelta(hours=1) / per_hour
    return [call(start + i * step, **kw) for i in range(int(hours * per_hour))]


def learned() -> Baseline:
    state, anomalies = feed(steady(25))
    assert anomalies == []
    return state


def test_nothing_is_flagged_while_learning() -> None:
    burst = [call(T0 + timedelta(hours=2, seconds=i)) for i in range(200)]
    _, anomalies = feed([*steady(2), *burst, call(T0 + timedelta(hours=3), region="ap-south-1")])
    assert anomalies == []


def test_rate_burst_after_learning_is_flagged_with_an_explanation() -> None:
    state = learned()
    start = T0 + timedelta(hours=25)
    burst = [call(start + timedelta(seconds=i), sid=f"b{i}") for i in range(120)]
    _, anomalies = feed(burst, state)
    [rate] = [a for a in anomalies if a.rule.startswith("anomaly:rate:")]
    assert rate.source == "anomaly" and rate.rule == "anomaly:rate:cloudtrail:InvokeModel"
    explanation = rate.evidence["explanation"]
    assert explanation.startswith("InvokeModel rate ") and "x baseline" in explanation
    assert rate.evidence["ratio"] >= SETTINGS.rate_factor
    assert rate.id.startswith("anomaly:rate:b") and rate.evidence["trigger"] == rate.id.removeprefix(
        "anomaly:rate:"
    )
    assert rate.target == WorkloadHint(namespace="llm", workload="chat")
    # One anomaly per cooldown, not one per call of the burst.
    assert len([a for a in anomalies if a.rule.startswith("anomaly:rate:")]) == 1


def test_steady_traffic_after_learning_is_quiet() -> None:
    _, anomalies = feed(steady(30))
    assert anomalies == []


def test_a_slightly_busier_hour_is_not_an_anomaly() -> None:
    state = learned()
    _, anomalies = feed(steady(1, per_hour=180, start=T0 + timedelta(hours=25)), state)
    assert anomalies == []  # 3x is below the 10x rate factor


def test_new_region_source_and_api_after_learning() -> None:
    state = learned()
    at = T0 + timedelta(hours=26)
    _, anomalies = feed(
        [call(at, event="PutUseCaseForModelAccess", region="eu-north-1", ip="203.0.113.7")], state
    )
    by_rule = {a.rule: a for a in anomalies}
    assert by_rule["anomaly:region:eu-north-1"].evidence["explanation"] == "first call from region eu-north-1"
    assert by_rule["anomaly:region:eu-north-1"].severity is Severity.MEDIUM
    assert by_rule["anomaly:source:203.0.113.7"].severity is Severity.LOW
    assert (
        "first call of PutUseCaseForModelAccess"
        in by_rule["anomaly:api:cloudtrail:PutUseCaseForModelAccess"].evidence["explanation"]
    )
    # The second time it is known.
    state2, _ = feed(
        [call(at, event="PutUseCaseForModelAccess", region="eu-north-1", ip="203.0.113.7")], state
    )
    _, again = feed(
        [
            call(
                at + timedelta(minutes=1),
                event="PutUseCaseForModelAccess",
                region="eu-north-1",
                ip="203.0.113.7",
            )
        ],
        state2,
    )
    assert again == []


def test_new_falco_rule_is_not_a_new_api_anomaly() -> None:
    state = learned()
    signal = call(T0 + timedelta(hours=26), event="Terminal shell in container", source="falco")
    _, anomalies = update_baseline(state, signal, SETTINGS, signal.time)
    assert [a.rule for a in anomalies if a.rule.startswith("anomaly:api")] == []


def test_disabled_and_anomaly_signals_are_ignored() -> None:
    state = learned()
    at = T0 + timedelta(hours=26)
    off = BaselineSettings(enabled=False)
    after, anomalies = update_baseline(state, call(at, region="eu-north-1"), off, at)
    assert after == state and anomalies == []
    synthetic = call(at, region="eu-north-1", source="anomaly")
    after, anomalies = update_baseline(state, synthetic, SETTINGS, at)
    assert after == state and anomalies == []


def test_state_is_bounded() -> None:
    signals = [
        call(
            T0 + timedelta(seconds=i), event=f"Api{i}", region=f"region-{i}", ip=f"10.0.{i // 250}.{i % 250}"
        )
        for i in range(400)
    ]
    state, _ = feed(signals)
    assert len(state.events) == MAX_EVENTS
    assert len(state.regions) == MAX_REGIONS and len(state.sources) == MAX_SOURCES
    # The most recently seen survive.
    assert "cloudtrail:Api399" in state.events and "cloudtrail:Api0" not in state.events
    assert len(json.dumps(dump_baseline(state))) < 12 * 1024


def test_json_round_trip_and_determinism() -> None:
    signals = [*steady(25), call(T0 + timedelta(hours=26), region="eu-north-1")]
    a, anomalies_a = feed(signals)
    b, anomalies_b = feed(signals)
    assert a == b and anomalies_a == anomalies_b
    data = json.loads(json.dumps(dump_baseline(a)))
    assert load_baseline(data) == a
    assert dump_baseline(load_baseline(data)) == data  # type: ignore[arg-type]


def test_updates_do_not_mutate_the_input_state() -> None:
    state = learned()
    before = dump_baseline(state)
    update_baseline(
        state, call(T0 + timedelta(hours=26), region="eu-north-1"), SETTINGS, T0 + timedelta(hours=26)
    )
    assert dump_baseline(state) == before


def test_unreadable_or_foreign_state_starts_over() -> None:
    assert load_baseline(None) is None
    assert load_baseline({}) is None
    assert load_baseline({"v": 1, "started": "soon"}) is None
    assert load_baseline({"v": 99, "started": 0, "last": 0}) is None


def test_signal_time_is_clamped_to_now() -> None:
    future = call(T0 + timedelta(days=3))
    state, _ = update_baseline(None, future, SETTINGS, T0)
    assert state.started == T0.timestamp() and state.last == T0.timestamp()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3 * 86400),
            st.sampled_from(["InvokeModel", "Converse", "ListFoundationModels", "GetObject"]),
            st.sampled_from(["us-east-1", "eu-west-1", "eu-north-1"]),
        ),
        max_size=60,
    )
)
def test_anomalies_are_well_formed_and_only_after_learning(events: list[tuple[int, str, str]]) -> None:
    signals = [
        call(T0 + timedelta(seconds=s), event=e, region=r, sid=f"s{i}") for i, (s, e, r) in enumerate(events)
    ]
    state: Baseline | None = None
    for signal in signals:
        state, anomalies = update_baseline(state, signal, SETTINGS, signal.time)
        for anomaly in anomalies:
            assert anomaly.source == "anomaly" and anomaly.id.endswith(signal.id)
            assert anomaly.evidence["explanation"]
            assert signal.time.timestamp() >= state.started + 24 * 3600
        assert state.observations <= len(signals)
