from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aitrust.api.v1alpha1 import AIWorkloadStatus, Severity, TrustPolicySpec
from aitrust.core.ingest import build_ingestion, build_ingestion_steps, is_listed
from aitrust.core.signal import Signal

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
POLICY = TrustPolicySpec()


def shell(i: int) -> Signal:
    return Signal(
        id=f"s-{i}",
        source="falco",
        time=NOW - timedelta(seconds=i),
        severity=Severity.HIGH,
        rule="Terminal shell in container",
    )


def test_new_signals_are_scored_and_a_known_id_counts_once() -> None:
    first = build_ingestion(AIWorkloadStatus(), [shell(1), shell(2), shell(1)], POLICY, NOW)
    assert [r.id for r in first.added] == ["s-1", "s-2"]
    assert first.duplicates == ["s-1"]
    assert all(r.points > 0 for r in first.added)
    status = AIWorkloadStatus(signals=first.signals, baseline=first.baseline)
    again = build_ingestion(status, [shell(2), shell(3)], POLICY, NOW)
    assert [r.id for r in again.added] == ["s-3"]
    assert again.duplicates == ["s-2"]
    assert [r.id for r in again.signals] == ["s-1", "s-2", "s-3"]


def test_the_stepped_fold_pauses_every_step_and_ends_the_same() -> None:
    signals = [shell(i) for i in range(450)]
    steps = list(build_ingestion_steps(AIWorkloadStatus(), signals, POLICY, NOW, step=200))
    assert steps[:-1] == [None, None]
    assert steps[-1] == build_ingestion(AIWorkloadStatus(), signals, POLICY, NOW)


def cloud(i: int, event: str) -> Signal:
    return Signal(
        id=f"c-{i}", source="cloudtrail", time=NOW, severity=Severity.INFO, rule=event, event_name=event
    )


def test_status_lists_what_weighs_or_may_complete_a_sequence_not_noise() -> None:
    quarantining = TrustPolicySpec.model_validate(
        {
            "signals": {
                "rules": [
                    {
                        "name": "no shells",
                        "match": {"rule": "Terminal shell"},
                        "points": 0,
                        "quarantine": {"duration": "1h"},
                    }
                ]
            }
        }
    )
    noise, step = cloud(1, "DescribeInstances"), cloud(2, "ListFoundationModels")
    ingestion = build_ingestion(AIWorkloadStatus(), [shell(1), noise, step], POLICY, NOW)
    assert {r.id: is_listed(r) for r in ingestion.added} == {"s-1": True, "c-1": False, "c-2": True}
    (held,) = build_ingestion(AIWorkloadStatus(), [shell(1)], quarantining, NOW).added
    assert held.points == 0 and held.quarantine_until is not None and is_listed(held)


def test_with_the_baseline_off_noise_leaves_status_baseline_as_it_was() -> None:
    off = TrustPolicySpec.model_validate({"signals": {"baseline": {"enabled": False}}})
    noise = [cloud(i, "DescribeInstances") for i in range(20)]
    assert build_ingestion(AIWorkloadStatus(), noise, off, NOW).baseline is None
    learned = build_ingestion(AIWorkloadStatus(), noise, POLICY, NOW).baseline
    assert learned is not None and learned["events"]["cloudtrail:DescribeInstances"]["n"] == 20
    assert build_ingestion(AIWorkloadStatus(baseline=learned), noise[:1], off, NOW).baseline == learned
