"""Fuzzing: every parser is total (only PayloadError escapes) and its output is always safe to store."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aitrust.core.parsers import PARSERS, ParseResult, PayloadError
from aitrust.core.parsers.base import MAX_CLOCK_SKEW

from .conftest import RECEIVED_AT, read_payload

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Keys the parsers dispatch on, so generated objects get past the first checks.
KEYS = [
    "Records", "records", "entries", "message", "data", "detail", "detail-type", "eventID", "eventTime",
    "eventName", "eventSource", "userIdentity", "protoPayload", "insertId", "methodName", "serviceName",
    "specversion", "id", "source", "type", "rule", "priority", "output_fields", "time", "operationName",
    "workload", "pod", "severity", "k8s.ns.name", "container.id", "uuid", "status", "code",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=24)
    | st.sampled_from(
        ["1.0", "2024-06-03T14:00:00Z", "Notice", "high", "AWS API Call via CloudTrail", "<NA>"]
    )
)
json_like = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), kids, max_size=5)
    ),
    max_leaves=24,
)
# Things no JSON decoder produces, for callers that pass Python objects.
python_junk = (
    st.binary(max_size=8)
    | st.sets(st.integers(), max_size=3)
    | st.builds(object)
    | st.datetimes()
    | st.tuples(json_like, json_like)
    | st.dictionaries(st.integers(), json_like, max_size=3)
)
anything = json_like | python_junk


def _encode(entry: Any) -> dict[str, Any]:
    # repr() stands in for what JSON cannot hold, so mutations still reach the decoder.
    data = base64.b64encode(json.dumps(entry, default=repr).encode()).decode()
    return {"message": {"data": data, "messageId": "1"}, "subscription": "projects/p/subscriptions/s"}


# (endpoint, sample payload, transform applied after mutation)
SAMPLES: list[tuple[str, Any, Callable[[Any], Any]]] = [
    ("falco", read_payload("falco_terminal_shell_vllm.json"), lambda p: p),
    ("falco", read_payload("falco_proc_environ_secrets.json"), lambda p: p),
    ("cloudtrail", read_payload("cloudtrail_llmjacking_irsa.json"), lambda p: p),
    ("cloudtrail", read_payload("cloudtrail_eventbridge_delete_logging.json"), lambda p: p),
    ("cloudtrail", read_payload("cloudtrail_llmjacking_irsa.json")["Records"][4], lambda p: p),
    ("azure", read_payload("azure_openai_listkeys.json"), lambda p: p),
    ("gcp", read_payload("gcp_pubsub_push_predict.json"), lambda p: p),
    ("gcp", read_payload("gcp_vertex_predict_entry.json"), _encode),
    ("gcp", read_payload("gcp_vertex_entries.json"), lambda p: p),
    ("gcp", read_payload("gcp_vertex_entries.json")["entries"], lambda p: p),
    ("cloudevents", read_payload("cloudevents_prompt_injection.json"), lambda p: p),
    ("cloudevents", read_payload("cloudevents_batch.json"), lambda p: p),
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


def _mutate(payload: Any, data: st.DataObject) -> Any:
    mutated = copy.deepcopy(payload)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = _paths(mutated)
        if not paths:
            return data.draw(anything, label="replacement root")
        path = data.draw(st.sampled_from(paths), label="path")
        parent = mutated
        for key in path[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["replace", "delete", "duplicate"]), label="action")
        if action == "replace":
            parent[path[-1]] = data.draw(anything, label="value")
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
    return mutated


def _batch_of(endpoint: str, payload: Any) -> list[Any] | None:
    """The records of a batch payload, when its envelope is intact."""
    if endpoint == "cloudtrail" and isinstance(payload, dict) and isinstance(payload.get("Records"), list):
        return list(payload["Records"])
    if endpoint == "azure" and isinstance(payload, dict) and isinstance(payload.get("records"), list):
        return list(payload["records"])
    if endpoint in {"gcp", "cloudevents"} and isinstance(payload, list):
        return payload
    if endpoint == "gcp" and isinstance(payload, dict) and "message" not in payload:
        entries = payload.get("entries")
        return entries if isinstance(entries, list) else None
    return None


def _check(endpoint: str, payload: Any, received_at: datetime = RECEIVED_AT) -> ParseResult | None:
    try:
        result = PARSERS[endpoint](payload, received_at)
    except PayloadError as err:
        assert err.path.startswith("$")
        assert isinstance(err.message, str) and err.message
        return None
    for signal in result.signals:
        text = json.dumps(signal.model_dump(mode="json"), allow_nan=False)
        assert len(json.dumps(signal.evidence)) < 20_000
        assert len(text) < 40_000
        assert signal.time.tzinfo is not None
        assert signal.time <= received_at + MAX_CLOCK_SKEW
        assert signal.id and signal.rule
    for rejection in result.rejected:
        assert rejection.path.startswith("$")
        assert rejection.message
    batch = _batch_of(endpoint, payload)
    if batch is not None:
        assert len(result.signals) + len(result.rejected) == len(batch)
        assert all(r.index is not None and 0 <= r.index < len(batch) for r in result.rejected)
    return result


@pytest.mark.parametrize("endpoint", sorted(PARSERS))
@FUZZ
@given(payload=anything)
def test_arbitrary_values_only_raise_payload_error(endpoint: str, payload: Any) -> None:
    _check(endpoint, payload)


@pytest.mark.parametrize("case", range(len(SAMPLES)), ids=[f"{e}-{i}" for i, (e, _, _) in enumerate(SAMPLES)])
@FUZZ
@given(data=st.data())
def test_mutated_valid_payloads_only_raise_payload_error(case: int, data: st.DataObject) -> None:
    endpoint, sample, wrap = SAMPLES[case]
    assert _check(endpoint, wrap(sample)) is not None  # the unmutated sample parses
    _check(endpoint, wrap(_mutate(sample, data)))


@pytest.mark.parametrize("endpoint", ["cloudtrail", "azure", "gcp", "cloudevents"])
@FUZZ
@given(data=st.data())
def test_one_bad_record_never_sinks_the_batch(endpoint: str, data: st.DataObject) -> None:
    batch_key = {"cloudtrail": "Records", "azure": "records", "gcp": "entries"}.get(endpoint)
    sample = {
        "cloudtrail": "cloudtrail_llmjacking_irsa.json",
        "azure": "azure_openai_listkeys.json",
        "gcp": "gcp_vertex_entries.json",
        "cloudevents": "cloudevents_batch.json",
    }[endpoint]
    payload = read_payload(sample)
    records = payload[batch_key] if batch_key else payload
    if endpoint == "cloudevents":
        del records[1:]  # the sample batch's second event is invalid on purpose
    good = list(records)
    index = data.draw(st.integers(0, len(records)), label="where")
    records.insert(index, data.draw(anything, label="bad record"))
    result = _check(endpoint, payload)
    assert result is not None
    assert len(result.signals) >= len(good)
    assert all(r.index == index for r in result.rejected)


@FUZZ
@given(
    secret=st.from_regex(r"[A-Za-z0-9]{20,60}", fullmatch=True),
    key=st.sampled_from(["db.password", "my_token", "client-secret", "api_key", "proc.env", "Authorization"]),
)
def test_secrets_never_reach_falco_evidence(secret: str, key: str) -> None:
    payload = read_payload("falco_terminal_shell_vllm.json")
    payload.pop("uuid")
    fields = payload["output_fields"]
    fields[key] = secret
    fields["proc.cmdline"] = f"curl -H 'Authorization: Bearer {secret}' http://vllm:8000/v1/models"
    payload["output"] += f" command=mysql --password {secret}"
    result = _check("falco", payload)
    assert result is not None
    assert secret not in json.dumps(result.signals[0].evidence)


@FUZZ
@given(
    secret=st.from_regex(r"[A-Za-z0-9]{20,60}", fullmatch=True),
    key=st.sampled_from(["password", "x-api-key", "sessionToken", "clientSecret", "privateKey"]),
)
def test_secrets_never_reach_cloudevent_evidence(secret: str, key: str) -> None:
    payload = read_payload("cloudevents_prompt_injection.json")
    payload["data"]["evidence"] = {"nested": {key: secret}, "header": f"Authorization: Basic {secret}"}
    result = _check("cloudevents", payload)
    assert result is not None
    assert secret not in json.dumps(result.signals[0].evidence)
