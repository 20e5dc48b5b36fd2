from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from aitrust.api.v1alpha1 import Severity
from aitrust.core.parsers.azure import OBJECT_ID_CLAIM, parse_azure
from aitrust.core.parsers.base import PayloadError

Load = Callable[[str], Any]
RECORDS = "azure_openai_listkeys.json"
APP_ID = "5f3c1a2b-7d8e-4f90-a1b2-c3d4e5f60718"


def test_listkeys_and_friends(sample: Load, received_at: datetime) -> None:
    payload = sample(RECORDS)
    result = parse_azure(payload, received_at)
    assert result.rejected == []
    got = [(s.rule, s.severity, s.error_code) for s in result.signals]
    assert got == [
        ("MICROSOFT.COGNITIVESERVICES/ACCOUNTS/LISTKEYS/ACTION", Severity.INFO, None),  # Start phase
        ("MICROSOFT.COGNITIVESERVICES/ACCOUNTS/LISTKEYS/ACTION", Severity.HIGH, None),
        ("MICROSOFT.COGNITIVESERVICES/ACCOUNTS/DEPLOYMENTS/WRITE", Severity.MEDIUM, None),
        ("MICROSOFT.INSIGHTS/DIAGNOSTICSETTINGS/DELETE", Severity.HIGH, None),
        ("ChatCompletions_Create", Severity.INFO, None),
        ("ChatCompletions_Create", Severity.LOW, "401"),
    ]
    listkeys = result.signals[1]
    assert listkeys.source == "azure"
    assert listkeys.event_name == listkeys.rule
    assert listkeys.time == datetime(2024, 6, 3, 14, 40, 11, 279538, tzinfo=UTC)
    assert listkeys.source_ip == "20.84.12.34"
    assert listkeys.region == "global"
    assert listkeys.target.azure_client_id == APP_ID
    assert {"azure", "Administrative"} <= set(listkeys.tags)
    assert "phase:start" in result.signals[0].tags
    assert listkeys.evidence["action"] == "Microsoft.CognitiveServices/accounts/listKeys/action"
    assert listkeys.evidence["objectId"] == payload["records"][1]["identity"]["claims"][OBJECT_ID_CLAIM]
    assert "error:401" in result.signals[5].tags


def test_ids_are_stable_and_distinct(sample: Load, received_at: datetime) -> None:
    payload = sample(RECORDS)
    first = [s.id for s in parse_azure(payload, received_at).signals]
    again = [s.id for s in parse_azure(sample(RECORDS), received_at).signals]
    assert first == again
    assert len(set(first)) == len(first)


def test_operation_name_is_case_insensitive(sample: Load, received_at: datetime) -> None:
    payload = sample(RECORDS)
    payload["records"] = [payload["records"][1]]
    payload["records"][0]["operationName"] = "Microsoft.CognitiveServices/accounts/listKeys/action"
    assert parse_azure(payload, received_at).signals[0].severity is Severity.HIGH


def test_failed_listkeys_still_counts(sample: Load, received_at: datetime) -> None:
    payload = sample(RECORDS)
    record = payload["records"][1]
    record["resultType"] = "Failure"
    record["resultSignature"] = "Failed.Forbidden"
    signal = parse_azure({"records": [record]}, received_at).signals[0]
    assert signal.severity is Severity.HIGH
    assert signal.error_code == "Failed.Forbidden"


def test_client_id_falls_back_to_object_id(sample: Load, received_at: datetime) -> None:
    record = sample(RECORDS)["records"][4]
    record["properties"]["objectId"] = "0A1B2C3D-0000-4000-8000-000000000001"
    signal = parse_azure({"records": [record]}, received_at).signals[0]
    assert signal.target.azure_client_id == "0a1b2c3d-0000-4000-8000-000000000001"


def test_string_identity_is_tolerated(sample: Load, received_at: datetime) -> None:
    record = sample(RECORDS)["records"][1]
    record["identity"] = "someone@example.com"
    signal = parse_azure({"records": [record]}, received_at).signals[0]
    assert signal.target.azure_client_id is None
    assert signal.severity is Severity.HIGH


def test_bad_record_is_rejected_alone(sample: Load, received_at: datetime) -> None:
    payload = sample(RECORDS)
    del payload["records"][2]["operationName"]
    payload["records"][3]["time"] = 1717425000
    result = parse_azure(payload, received_at)
    assert [(r.index, r.path) for r in result.rejected] == [
        (2, "$.records[2].operationName"),
        (3, "$.records[3].time"),
    ]
    assert len(result.signals) == 4


@pytest.mark.parametrize(
    ("payload", "path"),
    [({"value": []}, "$.records"), ({"records": "x"}, "$.records"), ([{"time": "x"}], "$"), (None, "$")],
)
def test_structural_problems_raise(payload: Any, path: str, received_at: datetime) -> None:
    with pytest.raises(PayloadError) as err:
        parse_azure(payload, received_at)
    assert err.value.path == path
