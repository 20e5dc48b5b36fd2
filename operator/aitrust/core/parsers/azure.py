"""Azure activity and resource logs for Azure OpenAI / Cognitive Services: ``{"records": [...]}``.

This is the shape diagnostic settings write to Event Hubs and storage accounts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import Field

from aitrust.api.v1alpha1 import Severity
from aitrust.core.parsers.base import (
    MAX_NAME_LENGTH,
    Note,
    ParseResult,
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
    stable_id,
    validate_payload,
    validate_record,
)
from aitrust.core.signal import Signal, WorkloadHint

OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"

_CS = "MICROSOFT.COGNITIVESERVICES/ACCOUNTS/"
# Operation names are case-insensitive in Azure; keys are upper case.
OPERATION_SEVERITY: dict[str, Severity] = {
    _CS + "LISTKEYS/ACTION": Severity.HIGH,
    "LISTKEYS": Severity.HIGH,
    "LISTKEY": Severity.HIGH,
    _CS + "REGENERATEKEY/ACTION": Severity.MEDIUM,
    "REGENERATEKEY": Severity.MEDIUM,
    _CS + "DEPLOYMENTS/WRITE": Severity.MEDIUM,
    _CS + "DEPLOYMENTS/DELETE": Severity.MEDIUM,
    _CS + "DELETE": Severity.MEDIUM,
    _CS + "RAIPOLICIES/WRITE": Severity.MEDIUM,
    _CS + "RAIPOLICIES/DELETE": Severity.MEDIUM,
}
# Diagnostic settings may be scoped under the account's own provider path.
_LOGGING_OFF_SUFFIX = "MICROSOFT.INSIGHTS/DIAGNOSTICSETTINGS/DELETE"

# Activity logs file an operation twice, Start then Success/Failure; only the outcome counts.
_START_RESULTS = frozenset({"start", "started", "accept", "accepted"})
_FAILED_RESULTS = frozenset({"failure", "failed"})

KEY_THEFT_REFERENCES = ("T1552", "AML.T0034", "LLM10:2025")
DISABLE_LOGGING_REFERENCES = ("T1562.008",)


class AzureLogRecord(PayloadModel):
    """One Azure log record; only the fields aitrust reads are listed."""

    time: Timestamp
    operation_name: str = Field(alias="operationName", min_length=1, max_length=MAX_NAME_LENGTH)
    resource_id: str | None = Field(default=None, alias="resourceId", max_length=2048)
    category: str | None = Field(default=None, max_length=MAX_NAME_LENGTH)
    result_type: str | None = Field(default=None, alias="resultType", max_length=MAX_NAME_LENGTH)
    result_signature: str | None = Field(default=None, alias="resultSignature", max_length=MAX_NAME_LENGTH)
    caller_ip_address: str | None = Field(default=None, alias="callerIpAddress", max_length=MAX_NAME_LENGTH)
    correlation_id: str | None = Field(default=None, alias="correlationId", max_length=MAX_NAME_LENGTH)
    location: str | None = Field(default=None, max_length=64)
    level: str | None = None
    identity: dict[str, Any] | str | None = Field(
        default=None, description="Caller identity: claims (appid, objectidentifier) and authorization."
    )
    properties: dict[str, Any] | str | None = Field(
        default=None, description="Operation-specific properties."
    )


class AzureLogBatch(PayloadModel):
    records: list[AzureLogRecord] = Field(max_length=10_000)


class _RawBatch(PayloadModel):
    records: list[Any]


def _identity(record: AzureLogRecord) -> Mapping[str, Any]:
    return record.identity if isinstance(record.identity, Mapping) else {}


def _claims(record: AzureLogRecord) -> Mapping[str, Any]:
    claims = _identity(record).get("claims")
    return claims if isinstance(claims, Mapping) else {}


def _properties(record: AzureLogRecord) -> Mapping[str, Any]:
    return record.properties if isinstance(record.properties, Mapping) else {}


def client_id_of(record: AzureLogRecord) -> str | None:
    """The caller's application (client) id, which is what an AIWorkload declares.

    The object id is a different identifier; it is only a fallback, for logs that carry nothing else.
    """
    claims, props = _claims(record), _properties(record)
    for value in (
        claims.get("appid"),
        claims.get("azp"),
        props.get("clientId"),
        props.get("appId"),
        claims.get(OBJECT_ID_CLAIM),
        claims.get("oid"),
        props.get("objectId"),
    ):
        text = short_str(value, 128)
        if text:
            return text.lower()
    return None


def _classify(record: AzureLogRecord) -> tuple[Severity, tuple[str, ...]]:
    operation = record.operation_name.strip().upper()
    if (record.result_type or "").strip().lower() in _START_RESULTS:
        return Severity.INFO, ()
    if operation.endswith(_LOGGING_OFF_SUFFIX):
        return Severity.HIGH, DISABLE_LOGGING_REFERENCES
    severity = OPERATION_SEVERITY.get(operation)
    if severity is not None:
        return severity, KEY_THEFT_REFERENCES if "LISTKEY" in operation else ()
    if _failed(record) and _status(record) in {"401", "403"}:
        return Severity.LOW, ()
    return Severity.INFO, ()


def _status(record: AzureLogRecord) -> str | None:
    signature = (record.result_signature or "").strip()
    # Activity logs say "Failed.Forbidden"/"Succeeded.OK"; resource logs give the HTTP status.
    words = {"FORBIDDEN": "403", "UNAUTHORIZED": "401"}
    tail = signature.rsplit(".", 1)[-1]
    return words.get(tail.upper(), tail or None)


def _failed(record: AzureLogRecord) -> bool:
    if (record.result_type or "").strip().lower() in _FAILED_RESULTS:
        return True
    status = _status(record)
    return bool(status and status.isdigit() and int(status) >= 400)


def _to_signal(
    record: AzureLogRecord, raw: Mapping[str, Any], received_at: datetime, path: str
) -> tuple[Signal, Note | None]:
    when, note = effective_time(record.time, received_at, path + ".time")
    severity, references = _classify(record)
    error = short_str(record.result_signature) if _failed(record) else None
    claims, props = _claims(record), _properties(record)
    authorization = _identity(record).get("authorization")
    evidence = build_evidence(
        {
            "category": record.category,
            "resourceId": record.resource_id,
            "resultType": record.result_type,
            "resultSignature": record.result_signature,
            "correlationId": record.correlation_id,
            "appid": claims.get("appid"),
            "objectId": claims.get(OBJECT_ID_CLAIM) or props.get("objectId"),
            "action": authorization.get("action") if isinstance(authorization, Mapping) else None,
            "scope": authorization.get("scope") if isinstance(authorization, Mapping) else None,
            "properties": props,
        }
    )
    started = (record.result_type or "").strip().lower() in _START_RESULTS
    signal = Signal(
        id=stable_id("azure", raw),
        source="azure",
        time=when,
        severity=severity,
        rule=record.operation_name,
        event_name=record.operation_name,
        tags=build_tags(
            ["azure"],
            [record.category.strip() if record.category else None],
            ["phase:start"] if started else [],
            [f"error:{error}"] if error else [],
        ),
        region=short_str(record.location),
        source_ip=short_str(record.caller_ip_address),
        error_code=error,
        target=WorkloadHint(azure_client_id=client_id_of(record)),
        evidence=evidence,
        references=references,
    )
    return signal, note


def parse_azure(payload: Any, received_at: datetime) -> ParseResult:
    """Parse ``{"records": [...]}``; a bad record is rejected on its own."""
    raw = require_object(payload, 'Azure log records {"records": [...]}')
    validate_payload(_RawBatch, raw)
    items = require_batch(raw["records"], "$.records")
    result = ParseResult()
    for index, item in enumerate(items):
        parsed = validate_record(AzureLogRecord, item, index, ["records", index])
        if isinstance(parsed, Rejection):
            result.rejected.append(parsed)
            continue
        signal, note = _to_signal(parsed, as_mapping(item), received_at, f"$.records[{index}]")
        result.signals.append(signal)
        result.notes.extend([note] if note else [])
    return result
