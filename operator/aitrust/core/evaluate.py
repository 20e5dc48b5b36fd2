"""One workload's whole evaluation, purely: posture + signals -> trust -> effective access -> status.

The shell gathers the inputs from its cache, calls ``build_evaluation`` and fans the
result out to the NetworkPolicy, OPA and status writers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from aitrust.api.v1alpha1 import (
    AIWorkload,
    AIWorkloadStatus,
    Condition,
    DataSource,
    Mode,
    ModelEndpoint,
    Tier,
    TrustPolicySpec,
)
from aitrust.core.conditions import build_condition, merge_conditions
from aitrust.core.effective import EffectiveTrust, build_effective_trust, build_grants_status
from aitrust.core.scoring import TrustResult, score_workload
from aitrust.core.workloads import pod_views

ACK_ANNOTATION = "aitrust.dev/acknowledged-at"
MAX_FACTORS = 40


class Inputs(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)
    workload: AIWorkload
    policy: TrustPolicySpec
    policy_name: str
    policy_errors: tuple[str, ...] = ()
    targets: Mapping[tuple[str, str, str], ModelEndpoint | DataSource] = {}
    missing_targets: tuple[str, ...] = ()
    pods: tuple[Mapping[str, Any], ...] = ()
    services: tuple[Mapping[str, Any], ...] = ()
    service_selectors: Mapping[tuple[str, str], Mapping[str, str]] = {}
    public_keys: Mapping[str, str] = {}


class Evaluation(BaseModel):
    model_config = ConfigDict(frozen=True)
    result: TrustResult
    effective: EffectiveTrust
    status: AIWorkloadStatus

    @property
    def enforce(self) -> bool:
        return self.effective.mode is Mode.ENFORCE


def service_accounts_of(pods: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({(p.get("spec") or {}).get("serviceAccountName") or "default" for p in pods})


def _acknowledged_at(workload: AIWorkload) -> datetime | None:
    raw = workload.metadata.annotations.get(ACK_ANNOTATION)
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


def build_ready(inputs: Inputs, now: datetime, previous: Sequence[Condition]) -> Condition:
    generation = inputs.workload.metadata.generation
    if inputs.missing_targets:
        return build_condition(
            "Ready",
            False,
            "TargetNotFound",
            "missing: " + ", ".join(inputs.missing_targets),
            generation,
            now,
            previous,
        )
    if inputs.policy_errors:
        return build_condition(
            "Ready", False, "InvalidPolicy", "; ".join(inputs.policy_errors), generation, now, previous
        )
    if not inputs.pods:
        return build_condition(
            "Ready", True, "NoMatchingPods", "no pod matches the selector yet", generation, now, previous
        )
    return build_condition(
        "Ready",
        True,
        "Reconciled",
        f"{len(inputs.pods)} pod(s) scored under policy {inputs.policy_name}",
        generation,
        now,
        previous,
    )


def build_evaluation(inputs: Inputs, now: datetime) -> Evaluation:
    workload = inputs.workload
    # Cached per pod uid + resourceVersion: the same views on every reconcile of unchanged
    # pods, so the posture facts memoised on them are reused too.
    views = [view for pod in inputs.pods for view in pod_views(pod)]
    result = score_workload(
        views,
        inputs.policy,
        now,
        workload=workload.spec,
        services=inputs.services,
        public_keys=inputs.public_keys,
        signals=workload.status.signals,
        previous_tier=workload.status.tier,
        acknowledged_at=_acknowledged_at(workload),
    )
    effective = build_effective_trust(
        workload,
        result.score,
        result.tier,
        inputs.policy,
        inputs.targets,
        inputs.service_selectors,
        service_accounts_of(inputs.pods),
    )
    previous = workload.status.conditions
    last_signal = max((s.time for s in result.signals), default=workload.status.last_signal_time)
    status = workload.status.model_copy(
        update={
            "trust_score": result.score,
            "posture_score": result.posture_score,
            "tier": result.tier,
            "mode": effective.mode,
            "factors": _bounded_factors(result),
            "grants": build_grants_status(effective),
            "signals": result.signals,
            "quarantine": result.quarantine,
            "matched_pods": len(inputs.pods),
            "last_signal_time": last_signal,
            "observed_generation": workload.metadata.generation,
            "conditions": merge_conditions(previous, [build_ready(inputs, now, previous)]),
        }
    )
    return Evaluation(result=result, effective=effective, status=status)


def _bounded_factors(result: TrustResult) -> list[Any]:
    """Keep status small: past MAX_FACTORS, the smallest factors fold into one that keeps the sum."""
    factors = list(result.factors)
    if len(factors) <= MAX_FACTORS:
        return factors
    keep = sorted(factors[1:], key=lambda f: abs(f.points), reverse=True)[: MAX_FACTORS - 2]
    kept_ids = {id(f) for f in keep}
    head = [factors[0]] + [f for f in factors[1:] if id(f) in kept_ids]
    rest = sum(f.points for f in factors[1:] if id(f) not in kept_ids)
    folded = factors[0].model_copy(
        update={
            "id": "OTHER",
            "points": rest,
            "reason": f"{len(factors) - len(head)} smaller factors",
            "source": "policy",
        }
    )
    return [*head, folded]


def tier_changed(before: Tier | None, after: Tier) -> bool:
    return before is not after
