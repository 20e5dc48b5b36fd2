"""Standard status conditions (kstatus / Argo CD / Flux readable), built purely.

Ready reasons:
- ``Reconciled`` (True): scored and, in enforce mode, enforced.
- ``InvalidSpec`` (False): the spec does not parse; fix the object.
- ``InvalidPolicy`` (False): the TrustPolicy is invalid (e.g. a bad regex); built-in defaults apply.
- ``TargetNotFound`` (False): a referenced ModelEndpoint or DataSource does not exist (yet).
- ``NoMatchingPods`` (True): nothing runs yet; trust is computed from the spec alone.
- ``EnforcementFailed`` (False): writing NetworkPolicies or OPA data failed; retried with backoff.
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
