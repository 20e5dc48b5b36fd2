from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrust.api.v1alpha1 import DURATION_PATTERN
from aitrust.core.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("24h", timedelta(days=1)),
        ("1.5h", timedelta(minutes=90)),
        ("0.1h", timedelta(minutes=6)),
        ("2m3s4ms", timedelta(minutes=2, seconds=3, milliseconds=4)),
        ("1h1h", timedelta(hours=2)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1", "h", "1d", "-1h", "1 h", "1.h", "30mins", "1h30", "PT1H"])
def test_parse_duration_rejects_what_the_api_pattern_rejects(text: str) -> None:
    assert re.fullmatch(DURATION_PATTERN, text) is None
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_parse_duration_rejects_absurd_lengths() -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration("99999999999999h")


@settings(max_examples=150)
@given(st.integers(min_value=0, max_value=10**12).map(lambda us: timedelta(microseconds=us * 1000)))
def test_format_then_parse_round_trips(delta: timedelta) -> None:
    text = format_duration(delta)
    assert re.fullmatch(DURATION_PATTERN, text)
    assert parse_duration(text) == delta


def test_format_duration_uses_largest_units() -> None:
    assert format_duration(timedelta(hours=1, minutes=30)) == "1h30m"
    assert format_duration(timedelta(milliseconds=250)) == "250ms"
    assert format_duration(timedelta(days=2)) == "48h"
    with pytest.raises(ValueError):
        format_duration(timedelta(seconds=-1))
