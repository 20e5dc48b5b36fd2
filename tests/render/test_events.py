from __future__ import annotations

from datetime import UTC, datetime

from aitrust.api.v1alpha1 import Factor, Tier
from aitrust.render.events import (
    NOTE_LIMIT,
    build_plan_note,
    build_tier_note,
    render_tier_event,
    render_would_enforce_event,
)
from tests.render.scenarios import AUDIT, effective, policy

NOW = datetime(2026, 11, 29, 8, 0, 0, 123456, tzinfo=UTC)
SHELL = Factor(id="falco:Terminal shell", points=-40, reason="shell in container", source="signal")
BASE = Factor(id="BASE", points=100, reason="base", source="policy")
ROOT = Factor(id="AIT-P001", points=-10, reason="runs as root", source="posture")


def test_a_lowered_tier_is_a_warning_about_the_workload_naming_causes_and_denials() -> None:
    eff = effective(Tier.RESTRICTED)
    event = render_tier_event(Tier.TRUSTED, eff, [BASE, ROOT, SHELL], NOW, "aitrust-0")
    assert event["type"] == "Warning" and event["reason"] == "TierChanged" and event["action"] == "Enforce"
    assert event["regarding"] == {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "namespace": "team-a",
        "name": "agent",
        "uid": "uid-team-a-agent",
    }
    assert event["metadata"] == {"name": f"agent.{int(NOW.timestamp() * 1e6):x}", "namespace": "team-a"}
    assert event["eventTime"] == "2026-11-29T08:00:00.123456Z"
    assert (
        event["reportingController"] == "aitrust.dev/operator" and event["reportingInstance"] == "aitrust-0"
    )
    note = event["note"]
    assert note.startswith("tier trusted -> restricted (trust 65)")
    # The worst factor first; positive ones are not causes.
    assert note.index("falco:Terminal shell -40") < note.index("AIT-P001 -10") and "BASE" not in note
    # The PII DataSource needs trusted; the LLM needs restricted.
    assert "denied DataSource/data/pii" in note and "allowed ModelEndpoint/models/llm" in note


def test_a_raised_tier_is_normal() -> None:
    event = render_tier_event(Tier.QUARANTINED, effective(Tier.TRUSTED), [BASE], NOW, "x")
    assert event["type"] == "Normal"
    assert "quarantined" not in event["note"].split(";", 1)[1]


def test_audit_mode_says_what_would_happen_and_enforces_nothing() -> None:
    eff = effective(Tier.QUARANTINED, pol=policy(mode="audit"))
    event = render_tier_event(Tier.RESTRICTED, eff, [SHELL], NOW, "x")
    assert event["action"] == "Audit"
    assert "would quarantine" in event["note"] and "would deny" in event["note"]
    assert "; denied" not in event["note"] and "; quarantined" not in event["note"]


def test_the_note_stays_within_the_api_servers_limit() -> None:
    many = [Factor(id=f"rule-{i}", points=-1, reason="x" * 400, source="signal") for i in range(10)]
    note = build_tier_note(Tier.TRUSTED, effective(Tier.QUARANTINED), many)
    assert len(note) == NOTE_LIMIT and note.endswith("...")


def test_the_audit_plan_note_says_what_enforce_mode_would_write() -> None:
    note = build_plan_note(effective(Tier.RESTRICTED, pol=AUDIT))
    assert note.startswith("audit mode, nothing written; would apply NetworkPolicy aitrust-agent")
    assert "egress to DNS, ModelEndpoint/models/llm;" in note
    assert "block DataSource/data/pii: tier restricted is below minTier trusted" in note
    assert "admitted by aitrust-ingress-llm (ModelEndpoint/models/llm)" in note
    assert "not admitted by aitrust-ingress-pii (DataSource/data/pii)" in note
    quarantined = build_plan_note(effective(Tier.QUARANTINED, pol=AUDIT))
    assert "; quarantine; egress to DNS;" in quarantined and "ingress from nowhere" in quarantined
    assert "admitted by aitrust-ingress-llm" not in quarantined.replace("not admitted", "")


def test_the_plan_note_follows_the_plan_not_the_score() -> None:
    a = build_plan_note(effective(Tier.RESTRICTED, pol=AUDIT, score=61))
    b = build_plan_note(effective(Tier.RESTRICTED, pol=AUDIT, score=74))
    assert a == b
    assert a != build_plan_note(effective(Tier.TRUSTED, pol=AUDIT))


def test_a_would_enforce_event_does_not_collide_with_the_tier_event_of_the_same_reconcile() -> None:
    eff = effective(Tier.QUARANTINED, pol=AUDIT)
    note = build_plan_note(eff)
    plan = render_would_enforce_event(eff, note, NOW, "aitrust-0")
    tier = render_tier_event(Tier.TRUSTED, eff, [BASE], NOW, "aitrust-0")
    assert (plan["reason"], plan["action"], plan["type"], plan["note"]) == (
        "WouldEnforce",
        "Audit",
        "Normal",
        note,
    )
    assert plan["regarding"] == tier["regarding"]
    assert plan["metadata"]["name"] != tier["metadata"]["name"]
