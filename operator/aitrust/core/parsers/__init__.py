"""Pure parsers from each accepted signal format to normalised ``Signal`` objects.

Each parser is ``parse_<format>(payload, received_at) -> ParseResult`` and raises only
``PayloadError``. ``PARSERS`` is keyed by the HTTP endpoint name.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from aitrust.core.parsers.azure import AzureLogBatch, parse_azure
from aitrust.core.parsers.base import Note, ParseResult, PayloadError, Rejection
from aitrust.core.parsers.cloudevents import CloudEvent, parse_cloudevents
from aitrust.core.parsers.cloudtrail import (
    CloudTrailLogFile,
    CloudTrailRecord,
    EventBridgeCloudTrailEvent,
    parse_cloudtrail,
)
from aitrust.core.parsers.falco import FalcoPayload, parse_falco
from aitrust.core.parsers.gcp import GcpEntries, GcpLogEntry, PubSubPush, parse_gcp

Parser = Callable[[Any, datetime], ParseResult]

PARSERS: dict[str, Parser] = {
    "falco": parse_falco,
    "cloudtrail": parse_cloudtrail,
    "azure": parse_azure,
    "gcp": parse_gcp,
    "cloudevents": parse_cloudevents,
}

# What each endpoint accepts, for the OpenAPI document.
PAYLOAD_TYPES: dict[str, Any] = {
    "falco": FalcoPayload,
    "cloudtrail": CloudTrailLogFile | EventBridgeCloudTrailEvent | CloudTrailRecord,
    "azure": AzureLogBatch,
    "gcp": GcpLogEntry | list[GcpLogEntry] | GcpEntries | PubSubPush,
    "cloudevents": CloudEvent | list[CloudEvent],
}

_TITLES = {
    "falco": "Falcosidekick webhook event",
    "cloudtrail": "CloudTrail log file, EventBridge event or record",
    "azure": "Azure log records",
    "gcp": "Cloud Audit Log entries or Pub/Sub push",
    "cloudevents": "CloudEvent or batch of CloudEvents",
}


def _inline(node: Any, defs: dict[str, Any], trail: tuple[str, ...]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in trail:  # recursive type: keep the reference rather than loop
                return node
            merged = {**copy.deepcopy(defs[name]), **{k: v for k, v in node.items() if k != "$ref"}}
            return _inline(merged, defs, (*trail, name))
        return {k: _inline(v, defs, trail) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs, trail) for v in node]
    return node


def build_openapi_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema (2020-12, as OpenAPI 3.1 uses) of each endpoint's payload, with no $refs left."""
    out: dict[str, dict[str, Any]] = {}
    for name, payload_type in PAYLOAD_TYPES.items():
        schema = TypeAdapter(payload_type).json_schema(by_alias=True, mode="validation")
        inlined = _inline(schema, schema.get("$defs", {}), ())
        inlined["title"] = _TITLES[name]
        out[name] = inlined
    return out


__all__ = [
    "PARSERS",
    "PAYLOAD_TYPES",
    "Note",
    "ParseResult",
    "Parser",
    "PayloadError",
    "Rejection",
    "build_openapi_schemas",
    "parse_azure",
    "parse_cloudevents",
    "parse_cloudtrail",
    "parse_falco",
    "parse_gcp",
]
