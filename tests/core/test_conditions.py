from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aitrust.api.v1alpha1 import Condition
from aitrust.core.conditions import build_condition, build_kstatus_conditions, merge_conditions

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


def _kstatus(conditions: list[Condition], generation: int, observed: int) -> str:
    """The kstatus rules (sigs.k8s.io/cli-utils) for a custom resource, reduced to what we emit."""
    if observed != generation:
        return "InProgress"
    by_type = {c.type: c for c in conditions}
    if "Stalled" in by_type and by_type["Stalled"].status == "True":
        return "Failed"
    if "Reconciling" in by_type and by_type["Reconciling"].status == "True":
        return "InProgress"
    return "Current"


def test_kstatus_reads_failed_inprogress_and_current() -> None:
    ok = build_condition("Ready", True, "Reconciled", "", 3, T0)
    invalid = build_condition("Ready", False, "InvalidPolicy", "bad regex", 3, T0)
    waiting = build_condition("Ready", False, "TargetNotFound", "missing: ModelEndpoint a/b", 3, T0)
    conflict = build_condition("Enforced", False, "PolicyConflict", "not ours", 3, T0)
    assert _kstatus(build_kstatus_conditions([ok], 3, T0), 3, 3) == "Current"
    assert _kstatus(build_kstatus_conditions([invalid], 3, T0), 3, 3) == "Failed"
    assert _kstatus(build_kstatus_conditions([waiting], 3, T0), 3, 3) == "InProgress"
    assert _kstatus(build_kstatus_conditions([ok, conflict], 3, T0), 3, 3) == "Failed"
    assert _kstatus(build_kstatus_conditions([ok], 3, T0), 3, 2) == "InProgress"
    # Once the problem is gone, the abnormal condition disappears again.
    stalled = build_kstatus_conditions([invalid], 3, T0)
    healed = build_kstatus_conditions([*[c for c in stalled if c.type != "Ready"], ok], 3, T0)
    assert [c.type for c in healed] == ["Ready"]
