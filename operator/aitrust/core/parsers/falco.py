"""Falco events as Falcosidekick's ``webhook`` output posts them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from aitrust.api.v1alpha1 import Severity
from aitrust.core.parsers.base import (
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TAG_LENGTH,
    Note,
    ParseResult,
    PayloadModel,
    Timestamp,
    build_evidence,
    build_tags,
    effective_time,
    require_object,
    short_str,
    stable_id,
    text_or_none,
    validate_payload,
)
from aitrust.core.signal import Signal, WorkloadHint

PRIORITY_SEVERITY: dict[str, Severity] = {
    "emergency": Severity.CRITICAL,
    "alert": Severity.CRITICAL,
    "critical": Severity.CRITICAL,
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "notice": Severity.LOW,
    "informational": Severity.INFO,
    "info": Severity.INFO,
    "debug": Severity.INFO,
}


class FalcoOutputFields(PayloadModel):
    """The output fields aitrust reads; every other field is kept as evidence."""

    namespace: str | None = Field(default=None, alias="k8s.ns.name", max_length=MAX_NAME_LENGTH)
    pod: str | None = Field(default=None, alias="k8s.pod.name", max_length=MAX_NAME_LENGTH)
    container_id: str | None = Field(default=None, alias="container.id", max_length=MAX_NAME_LENGTH)


class FalcoPayload(PayloadModel):
    """One Falco alert, as Falcosidekick's webhook output sends it."""

    uuid: str | None = Field(
        default=None, min_length=1, max_length=MAX_ID_LENGTH, description="Added by Falcosidekick per event."
    )
    output: str = Field(default="", description="The rendered alert line.")
    priority: str = Field(
        description="Emergency, Alert, Critical, Error, Warning, Notice, Informational, Debug."
    )
    rule: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, description="The Falco rule that fired.")
    time: Timestamp | None = Field(default=None, description="When the event happened (RFC 3339).")
    output_fields: FalcoOutputFields = Field(
        description="Fields of the alert, e.g. k8s.ns.name, container.id."
    )
    source: str = Field(default="syscall", max_length=MAX_NAME_LENGTH, description="Falco event source.")
    tags: list[str] | None = Field(default=None, max_length=64, description="The rule's tags.")
    hostname: str | None = Field(default=None, max_length=MAX_NAME_LENGTH, description="Node that saw it.")

    @field_validator("priority")
    @classmethod
    def _known_priority(cls, value: str) -> str:
        key = value.strip().lower()
        if key not in PRIORITY_SEVERITY:
            raise ValueError("unknown priority; expected one of " + ", ".join(PRIORITY_SEVERITY))
        return key

    @field_validator("tags")
    @classmethod
    def _short_tags(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(len(tag) > MAX_TAG_LENGTH for tag in value):
            raise ValueError(f"tags must be at most {MAX_TAG_LENGTH} characters")
        return value


def _container_id(raw: str | None) -> str | None:
    text = text_or_none(raw)
    # Falco reports host events with container.id "host"; those concern no pod.
    if text is None or text == "host":
        return None
    return text.lower()


def parse_falco(payload: Any, received_at: datetime) -> ParseResult:
    """Parse one Falcosidekick webhook post; a malformed one raises PayloadError."""
    raw = require_object(payload, "a Falco event")
    event = validate_payload(FalcoPayload, raw)
    fields = event.output_fields
    when, note = effective_time(event.time, received_at, "$.time")
    raw_fields = raw.get("output_fields")
    evidence = build_evidence(
        {
            "output": event.output,  # build_evidence redacts every string
            "output_fields": raw_fields if isinstance(raw_fields, dict) else {},
            "falco_source": event.source,
            "hostname": event.hostname,
        }
    )
    signal = Signal(
        id=event.uuid if event.uuid else stable_id("falco", raw),
        source="falco",
        time=when,
        severity=PRIORITY_SEVERITY[event.priority],
        rule=event.rule,
        tags=build_tags(["falco"], event.tags or []),
        target=WorkloadHint(
            namespace=short_str(fields.namespace),
            pod=short_str(fields.pod),
            container_id=_container_id(fields.container_id),
        ),
        evidence=evidence,
    )
    notes: list[Note] = [note] if note else []
    return ParseResult(signals=[signal], notes=notes)
