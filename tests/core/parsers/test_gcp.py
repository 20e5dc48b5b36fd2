from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from aitrust.api.v1alpha1 import Severity
from aitrust.core.parsers.base import PayloadError
from aitrust.core.parsers.gcp import code_name, parse_gcp

Load = Callable[[str], Any]
ENTRY = "gcp_vertex_predict_entry.json"
PUSH = "gcp_pubsub_push_predict.json"
ENTRIES = "gcp_vertex_entries.json"


def _push(entry: Any) -> dict[str, Any]:
    data = base64.b64encode(json.dumps(entry).encode()).decode()
    return {
        "message": {"data": data, "messageId": "1", "publishTime": "2024-06-03T14:45:13Z"},
        "subscription": "s",
    }


def test_vertex_predict_via_pubsub_push(sample: Load, received_at: datetime) -> None:
    [signal] = parse_gcp(sample(PUSH), received_at).signals
    assert signal.id == "1x7kq3ue1a2b"
    assert signal.source == "gcp"
    assert signal.rule == "google.cloud.aiplatform.v1.PredictionService.Predict"
    assert signal.severity is Severity.INFO
    assert signal.target.gcp_principal == "rag-agent@acme-ml-prod.iam.gserviceaccount.com"
    assert signal.region == "us-central1"
    assert signal.source_ip == "34.118.230.17"
    assert signal.error_code is None
    assert signal.time == datetime(2024, 6, 3, 14, 45, 12, 345678, tzinfo=UTC)
    assert {"gcp", "aiplatform.googleapis.com"} <= set(signal.tags)


@pytest.mark.parametrize("wrap", [lambda e: e, lambda e: [e], lambda e: {"entries": [e]}, _push])
def test_all_envelopes_give_the_same_signal(
    sample: Load, received_at: datetime, wrap: Callable[[Any], Any]
) -> None:
    expected = parse_gcp(sample(PUSH), received_at).signals
    assert parse_gcp(wrap(sample(ENTRY)), received_at).signals == expected


def test_permission_denied_inference_and_iam_change(sample: Load, received_at: datetime) -> None:
    result = parse_gcp(sample(ENTRIES), received_at)
    denied, iam = result.signals
    assert denied.severity is Severity.MEDIUM
    assert denied.error_code == "PERMISSION_DENIED"
    assert {"error:PERMISSION_DENIED", "llmjacking"} <= set(denied.tags)
    assert denied.target.gcp_principal == "leaked-ci@acme-ml-prod.iam.gserviceaccount.com"
    assert denied.evidence["status"]["code"] == 7
    assert iam.severity is Severity.MEDIUM
    assert iam.error_code is None


def test_other_errors_are_low(sample: Load, received_at: datetime) -> None:
    entry = sample(ENTRY)
    entry["protoPayload"]["status"] = {"code": 8, "message": "quota"}
    signal = parse_gcp(entry, received_at).signals[0]
    assert (signal.severity, signal.error_code) == (Severity.LOW, "RESOURCE_EXHAUSTED")


def test_delete_sink_is_high(sample: Load, received_at: datetime) -> None:
    entry = sample(ENTRY)
    entry["protoPayload"]["methodName"] = "google.logging.v2.ConfigServiceV2.DeleteSink"
    entry["protoPayload"]["serviceName"] = "logging.googleapis.com"
    assert parse_gcp(entry, received_at).signals[0].severity is Severity.HIGH


def test_region_falls_back_to_resource_labels(sample: Load, received_at: datetime) -> None:
    entry = sample(ENTRY)
    del entry["protoPayload"]["resourceLocation"]
    entry["resource"]["labels"]["location"] = "europe-west4"
    assert parse_gcp(entry, received_at).signals[0].region == "europe-west4"


def test_principal_subject_when_no_email(sample: Load, received_at: datetime) -> None:
    entry = sample(ENTRY)
    subject = (
        "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/subject/ns/a/sa/b"
    )
    entry["protoPayload"]["authenticationInfo"] = {"principalSubject": subject}
    assert parse_gcp(entry, received_at).signals[0].target.gcp_principal == subject


def test_missing_insert_id_gets_a_stable_id(sample: Load, received_at: datetime) -> None:
    entry = sample(ENTRY)
    del entry["insertId"]
    first = parse_gcp(entry, received_at).signals[0].id
    assert first == parse_gcp(_push(entry), received_at).signals[0].id
    assert len(first) == 64


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("%%%not-base64", "base64"),
        (base64.b64encode(b"\xff\xfe").decode(), "UTF-8"),
        ("bm90IGpzb24=", "JSON"),
    ],
)
def test_undecodable_pubsub_data(data: str, message: str, received_at: datetime) -> None:
    with pytest.raises(PayloadError) as err:
        parse_gcp({"message": {"data": data}}, received_at)
    assert err.value.path == "$.message.data"
    assert message in err.value.message


def test_bad_field_inside_pubsub_data_is_named(sample: Load, received_at: datetime) -> None:
    entry = sample(ENTRY)
    del entry["protoPayload"]["methodName"]
    with pytest.raises(PayloadError) as err:
        parse_gcp(_push(entry), received_at)
    assert err.value.path == "$.message.data.protoPayload.methodName"


def test_bad_entry_in_batch_is_rejected_alone(sample: Load, received_at: datetime) -> None:
    payload = sample(ENTRIES)
    payload["entries"].insert(1, {"insertId": "x", "jsonPayload": {"message": "not an audit log"}})
    payload["entries"][2]["protoPayload"]["status"]["code"] = "seven"
    result = parse_gcp(payload, received_at)
    assert [(r.index, r.path) for r in result.rejected] == [
        (1, "$.entries[1].protoPayload"),
        (2, "$.entries[2].protoPayload.status.code"),
    ]
    assert len(result.signals) == 1


@pytest.mark.parametrize(
    ("payload", "path"),
    [({"message": "hi"}, "$.message"), ({"jsonPayload": {}}, "$"), ({"entries": 1}, "$.entries"), ("x", "$")],
)
def test_structural_problems_raise(payload: Any, path: str, received_at: datetime) -> None:
    with pytest.raises(PayloadError) as err:
        parse_gcp(payload, received_at)
    assert err.value.path == path


@pytest.mark.parametrize(
    ("code", "name"), [(0, "OK"), (7, "PERMISSION_DENIED"), (16, "UNAUTHENTICATED"), (99, "99")]
)
def test_code_names(code: int, name: str) -> None:
    assert code_name(code) == name
