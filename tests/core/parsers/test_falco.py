from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aitrust.api.v1alpha1 import Severity
from aitrust.core.parsers.base import REDACTED, PayloadError
from aitrust.core.parsers.falco import parse_falco

Load = Callable[[str], Any]
SHELL = "falco_terminal_shell_vllm.json"
ENVIRON = "falco_proc_environ_secrets.json"


def test_terminal_shell_on_vllm_pod(sample: Load, received_at: datetime) -> None:
    payload = sample(SHELL)
    result = parse_falco(payload, received_at)
    assert result.rejected == [] and result.notes == []
    [signal] = result.signals
    assert signal.id == payload["uuid"]
    assert signal.source == "falco"
    assert signal.rule == "Terminal shell in container"
    assert signal.severity is Severity.LOW  # Notice
    assert signal.time == datetime(2024, 6, 3, 14, 32, 7, 123456, tzinfo=UTC)
    assert signal.target.namespace == "ml-serving"
    assert signal.target.pod == "vllm-llama-7b9c8d-x2kqp"
    assert signal.target.container_id == "3f2a9c8e1b7d"
    assert {"falco", "mitre_execution", "shell", "T1059"} <= set(signal.tags)
    assert signal.evidence["output_fields"]["container.image.repository"] == "vllm/vllm-openai"
    assert signal.evidence["hostname"] == payload["hostname"]


@pytest.mark.parametrize(
    ("priority", "severity"),
    [
        ("Emergency", Severity.CRITICAL),
        ("ALERT", Severity.CRITICAL),
        ("critical", Severity.CRITICAL),
        ("Error", Severity.HIGH),
        ("Warning", Severity.MEDIUM),
        ("Notice", Severity.LOW),
        ("Informational", Severity.INFO),
        ("info", Severity.INFO),
        ("Debug", Severity.INFO),
    ],
)
def test_priority_maps_to_severity(
    sample: Load, received_at: datetime, priority: str, severity: Severity
) -> None:
    payload = sample(SHELL)
    payload["priority"] = priority
    assert parse_falco(payload, received_at).signals[0].severity is severity


def test_unknown_priority_is_a_payload_error(sample: Load, received_at: datetime) -> None:
    payload = sample(SHELL)
    payload["priority"] = "Severe"
    with pytest.raises(PayloadError) as err:
        parse_falco(payload, received_at)
    assert err.value.path == "$.priority"
    assert "unknown priority" in err.value.message


@pytest.mark.parametrize("field", ["rule", "priority", "output_fields"])
def test_missing_required_field_is_named(sample: Load, received_at: datetime, field: str) -> None:
    payload = sample(SHELL)
    del payload[field]
    with pytest.raises(PayloadError) as err:
        parse_falco(payload, received_at)
    assert err.value.path == f"$.{field}"


def test_wrongly_typed_output_field_is_named_with_json_path(sample: Load, received_at: datetime) -> None:
    payload = sample(SHELL)
    payload["output_fields"]["k8s.ns.name"] = ["ml-serving"]
    with pytest.raises(PayloadError) as err:
        parse_falco(payload, received_at)
    assert err.value.path == '$.output_fields["k8s.ns.name"]'


@pytest.mark.parametrize("payload", [None, [], "event", 3, {"output": "x"}])
def test_non_event_is_a_payload_error(payload: Any, received_at: datetime) -> None:
    with pytest.raises(PayloadError):
        parse_falco(payload, received_at)


def test_without_uuid_redelivery_gets_the_same_id(sample: Load, received_at: datetime) -> None:
    payload = sample(ENVIRON)
    first = parse_falco(payload, received_at).signals[0]
    reordered = json.loads(json.dumps(payload, sort_keys=True))
    again = parse_falco(reordered, received_at + timedelta(minutes=3)).signals[0]
    assert first.id == again.id and len(first.id) == 64
    payload["output_fields"]["proc.name"] = "head"
    assert parse_falco(payload, received_at).signals[0].id != first.id


def test_evidence_redacts_environment_tokens_and_auth_headers(sample: Load, received_at: datetime) -> None:
    payload = sample(ENVIRON)
    signal = parse_falco(payload, received_at).signals[0]
    text = json.dumps(signal.evidence)
    fields = payload["output_fields"]
    for secret in (
        "hf_qWeRtYuIoPaSdFgHjKlZxCvBnM123456",
        "sk-proj-4fQx9ZkL2mN8vR1tY6wE3uI0oPaSdFgH",
        "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ",
    ):
        assert secret in json.dumps(fields)
        assert secret not in text
    assert signal.evidence["output_fields"]["proc.env"] == REDACTED
    assert "https://hf.co/api/whoami" in signal.evidence["output_fields"]["proc.cmdline"]


def test_evidence_is_bounded(sample: Load, received_at: datetime) -> None:
    payload = sample(SHELL)
    payload["output"] = "x" * 1_000_000
    payload["output_fields"].update({f"custom.field{i}": "y" * 5000 for i in range(500)})
    signal = parse_falco(payload, received_at).signals[0]
    assert len(json.dumps(signal.evidence)) < 20_000


@pytest.mark.parametrize(
    ("container", "expected"), [("host", None), ("<NA>", None), ("3F2A9C8E1B7D", "3f2a9c8e1b7d")]
)
def test_container_id_normalised(
    sample: Load, received_at: datetime, container: str, expected: str | None
) -> None:
    payload = sample(SHELL)
    payload["output_fields"]["container.id"] = container
    assert parse_falco(payload, received_at).signals[0].target.container_id == expected


def test_placeholder_pod_and_namespace_are_absent(sample: Load, received_at: datetime) -> None:
    payload = sample(SHELL)
    payload["output_fields"]["k8s.pod.name"] = "<NA>"
    payload["output_fields"]["k8s.ns.name"] = None
    target = parse_falco(payload, received_at).signals[0].target
    assert target.pod is None and target.namespace is None


def test_missing_time_uses_receive_time_with_a_note(sample: Load, received_at: datetime) -> None:
    payload = sample(SHELL)
    del payload["time"]
    result = parse_falco(payload, received_at)
    assert result.signals[0].time == received_at
    assert [n.path for n in result.notes] == ["$.time"]


def test_future_time_is_not_believed(sample: Load, received_at: datetime) -> None:
    payload = sample(SHELL)
    payload["time"] = "2099-01-01T00:00:00Z"
    result = parse_falco(payload, received_at)
    assert result.signals[0].time == received_at
    assert "future" in result.notes[0].message


def test_overlong_rule_is_rejected(sample: Load, received_at: datetime) -> None:
    payload = sample(SHELL)
    payload["rule"] = "r" * 10_000
    with pytest.raises(PayloadError) as err:
        parse_falco(payload, received_at)
    assert err.value.path == "$.rule"
