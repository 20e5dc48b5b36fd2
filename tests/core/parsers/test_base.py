from __future__ import annotations

import json
import re
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from aitrust.core.parsers import base
from aitrust.core.parsers.base import (
    MAX_CLOCK_SKEW,
    MAX_EVIDENCE_CHARS,
    MAX_EVIDENCE_DEPTH,
    MAX_EVIDENCE_ITEMS,
    MAX_EVIDENCE_KEYS,
    MAX_EVIDENCE_STRING,
    REDACTED,
    PayloadError,
    PayloadModel,
    Rejection,
    Timestamp,
    build_evidence,
    build_tags,
    effective_time,
    is_secret_key,
    json_path,
    redact_text,
    stable_id,
    text_or_none,
    validate_payload,
    validate_record,
)


class _Inner(PayloadModel):
    arn: str


class _Outer(PayloadModel):
    when: Timestamp = Field(alias="eventTime")
    fields: dict[str, int] = Field(default_factory=dict, alias="output_fields")
    items: list[_Inner] = Field(default_factory=list, alias="Records")


class _Stamp(BaseModel):
    at: Timestamp


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ((), "$"),
        (("Records", 3, "eventTime"), "$.Records[3].eventTime"),
        (("output_fields", "k8s.ns.name"), '$.output_fields["k8s.ns.name"]'),
        (("detail-type",), '$["detail-type"]'),
        ((0, "data", "severity"), "$[0].data.severity"),
        (("@type",), '$["@type"]'),
    ],
)
def test_json_path_renders_identifiers_indices_and_quoted_keys(
    parts: tuple[int | str, ...], expected: str
) -> None:
    assert json_path(parts) == expected


def test_json_path_quotes_keys_with_quotes_safely() -> None:
    assert json_path(['a"b']) == '$["a\\"b"]'


def test_validate_payload_names_nested_field_in_error() -> None:
    with pytest.raises(PayloadError) as err:
        validate_payload(_Outer, {"eventTime": "2024-06-03T14:00:00Z", "Records": [{"arn": "x"}, {"arn": 5}]})
    assert err.value.path == "$.Records[1].arn"


def test_validate_payload_quotes_dotted_keys() -> None:
    with pytest.raises(PayloadError) as err:
        validate_payload(_Outer, {"eventTime": "2024-06-03T14:00:00Z", "output_fields": {"k8s.ns.name": "x"}})
    assert err.value.path == '$.output_fields["k8s.ns.name"]'


def test_validate_payload_reports_missing_field_and_counts_the_rest() -> None:
    with pytest.raises(PayloadError) as err:
        validate_payload(_Outer, {"Records": [{}]})
    assert err.value.path == "$.eventTime"
    assert "Field required" in err.value.message
    assert "1 more problem" in err.value.message


def test_validate_record_rejects_with_index_and_prefix() -> None:
    result = validate_record(_Inner, {"arn": None}, 7, ["Records", 7])
    assert isinstance(result, Rejection)
    assert (result.index, result.path) == (7, "$.Records[7].arn")
    assert validate_record(_Inner, {"arn": "a"}, 0, []) == _Inner(arn="a")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-06-03T14:32:07.123456789Z", datetime(2024, 6, 3, 14, 32, 7, 123456, tzinfo=UTC)),
        ("2024-06-03T14:40:11.2795386Z", datetime(2024, 6, 3, 14, 40, 11, 279538, tzinfo=UTC)),
        ("2024-06-03T16:00:00+02:00", datetime(2024, 6, 3, 14, 0, tzinfo=UTC)),
        ("2024-06-03T14:00:00", datetime(2024, 6, 3, 14, 0, tzinfo=UTC)),
    ],
)
def test_timestamps_are_parsed_to_utc(text: str, expected: datetime) -> None:
    parsed = _Stamp.model_validate({"at": text}).at
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value", [1717425127, 1717425127.5, "yesterday", "", "9999-12-31T23:59:59-23:59", None]
)
def test_timestamps_reject_numbers_garbage_and_overflow(value: object) -> None:
    with pytest.raises(PayloadError) as err:
        validate_payload(_Stamp, {"at": value})
    assert err.value.path == "$.at"


def test_effective_time_uses_event_time_within_skew() -> None:
    received = datetime(2024, 6, 3, 15, 0, tzinfo=UTC)
    early = received + MAX_CLOCK_SKEW - timedelta(seconds=1)
    assert effective_time(early, received, "$.time") == (early, None)


