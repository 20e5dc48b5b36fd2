from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aitrust.core.conditions import build_condition, merge_conditions

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_transition_time_is_kept_while_status_holds() -> None:
    first = build_condition("Ready", True, "Reconciled", "ok", 1, T0)
    same = build_condition("Ready", True, "NoMatchingPods", "x", 2, T0 + timedelta(minutes=5), [first])
    flipped = build_condition("Ready", False, "TargetNotFound", "x", 2, T0 + timedelta(minutes=9), [same])
    assert same.last_transition_time == "2026-01-01T00:00:00Z"
    assert flipped.last_transition_time == "2026-01-01T00:09:00Z"
    assert same.observed_generation == 2


def test_merge_keeps_other_types_in_stable_order() -> None:
    ready = build_condition("Ready", True, "Reconciled", "", 1, T0)
    enforced = build_condition("Enforced", False, "EnforcementFailed", "", 1, T0)
    merged = merge_conditions([enforced], [ready])
    assert [c.type for c in merged] == ["Ready", "Enforced"]
