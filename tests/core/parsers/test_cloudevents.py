from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from aitrust.api.v1alpha1 import Severity
from aitrust.core.parsers.base import PayloadError
from aitrust.core.parsers.cloudevents import parse_cloudevents

Load = Callable[[str], Any]
EVENT = "cloudevents_prompt_injection.json"
BATCH = "cloudevents_batch.json"


def test_event_naming_a_workload(sample: Load, received_at: datetime) -> None:
    payload = sample(EVENT)
    result = parse_cloudevents(payload, received_at)
    assert result.rejected == [] and result.notes == []
    [signal] = result.signals
    assert signal.source == "custom"
    assert signal.id == f"{payload['source']}#{payload['id']}"
    assert signal.severity is Severity.HIGH
    assert signal.rule == "Prompt injection in retrieved document"
    assert signal.event_name == "dev.aitrust.signal.v1"
    assert signal.time == datetime(2024, 6, 3, 14, 50, tzinfo=UTC)
    assert (signal.target.namespace, signal.target.workload, signal.target.pod) == (
        "agents",
        "rag-agent",
        None,
    )
    assert signal.tags == ("custom", "prompt-injection", "owasp-llm01")
    assert signal.references == ("LLM01:2025", "AML.T0051.001")
    assert signal.evidence["evidence"]["classifier_score"] == 0.97


def test_sender_evidence_is_redacted(sample: Load, received_at: datetime) -> None:
    payload = sample(EVENT)
    signal = parse_cloudevents(payload, received_at).signals[0]
    assert payload["data"]["evidence"]["api_key"] not in json.dumps(signal.evidence)


def test_batch_ignores_trust_raising_fields_and_rejects_bad_event(
    sample: Load, received_at: datetime
) -> None:
    result = parse_cloudevents(sample(BATCH), received_at)
    [signal] = result.signals
    assert signal.severity is Severity.MEDIUM  # "MEDIUM" accepted case-insensitively
    assert (signal.target.namespace, signal.target.pod) == ("ml-serving", "vllm-llama-7b9c8d-x2kqp")
    dumped = json.dumps(signal.model_dump(mode="json"))
    assert "trustBoost" not in dumped and "-40" not in dumped
    assert sorted(n.path for n in result.notes) == [
        "$[0].data.points",
        "$[0].data.score",
        "$[0].data.trustBoost",
    ]
    assert [(r.index, r.path) for r in result.rejected] == [(1, "$[1].data.severity")]


def test_missing_time_uses_receive_time(sample: Load, received_at: datetime) -> None:
    payload = sample(EVENT)
    del payload["time"]
    assert parse_cloudevents(payload, received_at).signals[0].time == received_at


def test_many_ignored_keys_give_bounded_notes(sample: Load, received_at: datetime) -> None:
    payload = sample(EVENT)
    payload["data"].update({f"boost{i}": i for i in range(1000)})
    notes = parse_cloudevents(payload, received_at).notes
    assert 1 < len(notes) <= 17
    assert "more keys ignored" in notes[-1].message


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda p: p.update(specversion="0.3"), "$.specversion"),
        (lambda p: p.pop("id"), "$.id"),
        (lambda p: p["data"].update(pod={"namespace": "agents", "name": "rag-agent-0"}), "$.data"),
        (lambda p: p["data"].pop("workload"), "$.data"),
        (lambda p: p["data"].update(severity="catastrophic"), "$.data.severity"),
        (lambda p: p["data"]["workload"].update(namespace="Not_A_Namespace"), "$.data.workload.namespace"),
        (lambda p: p.update(datacontenttype="text/plain"), "$.datacontenttype"),
        (lambda p: p.update(data_base64="aGVsbG8="), "$.data_base64"),
        (lambda p: p["data"].update(tags=["x" * 500]), "$.data.tags"),
        (lambda p: p.update(data="prompt injection!"), "$.data"),
    ],
)
def test_invalid_event_is_a_payload_error(
    sample: Load, received_at: datetime, mutate: Callable[[dict[str, Any]], object], path: str
) -> None:
    payload = sample(EVENT)
    mutate(payload)
    with pytest.raises(PayloadError) as err:
        parse_cloudevents(payload, received_at)
    assert err.value.path == path


def test_json_content_types_are_accepted(sample: Load, received_at: datetime) -> None:
    payload = sample(EVENT)
    payload["datacontenttype"] = "application/cloudevents+json; charset=utf-8"
    assert len(parse_cloudevents(payload, received_at).signals) == 1


def test_batch_item_with_binary_data_is_rejected_alone(sample: Load, received_at: datetime) -> None:
    event = sample(EVENT)
    binary = {**sample(EVENT), "data_base64": "aGk="}
    result = parse_cloudevents([event, binary], received_at)
    assert len(result.signals) == 1
    assert [(r.index, r.path) for r in result.rejected] == [(1, "$[1].data_base64")]


@pytest.mark.parametrize("payload", [None, "event", 7])
def test_non_event_is_a_payload_error(payload: Any, received_at: datetime) -> None:
    with pytest.raises(PayloadError):
        parse_cloudevents(payload, received_at)