def test_effective_time_distrusts_future_and_fills_missing() -> None:
    received = datetime(2024, 6, 3, 15, 0, tzinfo=UTC)
    future, note = effective_time(received + timedelta(days=365), received, "$.time")
    assert future == received
    assert note is not None and note.path == "$.time" and "future" in note.message
    missing, note = effective_time(None, received, "$.time")
    assert missing == received and note is not None


def test_effective_time_treats_naive_receive_time_as_utc() -> None:
    when, _ = effective_time(None, datetime(2024, 6, 3, 15, 0), "$.time")
    assert when == datetime(2024, 6, 3, 15, 0, tzinfo=UTC)
    aware, _ = effective_time(None, datetime(2024, 6, 3, 17, 0, tzinfo=timezone(timedelta(hours=2))), "$")
    assert aware == datetime(2024, 6, 3, 15, 0, tzinfo=UTC)


def test_stable_id_ignores_key_order_and_detects_changes() -> None:
    a = {"rule": "r", "output_fields": {"x": 1, "y": [1, 2]}}
    b = {"output_fields": {"y": [1, 2], "x": 1}, "rule": "r"}
    assert stable_id("falco", a) == stable_id("falco", b)
    assert stable_id("falco", a) != stable_id("falco", {**a, "rule": "s"})
    assert stable_id("falco", a) != stable_id("azure", a)


def test_stable_id_handles_non_json_values_and_refuses_cycles() -> None:
    assert stable_id(float("nan"), b"x", 2**80) == stable_id(float("nan"), b"x", 2**80)
    cyclic: dict[str, object] = {}
    cyclic["self"] = cyclic
    with pytest.raises(PayloadError):
        stable_id(cyclic)


def test_stable_id_refuses_shared_structure_that_would_explode() -> None:
    node: list[object] = []
    for _ in range(40):
        node = [node, node]
    with pytest.raises(PayloadError):
        stable_id(node)


@pytest.mark.parametrize(
    "key",
    [
        "proc.env",
        "password",
        "DB_PASSWORD",
        "aws.secret",
        "api_key",
        "apiKey",
        "x-api-key",
        "Authorization",
        "token",
    ],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key", ["k8s.ns.name", "proc.cmdline", "container.id", "resultSignature", "environment"]
)
def test_ordinary_keys(key: str) -> None:
    assert not is_secret_key(key)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("curl -H 'Authorization: Bearer abcdef1234567890' http://x", "abcdef1234567890"),
        ("Proxy-Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz", "hf_abcdefghijklmnopqrstuvwxyz"),
        ("python serve.py --api-key s3cr3t-v4lue", "s3cr3t-v4lue"),
        ("mysql --password hunter2hunter2", "hunter2hunter2"),
        ('{"client_secret": "Zm9vYmFyYmF6"}', "Zm9vYmFyYmF6"),
        ("key AKIAIOSFODNN7EXAMPLE leaked", "AKIAIOSFODNN7EXAMPLE"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123 end", "eyJzdWIiOiIxIn0"),
        ("git clone https://bob:ghp_s3cr3tpass@github.com/x", "ghp_s3cr3tpass"),
        ("OPENAI=sk-proj-abcdefghijklmnop1234", "sk-proj-abcdefghijklmnop1234"),
    ],
)
def test_redact_text_removes_secrets(text: str, secret: str) -> None:
    clean = redact_text(text)
    assert secret not in clean
    assert REDACTED in clean


def test_redact_text_keeps_ordinary_text_and_truncates() -> None:
    assert redact_text("bash -c ls /models") == "bash -c ls /models"
    long = "a" * (MAX_EVIDENCE_STRING * 10)
    clean = redact_text(long)
    assert len(clean) < MAX_EVIDENCE_STRING + 32
    assert clean.endswith("[truncated]")


def _redact_reference(text: str, limit: int = MAX_EVIDENCE_STRING) -> str:
    """What redact_text does, spelled out: every secret pattern in turn over the whole text."""
    work = text[: limit * 4]
    for pattern, replacement in base._SECRET_TEXT:
        work = pattern.sub(replacement, work)
    if len(work) > limit or len(text) > limit * 4:
        work = work[:limit] + "...[truncated]"
    return work


