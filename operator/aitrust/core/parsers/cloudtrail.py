"""AWS CloudTrail records: a log file ``{"Records": [...]}``, an EventBridge event, or one bare record."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from aitrust.api.v1alpha1 import Severity
from aitrust.core.parsers.base import (
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    Note,
    ParseResult,
    PayloadError,
    PayloadModel,
    Rejection,
    Timestamp,
    as_mapping,
    build_evidence,
    build_tags,
    effective_time,
    require_batch,
    require_object,
    short_str,
    validate_payload,
    validate_record,
)
from aitrust.core.signal import Signal, WorkloadHint

# LLMjacking: stolen credentials probing which Bedrock models they can run, then hiding it.
_RECON_EVENTS = frozenset(
    {
        "GetModelInvocationLoggingConfiguration",
        "ListFoundationModels",
        "GetFoundationModelAvailability",
        "PutUseCaseForModelAccess",
    }
)
_INVOKE_EVENTS = frozenset({"InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"})
# A deliberately invalid or unauthorised invocation is how attackers test access without paying.
_PROBE_ERRORS = frozenset({"ValidationException", "AccessDenied", "AccessDeniedException"})
_DEFENCE_EVASION = frozenset({"DeleteModelInvocationLoggingConfiguration"})

LLMJACKING_REFERENCES = ("AML.T0040", "AML.T0034", "LLM10:2025")
DISABLE_LOGGING_REFERENCES = ("T1562.008", "AML.T0034")

_ASSUMED_ROLE = re.compile(r"^arn:(aws[a-zA-Z-]*):sts::([0-9]{12}):assumed-role/([^/]+)/.+$")
_IAM_ROLE = re.compile(r"^arn:(aws[a-zA-Z-]*):iam::([0-9]{12}):role/.+$")


class SessionIssuer(PayloadModel):
    type: str | None = None
    arn: str | None = Field(default=None, max_length=MAX_NAME_LENGTH)
    user_name: str | None = Field(default=None, alias="userName")


class SessionContext(PayloadModel):
    session_issuer: SessionIssuer | None = Field(default=None, alias="sessionIssuer")


class UserIdentity(PayloadModel):
    type: str | None = None
    arn: str | None = Field(default=None, max_length=MAX_NAME_LENGTH)
    account_id: str | None = Field(default=None, alias="accountId")
    principal_id: str | None = Field(default=None, alias="principalId")
    session_context: SessionContext | None = Field(default=None, alias="sessionContext")


class CloudTrailRecord(PayloadModel):
    """One CloudTrail event record; only the fields aitrust reads are listed."""

    event_id: str = Field(alias="eventID", min_length=1, max_length=MAX_ID_LENGTH)
    event_time: Timestamp = Field(alias="eventTime")
    event_name: str = Field(alias="eventName", min_length=1, max_length=MAX_NAME_LENGTH)
    event_source: str = Field(alias="eventSource", min_length=1, max_length=MAX_NAME_LENGTH)
    aws_region: str | None = Field(default=None, alias="awsRegion", max_length=64)
    source_ip_address: str | None = Field(default=None, alias="sourceIPAddress", max_length=MAX_NAME_LENGTH)
    error_code: str | None = Field(default=None, alias="errorCode", max_length=MAX_NAME_LENGTH)
    error_message: str | None = Field(default=None, alias="errorMessage")
    user_identity: UserIdentity | None = Field(default=None, alias="userIdentity")
    user_agent: str | None = Field(default=None, alias="userAgent")
    request_parameters: dict[str, Any] | None = Field(default=None, alias="requestParameters")
    recipient_account_id: str | None = Field(default=None, alias="recipientAccountId")
    event_type: str | None = Field(default=None, alias="eventType")
    read_only: bool | None = Field(default=None, alias="readOnly")


class CloudTrailLogFile(PayloadModel):
    """A CloudTrail log file as delivered to S3 (and forwarded by S3/SQS consumers)."""

    records: list[CloudTrailRecord] = Field(alias="Records", max_length=10_000)


class _RawLogFile(PayloadModel):
    records: list[Any] = Field(alias="Records")


class EventBridgeCloudTrailEvent(PayloadModel):
    """A CloudTrail record delivered by an EventBridge rule; the record is in ``detail``."""

    version: str | None = None
    id: str | None = None
    detail_type: str = Field(alias="detail-type", description='e.g. "AWS API Call via CloudTrail".')
    source: str | None = None
    account: str | None = None
    time: str | None = None
    region: str | None = None
    detail: CloudTrailRecord

    @field_validator("detail_type")
    @classmethod
    def _from_cloudtrail(cls, value: str) -> str:
        if not value.endswith("via CloudTrail"):
            raise ValueError('not a CloudTrail event; expected "AWS API Call via CloudTrail"')
        return value


CloudTrailPayloadKind = Literal["log-file", "eventbridge", "record"]


def derive_role_arn(identity: UserIdentity | None) -> str | None:
    """The IAM role behind a caller, which is what an AIWorkload declares.

    The session issuer's ARN keeps the role's path; the assumed-role ARN loses it, so it is
    only the fallback.
    """
    if identity is None:
        return None
    context = identity.session_context
    issuer = context.session_issuer.arn if context and context.session_issuer else None
    if issuer and _IAM_ROLE.match(issuer):
        return issuer
    arn = identity.arn
    if not arn:
        return issuer
    assumed = _ASSUMED_ROLE.match(arn)
    if assumed:
        partition, account, role = assumed.groups()
        return f"arn:{partition}:iam::{account}:role/{role}"
    return arn


def _classify(record: CloudTrailRecord) -> tuple[Severity, tuple[str, ...]]:
    name, error = record.event_name, record.error_code
    if name in _DEFENCE_EVASION:
        return Severity.HIGH, DISABLE_LOGGING_REFERENCES
    if name in _RECON_EVENTS:
        return Severity.MEDIUM, LLMJACKING_REFERENCES
    if name in _INVOKE_EVENTS and error in _PROBE_ERRORS:
        return Severity.MEDIUM, LLMJACKING_REFERENCES
    return Severity.INFO, ()


def _evidence(record: CloudTrailRecord, raw: Mapping[str, Any]) -> dict[str, Any]:
    identity = record.user_identity
    issuer = (
        identity.session_context.session_issuer.arn
        if identity and identity.session_context and identity.session_context.session_issuer
        else None
    )
    return build_evidence(
        {
            "eventSource": record.event_source,
            "eventType": record.event_type,
            "readOnly": record.read_only,
            "userAgent": record.user_agent,
            "errorMessage": record.error_message,
            "recipientAccountId": record.recipient_account_id,
            "userIdentity": {
                "type": identity.type if identity else None,
                "arn": identity.arn if identity else None,
                "accountId": identity.account_id if identity else None,
                "sessionIssuerArn": issuer,
            },
            "requestParameters": raw.get("requestParameters"),
        }
    )


def _to_signal(
    record: CloudTrailRecord, raw: Mapping[str, Any], received_at: datetime, path: str
) -> tuple[Signal, Note | None]:
    when, note = effective_time(record.event_time, received_at, path + ".eventTime")
    severity, references = _classify(record)
    error = short_str(record.error_code)
    signal = Signal(
        id=record.event_id,
        source="cloudtrail",
        time=when,
        severity=severity,
        rule=record.event_name,
        event_name=record.event_name,
        tags=build_tags(
            ["cloudtrail", record.event_source],
            ["llmjacking"] if references else [],
            [f"error:{error}"] if error else [],
        ),
        region=short_str(record.aws_region),
        source_ip=short_str(record.source_ip_address),
        error_code=error,
        target=WorkloadHint(aws_arn=derive_role_arn(record.user_identity)),
        evidence=_evidence(record, raw),
        references=references,
    )
    return signal, note


def payload_kind(payload: Mapping[str, Any]) -> CloudTrailPayloadKind:
    if "Records" in payload:
        return "log-file"
    if "detail-type" in payload or "detail" in payload:
        return "eventbridge"
    if "eventID" in payload:
        return "record"
    raise PayloadError(
        "$", 'expected a CloudTrail log file {"Records": [...]}, an EventBridge event, or a CloudTrail record'
    )


def parse_cloudtrail(payload: Any, received_at: datetime) -> ParseResult:
    """Parse CloudTrail records; in a log file a bad record is rejected on its own."""
    raw = require_object(payload, "a CloudTrail log file or EventBridge event")
    kind = payload_kind(raw)
    result = ParseResult()
    if kind == "eventbridge":
        event = validate_payload(EventBridgeCloudTrailEvent, raw)
        detail = raw["detail"]
        signal, note = _to_signal(event.detail, as_mapping(detail), received_at, "$.detail")
        result.signals.append(signal)
        result.notes.extend([note] if note else [])
        return result
    if kind == "record":
        record = validate_payload(CloudTrailRecord, raw)
        signal, note = _to_signal(record, raw, received_at, "$")
        result.signals.append(signal)
        result.notes.extend([note] if note else [])
        return result
    validate_payload(_RawLogFile, raw)
    items = require_batch(raw["Records"], "$.Records")
    for index, item in enumerate(items):
        parsed = validate_record(CloudTrailRecord, item, index, ["Records", index])
        if isinstance(parsed, Rejection):
            result.rejected.append(parsed)
            continue
        signal, note = _to_signal(parsed, as_mapping(item), received_at, f"$.Records[{index}]")
        result.signals.append(signal)
        result.notes.extend([note] if note else [])
    return result
