"""Status of the objects a workload refers to: ModelEndpoint, DataSource and TrustPolicy.

The API server's schema catches most mistakes, but not all: a signal rule's regex, a posture
override naming an unknown check, a field the models reject. Those objects are used anyway
(invalid rules are skipped, an invalid target is reported by the workloads that reference it),
so their own status must say so: ``Ready=False`` with the reason and ``Stalled`` for kstatus,
Argo CD and Flux.

Ready reasons: ``Accepted`` (True), ``InvalidSpec`` (False: the object does not parse),
``InvalidPolicy`` (False: the policy parses but some rules or overrides are skipped).

A ModelEndpoint or DataSource whose ingress policy cannot be written, because a NetworkPolicy
of that name exists and is not ours, carries ``Enforced=False`` with reason ``PolicyConflict``
(and so ``Stalled``) until the clash is gone; the condition is absent otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from aitrust.api.v1alpha1 import Condition, DataSource, ModelEndpoint, TrustPolicy
from aitrust.core.conditions import build_condition, build_kstatus_conditions
from aitrust.core.posture import validate_posture_settings
from aitrust.core.rules import validate_policy_rules

MODELS: dict[str, type[ModelEndpoint | DataSource | TrustPolicy]] = {
    "ModelEndpoint": ModelEndpoint,
    "DataSource": DataSource,
    "TrustPolicy": TrustPolicy,
}


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """The first few errors, each as ``field.path: message``."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _previous(body: Mapping[str, Any]) -> list[Condition]:
    raw = (body.get("status") or {}).get("conditions") or []
    out = []
    for item in raw if isinstance(raw, list) else []:
        try:
            out.append(Condition.model_validate(item))
        except ValidationError:
            continue  # someone else's malformed condition: ours replaces it
    return out


def build_object_status(
    kind: str, body: Mapping[str, Any], now: datetime, ingress_conflict: str | None = None
) -> dict[str, Any]:
    """``observedGeneration`` and the conditions for one object, as the status patch to write.

    ``ingress_conflict``: why the target's ingress policy could not be written (a foreign policy
    holds its name), "" when it could be (or is not needed), None when not known yet (a fresh
    start): then a reported conflict stays until the ingress policy has been tried again.
    """
    generation = (body.get("metadata") or {}).get("generation")
    previous = _previous(body)
    model: BaseModel | None = None
    try:
        model = MODELS[kind].model_validate({k: v for k, v in body.items() if k != "status"})
    except ValidationError as exc:
        ready = build_condition(
            "Ready", False, "InvalidSpec", describe_validation_error(exc), generation, now, previous
        )
    else:
        problems: list[str] = []
        if isinstance(model, TrustPolicy):
            problems = validate_policy_rules(model.spec) + validate_posture_settings(model.spec)
        if problems:
            message = "; ".join(problems)
            ready = build_condition("Ready", False, "InvalidPolicy", message, generation, now, previous)
        else:
            ready = build_condition("Ready", True, "Accepted", "valid", generation, now, previous)
    kept = [c for c in previous if c.type not in ("Ready", "Reconciling", "Stalled")]
    if ingress_conflict is not None:
        kept = [c for c in kept if not (c.type == "Enforced" and c.reason == "PolicyConflict")]
    if ingress_conflict:
        kept.append(
            build_condition("Enforced", False, "PolicyConflict", ingress_conflict, generation, now, previous)
        )
    # The previous Stalled/Reconciling go in too: not kept, but their transition time is.
    kstatus = [c for c in previous if c.type in ("Reconciling", "Stalled")]
    conditions = build_kstatus_conditions([ready, *kept, *kstatus], generation, now)
    return {
        "observedGeneration": generation,
        "conditions": [c.model_dump(by_alias=True, exclude_none=True) for c in conditions],
    }


def status_differs(body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether writing ``status`` would change the stored object (no write, no churn, otherwise)."""
    current = body.get("status") or {}
    return any(current.get(k) != v for k, v in status.items())
