from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from aitrust.api.v1alpha1 import Severity
from aitrust.core.parsers.base import PayloadError
from aitrust.core.parsers.cloudtrail import UserIdentity, derive_role_arn, parse_cloudtrail

Load = Callable[[str], Any]
LOG_FILE = "cloudtrail_llmjacking_irsa.json"
EVENTBRIDGE = "cloudtrail_eventbridge_delete_logging.json"
ROLE_WITH_PATH = "arn:aws:iam::111122223333:role/ml-serving/vllm-bedrock-access"


def test_llmjacking_sequence_from_irsa_role(sample: Load, received_at: datetime) -> None:
    payload = sample(LOG_FILE)
    result = parse_cloudtrail(payload, received_at)
    assert result.rejected == []
    assert [s.id for s in result.signals] == [r["eventID"] for r in payload["Records"]]
    by_name_error = {(s.event_name, s.error_code): s.severity for s in result.signals}
    assert by_name_error == {
        ("GetModelInvocationLoggingConfiguration", None): Severity.MEDIUM,
        ("ListFoundationModels", None): Severity.MEDIUM,
        ("GetFoundationModelAvailability", None): Severity.MEDIUM,
        ("InvokeModel", "ValidationException"): Severity.MEDIUM,
        ("Converse", "AccessDeniedException"): Severity.MEDIUM,
        ("PutUseCaseForModelAccess", None): Severity.MEDIUM,
        ("InvokeModel", None): Severity.INFO,
        ("DeleteModelInvocationLoggingConfiguration", None): Severity.HIGH,
    }
    for signal in result.signals:
        assert signal.source == "cloudtrail"
        assert signal.rule == signal.event_name
        assert signal.region == "us-east-1"
        assert signal.source_ip == "203.0.113.45"
        assert signal.target.aws_arn == ROLE_WITH_PATH
        assert {"cloudtrail", "bedrock.amazonaws.com"} <= set(signal.tags)
        assert (
            signal.time.tzinfo is not None and signal.time.date() == datetime(2024, 6, 3, tzinfo=UTC).date()
        )


def test_error_code_becomes_tag(sample: Load, received_at: datetime) -> None:
    signals = parse_cloudtrail(sample(LOG_FILE), received_at).signals
    denied = next(s for s in signals if s.error_code == "AccessDeniedException")
    assert "error:AccessDeniedException" in denied.tags
    assert not any(t.startswith("error:") for t in signals[0].tags)


@pytest.mark.parametrize("code", ["AccessDenied", "ValidationException"])
def test_invoke_probe_errors_are_medium_other_errors_info(
    sample: Load, received_at: datetime, code: str
) -> None:
    payload = sample(LOG_FILE)
    record = payload["Records"][6]
    record["errorCode"] = code
    assert parse_cloudtrail(record, received_at).signals[0].severity is Severity.MEDIUM
    record["errorCode"] = "ThrottlingException"
    assert parse_cloudtrail(record, received_at).signals[0].severity is Severity.INFO


def test_evidence_keeps_context_but_not_access_key(sample: Load, received_at: datetime) -> None:
    payload = sample(LOG_FILE)
    signal = parse_cloudtrail(payload, received_at).signals[3]
    assert signal.evidence["requestParameters"] == {"modelId": "anthropic.claude-3-sonnet-20240229-v1:0"}
    assert signal.evidence["errorMessage"].startswith("max_tokens_to_sample")
    assert signal.evidence["userIdentity"]["arn"].startswith("arn:aws:sts::111122223333:assumed-role/")
    assert payload["Records"][3]["userIdentity"]["accessKeyId"] not in json.dumps(signal.evidence)


def test_eventbridge_event_is_unwrapped(sample: Load, received_at: datetime) -> None:
    payload = sample(EVENTBRIDGE)
    [signal] = parse_cloudtrail(payload, received_at).signals
    assert signal.id == payload["detail"]["eventID"]
    assert signal.severity is Severity.HIGH
    assert signal.target.aws_arn == ROLE_WITH_PATH
    assert "T1562.008" in signal.references


def test_eventbridge_bad_detail_names_field(sample: Load, received_at: datetime) -> None:
    payload = sample(EVENTBRIDGE)
    payload["detail"]["eventTime"] = "not a time"
    with pytest.raises(PayloadError) as err:
        parse_cloudtrail(payload, received_at)
    assert err.value.path == "$.detail.eventTime"


def test_eventbridge_other_detail_type_is_refused(sample: Load, received_at: datetime) -> None:
    payload = sample(EVENTBRIDGE)
    payload["detail-type"] = "EC2 Instance State-change Notification"
    with pytest.raises(PayloadError) as err:
        parse_cloudtrail(payload, received_at)
    assert err.value.path == '$["detail-type"]'


def test_bad_record_in_log_file_is_rejected_alone(sample: Load, received_at: datetime) -> None:
    payload = sample(LOG_FILE)
    del payload["Records"][1]["eventTime"]
    payload["Records"][4]["userIdentity"]["arn"] = 42
    payload["Records"].append("not a record")
    result = parse_cloudtrail(payload, received_at)
    assert [(r.index, r.path) for r in result.rejected] == [
        (1, "$.Records[1].eventTime"),
        (4, "$.Records[4].userIdentity.arn"),
        (8, "$.Records[8]"),
    ]
    assert len(result.signals) == 6


@pytest.mark.parametrize(
    ("payload", "path"),
    [({"Records": {"a": 1}}, "$.Records"), ({"foo": 1}, "$"), ([], "$"), ({"eventID": "x"}, "$.eventTime")],
)
def test_structural_problems_raise(payload: Any, path: str, received_at: datetime) -> None:
    with pytest.raises(PayloadError) as err:
        parse_cloudtrail(payload, received_at)
    assert err.value.path == path


def test_empty_log_file_yields_nothing(received_at: datetime) -> None:
    assert parse_cloudtrail({"Records": []}, received_at).signals == []


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (
            {"arn": "arn:aws:sts::123456789012:assumed-role/Inference/botocore-session-1"},
            "arn:aws:iam::123456789012:role/Inference",
        ),
        (
            {
                "arn": "arn:aws-us-gov:sts::123456789012:assumed-role/Inference/s",
                "sessionContext": {
                    "sessionIssuer": {"arn": "arn:aws-us-gov:iam::123456789012:role/a/b/Inference"}
                },
            },
            "arn:aws-us-gov:iam::123456789012:role/a/b/Inference",
        ),
        ({"arn": "arn:aws:iam::123456789012:user/alice"}, "arn:aws:iam::123456789012:user/alice"),
        ({"type": "AWSService"}, None),
    ],
)
def test_derive_role_arn(identity: dict[str, Any], expected: str | None) -> None:
    assert derive_role_arn(UserIdentity.model_validate(identity)) == expected
