"""Tests of aitrust.core.parsers (the package): the endpoint registry and the OpenAPI schemas."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from aitrust.core.parsers import PARSERS, PAYLOAD_TYPES, build_openapi_schemas

Load = Callable[[str], Any]

SAMPLES = {
    "falco": "falco_terminal_shell_vllm.json",
    "cloudtrail": "cloudtrail_llmjacking_irsa.json",
    "azure": "azure_openai_listkeys.json",
    "gcp": "gcp_pubsub_push_predict.json",
    "cloudevents": "cloudevents_prompt_injection.json",
}


def test_registry_covers_every_endpoint() -> None:
    assert set(PARSERS) == set(PAYLOAD_TYPES) == set(SAMPLES)


@pytest.mark.parametrize("endpoint", sorted(SAMPLES))
def test_registered_parser_accepts_its_sample(endpoint: str, sample: Load, received_at: datetime) -> None:
    result = PARSERS[endpoint](sample(SAMPLES[endpoint]), received_at)
    assert result.signals
    expected_source = "custom" if endpoint == "cloudevents" else endpoint
    assert {s.source for s in result.signals} == {expected_source}


def _walk(node: Any) -> list[Any]:
    found = [node]
    if isinstance(node, dict):
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def test_schemas_are_self_contained_json() -> None:
    schemas = build_openapi_schemas()
    assert set(schemas) == set(PARSERS)
    for name, schema in schemas.items():
        text = json.dumps(schema)
        assert "$ref" not in text and "$defs" not in text, name
        assert schema["title"]


def test_falco_schema_names_wire_fields() -> None:
    schema = build_openapi_schemas()["falco"]
    assert {"rule", "priority", "output_fields"} <= set(schema["required"])
    assert "k8s.ns.name" in schema["properties"]["output_fields"]["properties"]
    assert schema["properties"]["time"]["anyOf"][0]["format"] == "date-time"


def _properties(schema: dict[str, Any]) -> set[str]:
    return {key for node in _walk(schema) if isinstance(node, dict) for key in node.get("properties", {})}


@pytest.mark.parametrize(
    ("endpoint", "fields"),
    [
        (
            "cloudtrail",
            {"Records", "detail-type", "detail", "eventID", "eventTime", "userIdentity", "sessionIssuer"},
        ),
        ("azure", {"records", "operationName", "resultSignature", "callerIpAddress", "identity"}),
        ("gcp", {"entries", "message", "protoPayload", "methodName", "principalEmail", "insertId"}),
        ("cloudevents", {"specversion", "id", "source", "type", "data", "workload", "pod", "severity"}),
    ],
)
def test_schemas_use_wire_names(endpoint: str, fields: set[str]) -> None:
    assert fields <= _properties(build_openapi_schemas()[endpoint])


def test_cloudevent_schema_offers_no_trust_raising_field() -> None:
    props = _properties(build_openapi_schemas()["cloudevents"])
    assert not props & {"points", "score", "trustBoost", "trustScore"}


def test_pubsub_data_is_described_as_base64_json() -> None:
    nodes = [
        n for n in _walk(build_openapi_schemas()["gcp"]) if isinstance(n, dict) and "contentEncoding" in n
    ]
    assert nodes and nodes[0]["contentMediaType"] == "application/json"
