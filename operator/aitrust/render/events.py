"""Kubernetes Events (``events.k8s.io/v1``) for what a person watching ``kubectl describe`` or an
event exporter needs to know: a workload's tier changed, and what that did to its access.

Events are written only on a tier change, never per reconcile: a resync or a stream of
0-point signals must not flood the API server (nor etcd, which keeps events for an hour).
In audit mode the note says what *would* have been enforced, and a ``WouldEnforce`` Event
follows each change of the would-be plan (``build_plan_note``, which the ``Enforced`` condition
also carries, so the shell compares it with the stored status and a restart re-sends nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aitrust.api.v1alpha1 import API_VERSION, Factor, Mode, Tier
from aitrust.core.effective import EffectiveTrust
from aitrust.render.networkpolicy import render_enforcement_plan

REPORTING_CONTROLLER = "aitrust.dev/operator"
NOTE_LIMIT = 1024  # the API server rejects longer notes
TIER_CHANGED = "TierChanged"
WOULD_ENFORCE = "WouldEnforce"
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


def build_plan_note(eff: EffectiveTrust) -> str:
    """What enforcement would write for an audit-mode workload, in one bounded line.

    Built from ``render_enforcement_plan``, so it says exactly what enforce mode writes. Only
    the plan (not the score) is in it: it changes when the would-be policies change, not on
    every signal.
    """
    own, *targets = render_enforcement_plan(eff)
    parts = [f"audit mode, nothing written; would apply NetworkPolicy {own['name']}"]
    if eff.quarantined:
        parts.append("quarantine")
    parts.append("egress to " + (_names(own["egress"]) if own["egress"] else "nothing"))
    if own["blocked"]:
        parts.append("block " + _names(own["blocked"]))
    ingress = own["ingress"]
    parts.append("ingress from " + ("anywhere" if ingress == ["*"] else _names(ingress) or "nowhere"))
    admitted = [f"{t['name']} ({t['target']})" for t in targets if t["admit"]]
    refused = [f"{t['name']} ({t['target']})" for t in targets if not t["admit"]]
    if admitted:
        parts.append("admitted by " + _names(admitted))
    if refused:
        parts.append("not admitted by " + _names(refused))
    note = "; ".join(parts)
    return note if len(note) <= NOTE_LIMIT else note[: NOTE_LIMIT - 3] + "..."


def render_would_enforce_event(
    eff: EffectiveTrust, note: str, now: datetime, instance: str
) -> dict[str, Any]:
    """The Event for an audit-mode workload whose would-be plan (``note``) changed."""
    # Its own name suffix: a TierChanged Event of the same reconcile has the same time.
    return _event(eff, WOULD_ENFORCE, "Normal", "Audit", note, now, instance, suffix="-plan")


def render_tier_event(
    before: Tier,
    eff: EffectiveTrust,
    factors: Sequence[Factor],
    now: datetime,
    instance: str,
) -> dict[str, Any]:
    """The Event for a workload whose tier changed from ``before`` to ``eff.tier``."""
    lowered = eff.tier.rank < before.rank
    action = "Audit" if eff.mode is Mode.AUDIT else "Enforce"
    note = build_tier_note(before, eff, factors)
    return _event(eff, TIER_CHANGED, "Warning" if lowered else "Normal", action, note, now, instance)


def _event(
    eff: EffectiveTrust,
    reason: str,
    type_: str,
    action: str,
    note: str,
    now: datetime,
    instance: str,
    suffix: str = "",
) -> dict[str, Any]:
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
        "metadata": {
            "name": f"{eff.name[:200]}.{int(now.timestamp() * 1e6):x}{suffix}",
            "namespace": eff.namespace,
        },
        "eventTime": _microtime(now),
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance[:128],
        "action": action,
        "reason": reason,
        "type": type_,
        "regarding": regarding,
        "note": note,
    }
