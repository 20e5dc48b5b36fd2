"""Standard status conditions (kstatus / Argo CD / Flux readable), built purely.

Ready reasons:
- ``Reconciled`` (True): scored and, in enforce mode, enforced.
- ``InvalidSpec`` (False): the spec does not parse; fix the object.
- ``InvalidPolicy`` (False): the TrustPolicy is invalid (e.g. a bad regex); built-in defaults apply.
- ``TargetNotFound`` (False): a referenced ModelEndpoint or DataSource does not exist (yet).
- ``NoMatchingPods`` (True): nothing runs yet; trust is computed from the spec alone.
- ``EnforcementFailed`` (False): writing NetworkPolicies or OPA data failed; retried with backoff.

Enforced reasons (``build_enforced_condition``):
- ``Enforced`` (True): the NetworkPolicy and every OPA target hold the current trust.
- ``AuditOnly`` (True): audit mode; the message says what would be enforced, nothing is written.
- ``NetworkPolicyFailed`` (False): the NetworkPolicy write failed; retried.
- ``PolicyConflict`` (False): a NetworkPolicy of that name exists and is not ours; not overwritten.
- ``OPASyncFailed`` (False): an OPA target did not acknowledge the data (the message names it);
  it is re-synced with backoff, and the condition turns True once it is.

kstatus (Flux ``wait: true``, cli-utils) also reads the abnormal-true conditions, which are
present only while true: ``Reconciling`` (waiting for a referenced target, or for an OPA target
to come back: InProgress) and ``Stalled`` (invalid spec or policy, the NetworkPolicy write failing
or blocked: Failed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from aitrust.api.v1alpha1 import Condition, Mode


def _rfc3339(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_condition(
    type_: str,
    ok: bool,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
    previous: Sequence[Condition] = (),
) -> Condition:
    """A condition that keeps its lastTransitionTime while its status does not change."""
    status: Literal["True", "False"] = "True" if ok else "False"
    old = next((c for c in previous if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == status else _rfc3339(now)
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )


def merge_conditions(previous: Sequence[Condition], updates: Sequence[Condition]) -> list[Condition]:
    """Replace conditions by type, keeping the others, in a stable order."""
    by_type = {c.type: c for c in previous}
    for c in updates:
        by_type[c.type] = c
    order = ["Ready", "Scored", "Enforced"]
    return sorted(
        by_type.values(), key=lambda c: (order.index(c.type) if c.type in order else len(order), c.type)
    )


def build_enforced_condition(
    *,
    mode: Mode,
    policy: str,
    policy_outcome: str,
    policy_error: str | None,
    opa_targets: int,
    opa_failures: Sequence[tuple[str, str]],
    audit_note: str,
    generation: int | None,
    now: datetime,
    previous: Sequence[Condition] = (),
) -> Condition:
    """The ``Enforced`` condition from what the two enforcement paths reported.

    ``policy_outcome``: what the NetworkPolicy write did (created, updated, unchanged, foreign,
    audit); ``policy_error``: why it failed, if it did. ``opa_failures``: (target url, why) of
    each OPA target that did not acknowledge the data. ``audit_note``: what audit mode would
    enforce. A failure of either path makes the condition False, whatever the mode: in audit
    mode too, an OPA without the workload's data answers "unknown subject" and denies.
    """
    opa = "; ".join(f"OPA {url} not updated ({why}); re-synced with backoff" for url, why in opa_failures)
    if policy_error is not None:
        message = f"NetworkPolicy {policy}: {policy_error}" + (f"; {opa}" if opa else "")
        return build_condition("Enforced", False, "NetworkPolicyFailed", message, generation, now, previous)
    if policy_outcome == "foreign":
        message = f"NetworkPolicy {policy} exists and is not this workload's"
        return build_condition("Enforced", False, "PolicyConflict", message, generation, now, previous)
    if opa_failures:
        return build_condition("Enforced", False, "OPASyncFailed", opa, generation, now, previous)
    if mode is Mode.AUDIT:
        return build_condition("Enforced", True, "AuditOnly", audit_note, generation, now, previous)
    # Not the write's outcome (created, unchanged): the message must not change on the next
    # reconcile, or every tier change would cost a second status write.
    message = f"NetworkPolicy {policy} applied"
    if opa_targets:
        message += f"; OPA data acknowledged by {opa_targets} target{'s' if opa_targets > 1 else ''}"
    return build_condition("Enforced", True, "Enforced", message, generation, now, previous)


STALLED_REASONS = {"InvalidSpec", "InvalidPolicy"}
ENFORCEMENT_STALLED = {"EnforcementFailed", "NetworkPolicyFailed", "PolicyConflict"}
# An OPA that is down or restarting is re-synced by itself with backoff: in progress, not failed
# (an OPA rollout must not fail every Flux `wait` in the cluster).
ENFORCEMENT_RETRYING = {"OPASyncFailed"}
ENFORCEMENT_FAILED = ENFORCEMENT_STALLED | ENFORCEMENT_RETRYING


def build_ready_after_enforcement(
    conditions: Sequence[Condition],
    enforced: Condition,
    generation: int | None,
    now: datetime,
    previous: Sequence[Condition] = (),
) -> list[Condition]:
    """Ready as health checks must read it: False (``EnforcementFailed``) while enforcement fails.

    Argo CD and Flux look at Ready; a workload scored fine but not enforced is not healthy.
    Returns the replacement Ready condition, or nothing when Ready stands as computed.
    """
    ready = next((c for c in conditions if c.type == "Ready"), None)
    if ready is None or ready.status == "False" or enforced.status == "True":
        return []
    if enforced.reason not in ENFORCEMENT_FAILED:
        return []
    message = f"{enforced.reason}: {enforced.message}"
    return [build_condition("Ready", False, "EnforcementFailed", message, generation, now, previous)]


def build_kstatus_conditions(
    conditions: Sequence[Condition], generation: int | None, now: datetime
) -> list[Condition]:
    """Add or drop Reconciling/Stalled so that kstatus readers agree with Ready and Enforced."""
    by_type = {c.type: c for c in conditions}
    kept = [c for c in conditions if c.type not in ("Reconciling", "Stalled")]
    ready, enforced = by_type.get("Ready"), by_type.get("Enforced")
    if ready is not None and ready.status == "False" and ready.reason in STALLED_REASONS:
        stalled: Condition | None = build_condition(
            "Stalled", True, ready.reason, ready.message, generation, now, conditions
        )
    elif enforced is not None and enforced.status == "False" and enforced.reason in ENFORCEMENT_STALLED:
        stalled = build_condition(
            "Stalled", True, enforced.reason, enforced.message, generation, now, conditions
        )
    else:
        stalled = None
    if stalled is not None:
        kept.append(stalled)
    elif ready is not None and ready.status == "False" and ready.reason == "TargetNotFound":
        kept.append(
            build_condition("Reconciling", True, ready.reason, ready.message, generation, now, conditions)
        )
    elif enforced is not None and enforced.status == "False" and enforced.reason in ENFORCEMENT_RETRYING:
        kept.append(
            build_condition(
                "Reconciling", True, enforced.reason, enforced.message, generation, now, conditions
            )
        )
    return merge_conditions([], kept)
