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
