"""Custom detectors' signals as CloudEvents 1.0 in structured mode (one event, or a batch array).

A signal can only lower trust: ``data`` has no field that raises a score, and unknown keys in it
(``trustBoost``, ``points``, ``score`` ...) are ignored and reported back as notes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from aitrust.api.v1alpha1 import DNS_LABEL, Severity
from aitrust.core.parsers.base import (
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    Note,
    ParseResult,
    PayloadError,
    PayloadModel,
    Rejection,
    Timestamp,
    build_evidence,
    build_tags,
    effective_time,
    json_path,
    require_batch,
    validate_payload,
    validate_record,
)
from aitrust.core.signal import Signal, WorkloadHint

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
MAX_REFERENCES = 16
MAX_NOTES = 16


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class ObjectRef(PayloadModel):
    namespace: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL, description="Kubernetes namespace."
    )
    name: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="Object name.")


class CustomSignalData(PayloadModel):
    """The ``data`` of a custom signal. Keys not listed here are ignored, never honoured."""

    model_config = ConfigDict(extra="allow", frozen=True)
    workload: ObjectRef | None = Field(default=None, description="The AIWorkload the signal concerns.")
    pod: ObjectRef | None = Field(default=None, description="Or the pod it concerns.")
    severity: Annotated[Severity, BeforeValidator(_lower)] = Field(
        description="critical, high, medium, low or info."
    )
    rule: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, description="Name of the detection.")
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    references: list[str] = Field(
        default_factory=list, max_length=MAX_REFERENCES, description="ATLAS/OWASP ids."
    )
    evidence: dict[str, Any] = Field(default_factory=dict, description="Free-form; bounded and redacted.")

    @field_validator("tags", "references")
    @classmethod
    def _short(cls, value: list[str]) -> list[str]:
        if any(not item.strip() or len(item) > MAX_TAG_LENGTH for item in value):
            raise ValueError(f"entries must be non-empty and at most {MAX_TAG_LENGTH} characters")
        return value

    @model_validator(mode="after")
    def _names_one_target(self) -> CustomSignalData:
        if (self.workload is None) == (self.pod is None):
            raise ValueError('data must name exactly one of "workload" or "pod"')
        return self


class CloudEvent(PayloadModel):
    """A CloudEvents 1.0 event in structured JSON mode."""

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    source: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    type: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    time: Timestamp | None = None
    subject: str | None = Field(default=None, max_length=MAX_NAME_LENGTH)
    dataschema: str | None = None
    datacontenttype: str | None = Field(default=None, description="application/json when present.")
    data: CustomSignalData

    @field_validator("datacontenttype")
    @classmethod
    def _json_data(cls, value: str | None) -> str | None:
        if value is None:
            return None
        media = value.split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise ValueError("data must be JSON (application/json)")
        return value


CloudEventBatch = list[CloudEvent]
CloudEventKind = Literal["event", "batch"]


def _check_shape(raw: Any, prefix: list[int | str]) -> None:
    if isinstance(raw, Mapping) and "data_base64" in raw:
        raise PayloadError(
            json_path([*prefix, "data_base64"]), "binary data is not supported; send JSON in data"
        )


def _to_signal(
    event: CloudEvent, received_at: datetime, prefix: list[int | str]
) -> tuple[Signal, list[Note]]:
    data = event.data
    when, note = effective_time(event.time, received_at, json_path([*prefix, "time"]))
    notes = [note] if note else []
    ignored = sorted(data.model_extra or {})
    notes.extend(
        Note(
            path=json_path([*prefix, "data", key[:MAX_TAG_LENGTH]]),
            message="ignored: not part of the signal schema (a signal can only lower trust)",
        )
        for key in ignored[:MAX_NOTES]
    )
    if len(ignored) > MAX_NOTES:
        notes.append(
            Note(path=json_path([*prefix, "data"]), message=f"{len(ignored) - MAX_NOTES} more keys ignored")
        )
    if data.workload is not None:
        target = WorkloadHint(namespace=data.workload.namespace, workload=data.workload.name)
    elif data.pod is not None:
        target = WorkloadHint(namespace=data.pod.namespace, pod=data.pod.name)
    else:  # CustomSignalData's validator makes this unreachable
        target = WorkloadHint()
    signal = Signal(
        id=f"{event.source}#{event.id}",
        source="custom",
        time=when,
        severity=data.severity,
        rule=data.rule,
        event_name=event.type,
        tags=build_tags(["custom"], data.tags),
        target=target,
        evidence=build_evidence(
            {
                "evidence": data.evidence,
                "ce_source": event.source,
                "ce_id": event.id,
                "subject": event.subject,
            }
        ),
        references=tuple(dict.fromkeys(r.strip() for r in data.references)),
    )
    return signal, notes


def parse_cloudevents(payload: Any, received_at: datetime) -> ParseResult:
    """Parse one structured CloudEvent, or a JSON batch of them (bad events are rejected one by one)."""
    result = ParseResult()
    if isinstance(payload, list | tuple):
        for index, item in enumerate(require_batch(payload, "$")):
            try:
                _check_shape(item, [index])
            except PayloadError as err:
                result.rejected.append(Rejection(index=index, path=err.path, message=err.message))
                continue
            parsed = validate_record(CloudEvent, item, index, [index])
            if isinstance(parsed, Rejection):
                result.rejected.append(parsed)
                continue
            signal, notes = _to_signal(parsed, received_at, [index])
            result.signals.append(signal)
            result.notes.extend(notes)
        return result
    if not isinstance(payload, Mapping):
        raise PayloadError("$", "expected a CloudEvent object or an array of them")
    _check_shape(payload, [])
    event = validate_payload(CloudEvent, payload)
    signal, notes = _to_signal(event, received_at, [])
    result.signals.append(signal)
    result.notes.extend(notes)
    return result
