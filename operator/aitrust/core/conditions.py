"""Standard status conditions (kstatus / Argo CD / Flux readable), built purely.

Ready reasons:
- ``Reconciled`` (True): scored and, in enforce mode, enforced.
- ``InvalidSpec`` (False): the spec does not parse; fix the object.
- ``InvalidPolicy`` (False): the TrustPolicy is invalid (e.g. a bad regex); built-in defaults apply.
- ``TargetNotFound`` (False): a referenced ModelEndpoint or DataSource does not exist (yet).
- ``NoMatchingPods`` (True): nothing runs yet; trust is computed from the spec alone.
- ``EnforcementFailed`` (False): writing NetworkPolicies or OPA data failed; retried with backoff.

kstatus (Flux ``wait: true``, cli-utils) also reads the abnormal-true conditions, which are
present only while true: ``Reconciling`` (waiting for a referenced target: InProgress) and
``Stalled`` (invalid spec or policy, enforcement failing or blocked: Failed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from aitrust.api.v1alpha1 import Condition


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


STALLED_REASONS = {"InvalidSpec", "InvalidPolicy"}
ENFORCEMENT_STALLED = {"EnforcementFailed", "PolicyConflict"}


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
    return merge_conditions([], kept)