# Pieces that reach every secret pattern, its pre-checks, and the characters that case-fold to ASCII.
_FRAGMENTS = [
    "token", "TOKEN", "toKen", "secret", "passw", "password", "passwd", "pwd", "api_key", "api-key",
    "ApiKey", "access_key", "private-key", "credentials", "Authorization", "proxy-", "Bearer ", "basic ",
    "=", ":", '"', "'", " ", "\t", "-", "--", ".", "_", ",", ";", "&", "/", "@", "://", "user",
    "eyJhbGciOi", "AKIA", "ASIA", "IOSFODNN7EXAMPLE", "sk-", "hf_", "ghp_", "xoxb-", "AIza", "abcdefghij",
    "0123456789", "\u017fecret", "pa\u017f\u017fword", "\u212aey", "\u0130", "\u0131", "é", "[REDACTED]",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=6), max_size=60).map("".join),
    st.sampled_from([16, 64, MAX_EVIDENCE_STRING]),
)
def test_redact_text_matches_applying_every_pattern(text: str, limit: int) -> None:
    assert redact_text(text, limit) == _redact_reference(text, limit)


@pytest.mark.parametrize(
    "text",
    [
        "x" * 40 + "_token=abc " * 60,  # more possible starts than the bounded search tries
        "MY_VERY_LONG_SERVICE_ACCOUNT_NAME_token: 'v' and db-password=\"p\" & apikey=k",
        "\u017fecret=1 pa\u017f\u017fword=2 \u212aey=3 \u0130 credent\u0130al=4",
        "Authorization: Bearer abcdefgh12345678 eyJabcdef.ghijklm.nop AKIAIOSFODNN7EXAMPLE",
    ],
)
def test_redact_text_matches_applying_every_pattern_on_hard_cases(text: str) -> None:
    assert redact_text(text) == _redact_reference(text)


def test_fold_covers_every_character_that_case_insensitive_re_maps_to_ascii() -> None:
    everything = "".join(map(chr, range(128, 0x110000)))
    found = set(re.findall(r"(?i)[a-z]", everything))
    assert found == set("\u0130\u0131\u017f\u212a")
    for char in found:
        assert base._fold(char) in string.ascii_lowercase
        assert re.fullmatch("(?i)" + base._fold(char), char)


def test_build_evidence_redacts_by_key_and_by_value() -> None:
    evidence = build_evidence(
        {"proc.env": "A=1", "nested": {"Authorization": "Basic Zm9v"}, "cmd": "x --token abcd1234"}
    )
    assert evidence["proc.env"] == REDACTED
    assert evidence["nested"]["Authorization"] == REDACTED
    assert "abcd1234" not in evidence["cmd"]


def test_build_evidence_bounds_depth_width_and_size() -> None:
    deep: dict[str, object] = {"leaf": 1}
    for _ in range(MAX_EVIDENCE_DEPTH + 3):
        deep = {"d": deep}
    wide = {f"k{i}": i for i in range(MAX_EVIDENCE_KEYS * 2)}
    long_list = list(range(MAX_EVIDENCE_ITEMS * 3))
    huge = {f"f{i}": "x" * MAX_EVIDENCE_STRING for i in range(MAX_EVIDENCE_KEYS)}
    evidence = build_evidence({"deep": deep, "wide": wide, "list": long_list, "huge": huge})
    assert "leaf" not in json.dumps(evidence)
    assert len(evidence["wide"]) <= MAX_EVIDENCE_KEYS + 1 and evidence["wide"]["_truncated"] is True
    assert len(evidence["list"]) == MAX_EVIDENCE_ITEMS + 1
    assert evidence.get("_truncated") is True
    assert len(json.dumps(evidence)) < MAX_EVIDENCE_CHARS * 2


def test_build_evidence_is_strict_json() -> None:
    cyclic: list[object] = []
    cyclic.append(cyclic)
    raw: dict[Any, Any] = {"nan": float("inf"), "big": 2**70, "bytes": b"\x00", "cycle": cyclic, 3: "x"}
    evidence = build_evidence(raw)
    text = json.dumps(evidence, allow_nan=False)
    assert json.loads(text)["big"] == str(2**70)
    assert "3" not in evidence


def test_build_tags_dedupes_bounds_and_drops_empties() -> None:
    tags = build_tags(["falco", "falco"], [None, "", "shell"], [f"t{i}" for i in range(100)])
    assert tags[:2] == ("falco", "shell")
    assert len(tags) == len(set(tags)) == 32


@pytest.mark.parametrize(("value", "expected"), [("<NA>", None), ("  ", None), (5, None), (" ns ", "ns")])
def test_text_or_none_treats_placeholders_as_absent(value: object, expected: str | None) -> None:
    assert text_or_none(value) == expected
