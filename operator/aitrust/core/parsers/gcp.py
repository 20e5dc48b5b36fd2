"""Google Cloud Audit Log entries (Vertex AI and friends), bare or in a Pub/Sub push envelope.

Accepted: one ``LogEntry``, an array of them, ``{"entries": [...]}``, or a Pub/Sub push
``{"message": {"data": base64(LogEntry JSON), ...}, "subscription": ...}`` as a log sink
routed to Pub/Sub delivers it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import Field

from aitrust.api.v1alpha1 import Severity
from aitrust.core.parsers.base import (
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    Note,
    ParseResult,
    PathPart,
    PayloadError,
    PayloadModel,
    Rejection,
    Timestamp,
    as_mapping,
    build_evidence,
    build_tags,
    effective_time,
    json_path,
    require_batch,
    short_str,
    stable_id,
    type_name,
    validate_payload,
    validate_record,
)
from aitrust.core.signal import Signal, WorkloadHint

GRPC_CODES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
_INFERENCE_METHODS = frozenset(
    {
        "Predict",
        "RawPredict",
        "StreamRawPredict",
        "ServerStreamingPredict",
        "StreamingPredict",
        "DirectPredict",
        "DirectRawPredict",
        "GenerateContent",
        "StreamGenerateContent",
    }
)
# Invalid or unauthorised inference calls are how stolen credentials are tested (LLMjacking).
_PROBE_CODES = frozenset({3, 7, 16})
_LOGGING_OFF = frozenset({"google.logging.v2.ConfigServiceV2.DeleteSink"})

LLMJACKING_REFERENCES = ("AML.T0040", "AML.T0034", "LLM10:2025")
DISABLE_LOGGING_REFERENCES = ("T1562.008",)
MAX_DECODED_BYTES = 1 << 20


class GcpStatus(PayloadModel):
    code: int | None = Field(default=None, ge=0, le=1_000_000, description="google.rpc.Code; 0 is OK.")
    message: str | None = None


class GcpAuthenticationInfo(PayloadModel):
    principal_email: str | None = Field(default=None, alias="principalEmail", max_length=MAX_NAME_LENGTH)
    principal_subject: str | None = Field(default=None, alias="principalSubject", max_length=MAX_NAME_LENGTH)


class GcpRequestMetadata(PayloadModel):
    caller_ip: str | None = Field(default=None, alias="callerIp", max_length=MAX_NAME_LENGTH)
    caller_supplied_user_agent: str | None = Field(default=None, alias="callerSuppliedUserAgent")


class GcpResourceLocation(PayloadModel):
    current_locations: list[str] = Field(default_factory=list, alias="currentLocations")


class GcpAuditLog(PayloadModel):
    """``protoPayload`` of type google.cloud.audit.AuditLog."""

    type: str | None = Field(default=None, alias="@type")
    service_name: str = Field(alias="serviceName", min_length=1, max_length=MAX_NAME_LENGTH)
    method_name: str = Field(alias="methodName", min_length=1, max_length=MAX_NAME_LENGTH)
    resource_name: str | None = Field(default=None, alias="resourceName")
    status: GcpStatus | None = None
    authentication_info: GcpAuthenticationInfo | None = Field(default=None, alias="authenticationInfo")
    request_metadata: GcpRequestMetadata | None = Field(default=None, alias="requestMetadata")
    resource_location: GcpResourceLocation | None = Field(default=None, alias="resourceLocation")


class GcpMonitoredResource(PayloadModel):
    type: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class GcpLogEntry(PayloadModel):
    """A Cloud Logging LogEntry carrying an audit log."""

    insert_id: str | None = Field(default=None, alias="insertId", min_length=1, max_length=MAX_ID_LENGTH)
    timestamp: Timestamp | None = None
    receive_timestamp: Timestamp | None = Field(default=None, alias="receiveTimestamp")
    log_name: str | None = Field(default=None, alias="logName")
    severity: str | None = None
    resource: GcpMonitoredResource | None = None
    proto_payload: GcpAuditLog = Field(alias="protoPayload")


class GcpEntries(PayloadModel):
    entries: list[GcpLogEntry] = Field(max_length=10_000)


class _RawEntries(PayloadModel):
    entries: list[Any]


class PubSubMessage(PayloadModel):
    data: str = Field(
        min_length=1,
        description="base64 of one LogEntry as JSON.",
        json_schema_extra={"contentEncoding": "base64", "contentMediaType": "application/json"},
    )
    message_id: str | None = Field(default=None, alias="messageId")
    publish_time: str | None = Field(default=None, alias="publishTime")
    attributes: dict[str, str] | None = None


class PubSubPush(PayloadModel):
    """What a Pub/Sub push subscription POSTs."""

    message: PubSubMessage
    subscription: str | None = None


def _status_code(entry: GcpLogEntry) -> int:
    status = entry.proto_payload.status
    return status.code if status and status.code is not None else 0


def code_name(code: int) -> str:
    return GRPC_CODES[code] if 0 <= code < len(GRPC_CODES) else str(code)


def _classify(entry: GcpLogEntry) -> tuple[Severity, tuple[str, ...]]:
    method = entry.proto_payload.method_name
    code = _status_code(entry)
    if method in _LOGGING_OFF:
        return Severity.HIGH, DISABLE_LOGGING_REFERENCES
    if method.rsplit(".", 1)[-1] in _INFERENCE_METHODS and code in _PROBE_CODES:
        return Severity.MEDIUM, LLMJACKING_REFERENCES
    if method.endswith("SetIamPolicy"):
        return Severity.MEDIUM, ()
    if code != 0:
        return Severity.LOW, ()
    return Severity.INFO, ()


def _region(entry: GcpLogEntry) -> str | None:
    location = entry.proto_payload.resource_location
    if location and location.current_locations:
        return short_str(location.current_locations[0], 64)
    labels = entry.resource.labels if entry.resource else {}
    return short_str(labels.get("location") or labels.get("region") or labels.get("zone"), 64)


def _principal(entry: GcpLogEntry) -> str | None:
    auth = entry.proto_payload.authentication_info
    if auth is None:
        return None
    email = short_str(auth.principal_email)
    return email.lower() if email else short_str(auth.principal_subject)


def _to_signal(
    entry: GcpLogEntry, raw: Mapping[str, Any], received_at: datetime, path: str
) -> tuple[Signal, Note | None]:
    when, note = effective_time(entry.timestamp or entry.receive_timestamp, received_at, path + ".timestamp")
    severity, references = _classify(entry)
    audit = entry.proto_payload
    code = _status_code(entry)
    error = code_name(code) if code else None
    meta = audit.request_metadata
    raw_proto = raw.get("protoPayload")
    proto: Mapping[str, Any] = raw_proto if isinstance(raw_proto, Mapping) else {}
    signal = Signal(
        id=entry.insert_id or stable_id("gcp", raw),
        source="gcp",
        time=when,
        severity=severity,
        rule=audit.method_name,
        event_name=audit.method_name,
        tags=build_tags(
            ["gcp", audit.service_name],
            ["llmjacking"] if references == LLMJACKING_REFERENCES else [],
            [f"error:{error}"] if error else [],
        ),
        region=_region(entry),
        source_ip=short_str(meta.caller_ip) if meta else None,
        error_code=error,
        target=WorkloadHint(gcp_principal=_principal(entry)),
        evidence=build_evidence(
            {
                "logName": entry.log_name,
                "resourceName": audit.resource_name,
                "resource": raw.get("resource"),
                "status": proto.get("status"),
                "authenticationInfo": proto.get("authenticationInfo"),
                "userAgent": meta.caller_supplied_user_agent if meta else None,
                "authorizationInfo": proto.get("authorizationInfo"),
            }
        ),
        references=references,
    )
    return signal, note


def _one(
    value: Any, received_at: datetime, prefix: Sequence[PathPart], root: str, result: ParseResult
) -> None:
    entry = validate_payload(GcpLogEntry, value, prefix, root)
    signal, note = _to_signal(entry, as_mapping(value), received_at, json_path(prefix, root))
    result.signals.append(signal)
    result.notes.extend([note] if note else [])


def _batch(
    items: Sequence[Any], received_at: datetime, prefix: Sequence[PathPart], root: str, result: ParseResult
) -> None:
    for index, item in enumerate(items):
        parsed = validate_record(GcpLogEntry, item, index, [*prefix, index], root)
        if isinstance(parsed, Rejection):
            result.rejected.append(parsed)
            continue
        signal, note = _to_signal(parsed, as_mapping(item), received_at, json_path([*prefix, index], root))
        result.signals.append(signal)
        result.notes.extend([note] if note else [])


def _entries(value: Any, received_at: datetime, root: str, result: ParseResult) -> None:
    if isinstance(value, list | tuple):
        _batch(require_batch(value, root), received_at, [], root, result)
    elif isinstance(value, Mapping) and "entries" in value:
        validate_payload(_RawEntries, value, (), root)
        items = require_batch(value["entries"], json_path(["entries"], root))
        _batch(items, received_at, ["entries"], root, result)
    elif isinstance(value, Mapping) and ("protoPayload" in value or "insertId" in value):
        _one(value, received_at, [], root, result)
    else:
        raise PayloadError(
            root,
            'expected a LogEntry, an array of them, {"entries": [...]}, or a Pub/Sub push envelope; '
            f"got {type_name(value)}",
        )


def _decode(message: PubSubMessage) -> Any:
    path = "$.message.data"
    if len(message.data) > MAX_DECODED_BYTES * 4 // 3 + 4:
        raise PayloadError(path, "message data is too large")
    try:
        blob = base64.b64decode(message.data, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError(path, "message data is not valid base64") from None
    try:
        return json.loads(blob.decode("utf-8"))
    except UnicodeDecodeError:
        raise PayloadError(path, "message data is not UTF-8") from None
    except RecursionError:
        raise PayloadError(path, "message data is nested too deeply") from None
    except ValueError:
        raise PayloadError(path, "message data is not JSON") from None


def parse_gcp(payload: Any, received_at: datetime) -> ParseResult:
    """Parse audit log entries; in a batch a bad entry is rejected on its own."""
    result = ParseResult()
    if isinstance(payload, Mapping) and "message" in payload:
        push = validate_payload(PubSubPush, payload)
        # Paths inside the decoded LogEntry are rooted at the field that carried it.
        _entries(_decode(push.message), received_at, "$.message.data", result)
        return result
    _entries(payload, received_at, "$", result)
    return result
