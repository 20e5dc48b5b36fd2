"""The normalised runtime signal that every ingestion format is parsed into."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aitrust.api.v1alpha1 import Severity

SignalSource = Literal["falco", "cloudtrail", "azure", "gcp", "custom", "anomaly"]


class WorkloadHint(BaseModel):
    """What a signal says about the workload it concerns; the mapper resolves it to an AIWorkload."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    namespace: str | None = None
    pod: str | None = None
    container_id: str | None = None
    workload: str | None = None  # an AIWorkload name, when the sender knows it
    aws_arn: str | None = None
    gcp_principal: str | None = None
    azure_client_id: str | None = None


class Signal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(description="Delivery id (uuid/eventID); duplicates share it.")
    source: SignalSource
    time: datetime
    severity: Severity
    rule: str = Field(description="Falco rule name, or the cloud API event name.")
    event_name: str | None = None
    tags: tuple[str, ...] = ()
    region: str | None = None
    source_ip: str | None = None
    error_code: str | None = None
    target: WorkloadHint = Field(default_factory=WorkloadHint)
    evidence: dict[str, Any] = Field(default_factory=dict)
    references: tuple[str, ...] = ()
