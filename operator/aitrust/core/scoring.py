"""The trust score of a workload: posture baseline minus decayed signal penalties.

    posture = clamp(100 - sum(finding points) + signature bonus, 0, 100)
    score   = clamp(round(posture - sum(points_i * 2 ** (-age_i / halfLife))), 0, 100)

``round`` is half-up. Every step is an explicit integer factor, in this order: ``BASE``
(+100), one per posture finding (its check id), ``AIT-SIG`` (signature bonus),
``CLAMP-POSTURE``, one per signal rule (decayed penalties of that rule's records, rounded),
``ROUNDING`` (difference between rounding per rule and rounding the total),
``QUARANTINE-HOLD`` (0 points, explains a forced tier), ``CLAMP``. They always sum to the
score. A signal only ever subtracts, so the score never exceeds the posture baseline, and as
time passes it climbs back towards it.

Tiers follow ``thresholds`` with hysteresis: a lower tier applies at once; a higher one only
once the score is at least ``threshold + hysteresis``; an active quarantine hold forces
``quarantined`` whatever the score.

Quarantine holds come from ``SignalRecord.quarantineUntil``: an RFC 3339 end time, or
``"acknowledged"`` (until an operator acknowledges). An acknowledgement at time ``A`` ends
every hold whose signal happened at or before ``A``.

Records are deduplicated by id (the copy weighing most now wins). The returned ``signals``
are the still-relevant records in input order (callers append new ones, so this is
chronological); past ``MAX_STATUS_SIGNALS`` the most relevant are kept: active holds first,
then by decayed penalty, then most recent. A record stops being relevant when its decayed
penalty drops below ``PRUNE_BELOW`` points and it holds no quarantine. The score itself is
computed from every relevant record given, so only more than ``MAX_STATUS_SIGNALS``
relevant records make the next evaluation (from the stored, bounded list) differ.

Signal factor ids are rule names, ordered by decayed penalty; a rule whose records round to
0 points gets no factor (its fraction ends up in ``ROUNDING``). Factors are immutable and
interned (``FrozenFactor``): the same inputs give equal results, and re-scoring between
signals mostly reuses objects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict

from aitrust.api.v1alpha1 import (
    AIWorkloadSpec,
    Factor,
    QuarantineStatus,
    SignalRecord,
    Thresholds,
    Tier,
    TrustPolicySpec,
)
from aitrust.core.durations import parse_duration
from aitrust.core.posture import Finding, score_posture
from aitrust.core.rules import UNTIL_ACKNOWLEDGED, parse_time, rule_title
from aitrust.core.signatures import SignatureVerdict, verify_workload_models
from aitrust.core.workloads import PodTemplateView

__all__ = [
    "MAX_STATUS_SIGNALS",
    "PRUNE_BELOW",
    "SIGNATURE_BONUS",
    "FrozenFactor",
    "TrustResult",
    "score_tier",
    "score_trust",
    "score_workload",
]

SIGNATURE_BONUS = 5
PRUNE_BELOW = 0.05
MAX_STATUS_SIGNALS = 100
_LN2 = math.log(2.0)


class FrozenFactor(Factor):
    """An immutable ``Factor``: results share them, so nobody may edit one in place."""

    model_config = ConfigDict(frozen=True)


class TrustResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    score: int
    posture_score: int
    tier: Tier
    factors: list[Factor]
    quarantine: QuarantineStatus | None
    signals: list[SignalRecord]


# score_tier runs per evaluation; Tier.rank builds a dict and Enum hashing is a Python call.
_TRUSTED, _RESTRICTED, _QUARANTINED = Tier.TRUSTED, Tier.RESTRICTED, Tier.QUARANTINED


def _rank(tier: Tier) -> int:
    """``tier.rank``, by identity."""
    return 2 if tier is _TRUSTED else 1 if tier is _RESTRICTED else 0


_set_attribute = object.__setattr__


def _trust_result(
    score: int,
    posture_score: int,
    tier: Tier,
    factors: list[Factor],
    quarantine: QuarantineStatus | None,
    signals: list[SignalRecord],
) -> TrustResult:
    """``TrustResult.model_construct`` with every field given, minus its per-field alias loop.

    Everything was built by score_trust with the right types, so nothing is re-validated;
    this is a third of the cost of model_construct on the hot path.
    """
    result = TrustResult.__new__(TrustResult)
    values = {
        "score": score,
        "posture_score": posture_score,
        "tier": tier,
        "factors": factors,
        "quarantine": quarantine,
        "signals": signals,
    }
    _set_attribute(result, "__dict__", values)
    _set_attribute(result, "__pydantic_fields_set__", set(values))
    _set_attribute(result, "__pydantic_extra__", None)
    _set_attribute(result, "__pydantic_private__", None)
    return result


def _half_up(x: float) -> int:
    return math.floor(x + 0.5)


def _threshold(thresholds: Thresholds, tier: Tier) -> int:
    if tier is Tier.TRUSTED:
        return thresholds.trusted
    if tier is Tier.RESTRICTED:
        return thresholds.restricted
    return 0


def score_tier(
    score: int, thresholds: Thresholds, hysteresis: int, previous: Tier | None = None, hold: bool = False
) -> Tier:
    """The tier of ``score`` given the previous tier (hysteresis) and whether a hold is active."""
    if hold:
        return Tier.QUARANTINED
    if score >= thresholds.trusted:
        raw = Tier.TRUSTED
    elif score >= thresholds.restricted:
        raw = Tier.RESTRICTED
    else:
        raw = Tier.QUARANTINED
    if previous is None:
        return raw
    previous_rank, raw_rank = _rank(previous), _rank(raw)
    if raw_rank <= previous_rank:
        return raw
    # Climb only as far as the margin allows, never below where we already are.
    for candidate in (Tier.TRUSTED, Tier.RESTRICTED):
        if (
            previous_rank < _rank(candidate) <= raw_rank
            and score >= _threshold(thresholds, candidate) + hysteresis
        ):
            return candidate
    return previous


# --- posture part (memoised: findings are interned by score_posture) -----------------------

_BASE = FrozenFactor(
    id="BASE", points=100, reason="Starting score before posture and signals", source="policy"
)
_POSTURE_MEMO: dict[tuple[int, ...], tuple[tuple[Any, ...], tuple[Factor, ...], int]] = {}


def _finding_factor(finding: Finding) -> Factor:
    return FrozenFactor(
        id=finding.check_id,
        points=-finding.points,
        reason=f"{finding.title}: {finding.reason}",
        source="posture",
        references=list(finding.references),
    )


def _posture_part(
    findings: Sequence[Finding], signatures: Sequence[SignatureVerdict], bonus: int
) -> tuple[tuple[Factor, ...], int]:
    key = (*map(id, findings), -1, *map(id, signatures), bonus)
    hit = _POSTURE_MEMO.get(key)
    # The entry holds the keyed objects, so no other live object can carry their ids: a key
    # hit means the very same (immutable) findings and verdicts.
    if hit is not None:
        return hit[1], hit[2]
    factors: list[Factor] = [_BASE]
    total = 100
    for finding in findings:
        if finding.points:
            factors.append(_finding_factor(finding))
            total -= finding.points
    if signatures and bonus > 0 and all(v.verified for v in signatures):
        names = ", ".join(f"{v.model} (key {v.key_id})" for v in signatures)
        factors.append(
            FrozenFactor(
                id="AIT-SIG",
                points=bonus,
                reason=f"All declared model signatures verified: {names}",
                source="signature",
                references=["LLM03:2025", "AML.T0010.003"],
            )
        )
        total += bonus
    posture = min(100, max(0, total))
    if posture != total:
        factors.append(
            FrozenFactor(
                id="CLAMP-POSTURE",
                points=posture - total,
                reason=f"Posture score limited to 0-100 (was {total})",
                source="policy",
            )
        )
    if len(_POSTURE_MEMO) >= 4096:
        _POSTURE_MEMO.clear()
    _POSTURE_MEMO[key] = ((*findings, *signatures), tuple(factors), posture)
    return tuple(factors), posture


# --- signal part --------------------------------------------------------------------------


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


_EPOCHS: dict[str, float] = {}


def _epoch(text: str) -> float:
    # A plain dict beats lru_cache here: this runs once per record per evaluation.
    value = _EPOCHS.get(text)
    if value is None:
        value = parse_time(text).timestamp()
        if len(_EPOCHS) >= 16384:
            _EPOCHS.clear()
        _EPOCHS[text] = value
    return value


def _hold_active(until: str, time: float, now: float, acknowledged_at: float | None) -> bool:
    if acknowledged_at is not None and acknowledged_at >= time:
        return False
    if until == UNTIL_ACKNOWLEDGED:
        return True
    try:
        return _epoch(until) > now
    except ValueError:
        return True  # an unreadable end is treated as "until acknowledged"


def _dedupe(
    signals: Sequence[SignalRecord], now: float, rate: float, acknowledged_at: float | None
) -> list[SignalRecord]:
    """One record per id (a redelivery), the one weighing most now; first-seen order."""
    best: dict[str, tuple[tuple[float, bool], SignalRecord]] = {}
    for record in signals:
        try:
            time = _epoch(record.time)
        except ValueError:
            continue
        age = now - time
        decayed = record.points * math.exp(-rate * age) if age > 0 else float(record.points)
        until = record.quarantine_until
        weight = (decayed, until is not None and _hold_active(until, time, now, acknowledged_at))
        seen = best.get(record.id)
        if seen is None or weight > seen[0]:
            best[record.id] = (weight, record)
    return [record for _, record in best.values()]


def _most_relevant(
    records: Sequence[SignalRecord], now: float, rate: float, acknowledged_at: float | None
) -> list[SignalRecord]:
    """The ``MAX_STATUS_SIGNALS`` records to keep: active holds, then by decayed weight, newest."""
    ranked: list[tuple[bool, float, float, str, SignalRecord]] = []
    for record in records:
        time = _epoch(record.time)  # parsed already by the caller's pass
        age = now - time
        decayed = record.points * math.exp(-rate * age) if age > 0 else float(record.points)
        until = record.quarantine_until
        hold = until is not None and _hold_active(until, time, now, acknowledged_at)
        ranked.append((not hold, -decayed, -time, record.id, record))
    ranked.sort(key=lambda e: e[:4])
    return [entry[4] for entry in ranked[:MAX_STATUS_SIGNALS]]


@lru_cache(maxsize=4096)
def _signal_factor(rule: str, source: str, points: int, count: int, latest: str, initial: int) -> Factor:
    # Interned: decay moves the points slowly, so re-scores mostly reuse the same factor.
    title = rule_title(rule)
    label = f"{rule} ({title})" if title else rule
    signals = f"{count} signals" if count > 1 else "1 signal"
    return FrozenFactor(
        id=rule,
        points=points,
        reason=f"{signals} {label}, latest {latest}: {initial} points before decay",
        source="baseline" if source == "anomaly" else "signal",
    )


@lru_cache(maxsize=256)
def _rounding_factor(points: int) -> Factor:
    return FrozenFactor(
        id="ROUNDING",
        points=points,
        reason="Difference between rounding each rule's decayed penalty and rounding their total",
        source="policy",
    )


@lru_cache(maxsize=256)
def _clamp_factor(points: int, unclamped: int) -> Factor:
    return FrozenFactor(
        id="CLAMP", points=points, reason=f"Score limited to 0-100 (was {unclamped})", source="policy"
    )


def score_trust(
    findings: Sequence[Finding],
    signals: Sequence[SignalRecord],
    policy: TrustPolicySpec,
    now: datetime,
    previous_tier: Tier | None = None,
    acknowledged_at: datetime | None = None,
    signatures: Sequence[SignatureVerdict] = (),
    signature_bonus: int = SIGNATURE_BONUS,
) -> TrustResult:
    """Combine posture findings, signature verdicts and signal records into a score and tier.

    ``signature_bonus`` points are earned when every declared model's signature verified
    (``signatures`` from ``verify_workload_models``); unverified ones are posture findings.
    """
    now_s = _aware(now).timestamp()
    ack_s = None if acknowledged_at is None else _aware(acknowledged_at).timestamp()
    posture_factors, posture = _posture_part(findings, signatures, signature_bonus)
    factors: list[Factor] = list(posture_factors)

    half_life = parse_duration(policy.signals.half_life).total_seconds()
    rate = _LN2 / half_life if half_life > 0 else math.inf
    exp = math.exp
    epochs = _EPOCHS
    prune_below = PRUNE_BELOW
    # One pass: decay, prune, and per-rule totals [penalty, count, initial points, latest
    # time, its text, source]. Kept lean: this loop is most of an evaluation's cost.
    groups: dict[str, list[Any]] = {}
    holds: list[tuple[float, str, SignalRecord]] = []
    kept: list[SignalRecord] = []
    keep = kept.append
    ids: set[str] = set()
    remember = ids.add
    for record in signals:
        # Field values straight from the instance dict: half the cost of attribute access,
        # and this loop runs per record per evaluation.
        fields = record.__dict__
        text: str = fields["time"]
        time = epochs.get(text)
        if time is None:
            try:
                time = _epoch(text)
            except ValueError:
                continue  # an unreadable record is dropped rather than failing the workload
        points: int = fields["points"]
        age = now_s - time
        # Future-dated records count in full: never more than their points.
        decayed = points * exp(-rate * age) if age > 0 else float(points)
        until: str | None = fields["quarantine_until"]
        if until is not None and _hold_active(until, time, now_s, ack_s):
            holds.append((time, fields["id"], record))
        elif decayed < prune_below:
            continue
        remember(fields["id"])
        keep(record)
        rule: str = fields["rule"]
        group = groups.get(rule)
        if group is None:
            groups[rule] = [decayed, 1, points, time, text, fields["source"]]
        else:
            group[0] += decayed
            group[1] += 1
            group[2] += points
            if time > group[3]:
                group[3] = time
                group[4] = text

    if len(ids) != len(kept):
        # Redelivered ids: keep the weightiest copy of each and start over (rare path).
        return score_trust(
            findings,
            _dedupe(signals, now_s, rate, ack_s),
            policy,
            now,
            previous_tier,
            acknowledged_at,
            signatures,
            signature_bonus,
        )

    total_penalty = 0.0
    signal_points = 0
    for _, rule, group in sorted([(-g[0], rule, g) for rule, g in groups.items()]):
        penalty = group[0]
        total_penalty += penalty
        points = -_half_up(penalty)
        if points:
            factors.append(_signal_factor(rule, group[5], points, group[1], group[4], group[2]))
            signal_points += points

    unclamped = _half_up(posture - total_penalty)
    rounding = unclamped - (posture + signal_points)
    if rounding:
        factors.append(_rounding_factor(rounding))

    quarantine: QuarantineStatus | None = None
    if holds:
        holds.sort(key=lambda h: (h[0], h[1]))
        ends = [h[2].quarantine_until or UNTIL_ACKNOWLEDGED for h in holds]
        indefinite = UNTIL_ACKNOWLEDGED in ends
        latest_end = None if indefinite else max(ends, key=_epoch)
        rules = ", ".join(dict.fromkeys(h[2].rule for h in holds))
        quarantine = QuarantineStatus(active=True, reason=rules, since=holds[0][2].time, until=latest_end)
        factors.append(
            FrozenFactor(
                id="QUARANTINE-HOLD",
                points=0,
                reason=f"Quarantine forced by {rules} "
                + ("until acknowledged" if indefinite else f"until {latest_end}"),
                source="policy",
            )
        )

    score = min(100, max(0, unclamped))
    if score != unclamped:
        factors.append(_clamp_factor(score - unclamped, unclamped))

    if len(kept) > MAX_STATUS_SIGNALS:  # else input order: the caller appends new ones
        kept = _most_relevant(kept, now_s, rate, ack_s)
    tier = score_tier(score, policy.thresholds, policy.hysteresis, previous_tier, hold=bool(holds))
    # Everything here was built with the right types: skip re-validation (hot path).
    return _trust_result(score, posture, tier, factors, quarantine, kept)


def score_workload(
    pods: Sequence[PodTemplateView],
    policy: TrustPolicySpec,
    now: datetime,
    *,
    workload: AIWorkloadSpec | None = None,
    services: Sequence[Mapping[str, Any]] = (),
    public_keys: Mapping[str, str] | None = None,
    signals: Sequence[SignalRecord] = (),
    previous_tier: Tier | None = None,
    acknowledged_at: datetime | None = None,
) -> TrustResult:
    """A full evaluation: posture, model signatures and signals, as the operator runs it."""
    findings = score_posture(pods, policy, workload, services, public_keys)
    verdicts = verify_workload_models(workload.models, public_keys) if workload is not None else []
    return score_trust(
        findings,
        signals,
        policy,
        now,
        previous_tier=previous_tier,
        acknowledged_at=acknowledged_at,
        signatures=verdicts,
    )
