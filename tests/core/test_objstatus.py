from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aitrust.core.objstatus import build_object_status, status_differs

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def _policy(rules: list[dict[str, Any]], generation: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "default", "namespace": "ml", "generation": generation},
        "spec": {"signals": {"rules": rules}},
    }


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_a_valid_policy_is_ready_at_its_generation() -> None:
    status = build_object_status("TrustPolicy", _policy([]), NOW)
    ready = _conditions(status)["Ready"]
    assert status["observedGeneration"] == 3
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Accepted", 3)
    assert "Stalled" not in _conditions(status)


def test_a_bad_regex_is_reported_in_the_policys_own_status_and_stalls_it() -> None:
    bad = {"name": "shells", "match": {"rule": "(unclosed"}, "points": 30}
    status = build_object_status("TrustPolicy", _policy([bad]), NOW)
    conditions = _conditions(status)
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "InvalidPolicy"
    assert "signals.rules[0] (shells): match.rule" in conditions["Ready"]["message"]
    assert conditions["Stalled"]["status"] == "True"


def test_a_spec_the_models_reject_names_the_field() -> None:
    body = {
        "kind": "ModelEndpoint",
        "metadata": {"name": "llm", "namespace": "ml", "generation": 1},
        "spec": {"provider": "in-cluster", "selector": {"matchLabels": {"app": "llm"}}, "minTier": "bogus"},
    }
    ready = _conditions(build_object_status("ModelEndpoint", body, NOW))["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "minTier" in ready["message"]


def test_the_transition_time_holds_while_the_status_does_not_change_and_nothing_is_rewritten() -> None:
    body = _policy([])
    body["status"] = build_object_status("TrustPolicy", body, NOW)
    again = build_object_status("TrustPolicy", body, NOW + timedelta(hours=1))
    assert not status_differs(body, again)
    body["metadata"]["generation"] = 4
    newer = build_object_status("TrustPolicy", body, NOW + timedelta(hours=1))
    assert status_differs(body, newer)
    assert (
        _conditions(newer)["Ready"]["lastTransitionTime"]
        == _conditions(body["status"])["Ready"]["lastTransitionTime"]
    )


def test_other_writers_conditions_are_kept_and_malformed_ones_dropped() -> None:
    body = _policy([])
    body["status"] = {
        "conditions": [
            {
                "type": "Synced",
                "status": "True",
                "reason": "GitOps",
                "message": "",
                "lastTransitionTime": "x",
            },
            {"type": 7},
        ]
    }
    types = [c["type"] for c in build_object_status("TrustPolicy", body, NOW)["conditions"]]
    assert types == ["Ready", "Synced"]


def _endpoint() -> dict[str, Any]:
    return {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "llm", "namespace": "ml", "generation": 2},
        "spec": {"provider": "in-cluster", "selector": {"matchLabels": {"app": "llm"}}},
    }


def test_an_ingress_policy_conflict_is_reported_on_the_endpoint_until_it_is_gone() -> None:
    body = _endpoint()
    clash = "NetworkPolicy aitrust-ingress-llm exists and is not this ModelEndpoint's; ingress not enforced"
    body["status"] = build_object_status("ModelEndpoint", body, NOW, ingress_conflict=clash)
    conditions = _conditions(body["status"])
    assert (conditions["Enforced"]["status"], conditions["Enforced"]["reason"]) == ("False", "PolicyConflict")
    assert conditions["Enforced"]["message"] == clash
    assert conditions["Stalled"]["reason"] == "PolicyConflict"
    assert conditions["Ready"]["status"] == "True"  # the object itself is fine
    # Not known yet (a fresh start): the report stays, and nothing is rewritten.
    assert not status_differs(body, build_object_status("ModelEndpoint", body, NOW + timedelta(minutes=1)))
    # Resolved: the condition and Stalled go.
    cleared = _conditions(build_object_status("ModelEndpoint", body, NOW, ingress_conflict=""))
    assert set(cleared) == {"Ready"}
