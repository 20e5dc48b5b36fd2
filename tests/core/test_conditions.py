from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aitrust.api.v1alpha1 import Condition, Mode
from aitrust.core.conditions import (
    build_condition,
    build_enforced_condition,
    build_kstatus_conditions,
    build_ready_after_enforcement,
    merge_conditions,
)

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


def _enforced(**kw: object) -> Condition:
    args: dict[str, object] = {
        "mode": Mode.ENFORCE,
        "policy": "aitrust-agent",
        "policy_outcome": "unchanged",
        "policy_error": None,
        "opa_targets": 2,
        "opa_failures": [],
        "audit_note": "",
        "generation": 1,
        "now": T0,
    }
    args.update(kw)
    return build_enforced_condition(**args)  # type: ignore[arg-type]


def test_enforced_is_false_naming_the_opa_target_that_did_not_acknowledge() -> None:
    failing = [("http://127.0.0.1:9", "ConnectError: All connection attempts failed")]
    cond = _enforced(opa_failures=failing, policy_outcome="updated")
    assert (cond.status, cond.reason) == ("False", "OPASyncFailed")
    assert "OPA http://127.0.0.1:9 not updated (ConnectError: All connection attempts failed)" in cond.message
    # In audit mode too: an OPA without the workload's data denies it as an unknown subject.
    audit = _enforced(mode=Mode.AUDIT, policy_outcome="audit", opa_failures=failing, audit_note="would")
    assert (audit.status, audit.reason) == ("False", "OPASyncFailed")
    # In progress for kstatus readers (Flux wait): the operator re-syncs the target by itself.
    kstatus = {c.type: c for c in build_kstatus_conditions([cond], 1, T0)}
    assert "Stalled" not in kstatus and kstatus["Reconciling"].reason == "OPASyncFailed"
    assert _kstatus(list(kstatus.values()), 1, 1) == "InProgress"
    # A NetworkPolicy that cannot be written is Failed.
    np_failed = _enforced(policy_error="(403) forbidden")
    assert _kstatus(build_kstatus_conditions([np_failed], 1, T0), 1, 1) == "Failed"


def test_enforced_is_false_when_the_networkpolicy_write_failed_and_names_both_failures() -> None:
    cond = _enforced(policy_error="(500) etcd timeout", opa_failures=[("http://opa-b", "not synced yet")])
    assert (cond.status, cond.reason) == ("False", "NetworkPolicyFailed")
    assert cond.message.startswith("NetworkPolicy aitrust-agent: (500) etcd timeout")
    assert "OPA http://opa-b not updated" in cond.message


def test_enforced_turns_true_again_after_recovery_with_a_message_that_stays_put() -> None:
    failed = _enforced(opa_failures=[("http://opa-b", "not synced yet")])
    recovered = _enforced(policy_outcome="updated", now=T0 + timedelta(minutes=1), previous=[failed])
    again = _enforced(policy_outcome="unchanged", now=T0 + timedelta(minutes=2), previous=[recovered])
    assert (recovered.status, recovered.reason) == ("True", "Enforced")
    assert recovered.last_transition_time == "2026-01-01T00:01:00Z"
    # The write's outcome is not in the message: the next reconcile writes no status.
    assert again == recovered
    assert "2 targets" in recovered.message


def test_audit_mode_reports_the_plan_and_a_conflict_wins_over_it() -> None:
    audit = _enforced(mode=Mode.AUDIT, policy_outcome="audit", audit_note="audit mode, nothing written; ...")
    assert (audit.status, audit.reason, audit.message) == (
        "True",
        "AuditOnly",
        "audit mode, nothing written; ...",
    )
    conflict = _enforced(policy_outcome="foreign")
    assert (conflict.status, conflict.reason) == ("False", "PolicyConflict")


def test_ready_turns_false_while_enforcement_fails_and_back_once_it_holds() -> None:
    ready = build_condition("Ready", True, "Reconciled", "1 pod(s) scored", 1, T0)
    failing = _enforced(opa_failures=[("http://opa-b", "not synced yet")])
    [down] = build_ready_after_enforcement([ready], failing, 1, T0, [ready])
    assert (down.status, down.reason) == ("False", "EnforcementFailed")
    assert down.message.startswith("OPASyncFailed: OPA http://opa-b not updated")
    # What Argo CD's health check and kstatus then read: Degraded / Failed.
    assert {c.type for c in build_kstatus_conditions([down, failing], 1, T0)} >= {"Reconciling"}
    # Enforced again: Ready stands as evaluated.
    later = T0 + timedelta(minutes=1)
    healed = _enforced(policy_outcome="unchanged", now=later, previous=[failing])
    assert build_ready_after_enforcement([ready], healed, 1, later, [down]) == []
    # Audit mode's plan and an already False Ready are left alone.
    audit = _enforced(mode=Mode.AUDIT, policy_outcome="audit", audit_note="would")
    assert build_ready_after_enforcement([ready], audit, 1, T0) == []
    missing = build_condition("Ready", False, "TargetNotFound", "missing: x", 1, T0)
    assert build_ready_after_enforcement([missing], failing, 1, T0) == []
