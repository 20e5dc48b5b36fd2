"""Kubernetes Events (``events.k8s.io/v1``) for what a person watching ``kubectl describe`` or an
event exporter needs to know: a workload's tier changed, and what that did to its access.

Events are written only on a tier change, never per reconcile: a resync or a stream of
0-point signals must not flood the API server (nor etcd, which keeps events for an hour).
In audit mode the note says what *would* have been enforced.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aitrust.api.v1alpha1 import API_VERSION, Factor, Mode, Tier
from aitrust.core.effective import EffectiveTrust

REPORTING_CONTROLLER = "aitrust.dev/operator"
NOTE_LIMIT = 1024  # the API server rejects longer notes
TIER_CHANGED = "TierChanged"
_TOP_FACTORS = 3
_TARGETS_LISTED = 5


def _microtime(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _names(grants: Sequence[str]) -> str:
    shown = ", ".join(grants[:_TARGETS_LISTED])
    more = len(grants) - _TARGETS_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def build_tier_note(before: Tier, eff: EffectiveTrust, factors: Sequence[Factor]) -> str:
    """One line: the change, its main causes, and the access it grants or denies (or would)."""
    parts = [f"tier {before.value} -> {eff.tier.value} (trust {eff.score})"]
    causes = sorted((f for f in factors if f.points < 0), key=lambda f: f.points)[:_TOP_FACTORS]
    if causes:
        parts.append("because " + "; ".join(f"{f.id} {f.points:+d}: {f.reason}" for f in causes))
    allowed = [g.target for g in eff.grants if g.allowed]
    denied = [g.target for g in eff.grants if not g.allowed]
    audit = eff.mode is Mode.AUDIT
    if eff.quarantined:
        parts.append("audit mode, nothing enforced: would quarantine" if audit else "quarantined")
    if denied:
        parts.append(("would deny " if audit else "denied ") + _names(denied))
    if allowed:
        parts.append(("would allow " if audit else "allowed ") + _names(allowed))
    note = "; ".join(parts)
    return note if len(note) <= NOTE_LIMIT else note[: NOTE_LIMIT - 3] + "..."


def render_tier_event(
    before: Tier,
    eff: EffectiveTrust,
    factors: Sequence[Factor],
    now: datetime,
    instance: str,
) -> dict[str, Any]:
    """The Event for a workload whose tier changed from ``before`` to ``eff.tier``."""
    lowered = eff.tier.rank < before.rank
    regarding: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "AIWorkload",
        "namespace": eff.namespace,
        "name": eff.name,
    }
    if eff.uid:
        regarding["uid"] = eff.uid
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        # As kubectl names them: the object, a dot, the time in hex (generateName may not end in ".").
        "metadata": {"name": f"{eff.name[:200]}.{int(now.timestamp() * 1e6):x}", "namespace": eff.namespace},
        "eventTime": _microtime(now),
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance[:128],
        "action": "Audit" if eff.mode is Mode.AUDIT else "Enforce",
        "reason": TIER_CHANGED,
        "type": "Warning" if lowered else "Normal",
        "regarding": regarding,
        "note": build_tier_note(before, eff, factors),
    }
