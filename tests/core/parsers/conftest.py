"""Fixtures shared by the parser tests: the sample payloads in tests/core/payloads."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads"
# Shortly after the sample events happened.
RECEIVED_AT = datetime(2024, 6, 3, 15, 0, tzinfo=UTC)


def read_payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


@pytest.fixture(scope="session")
def sample() -> Callable[[str], Any]:
    """A fresh copy of a sample payload, free to mutate."""
    return read_payload


@pytest.fixture(scope="session")
def received_at() -> datetime:
    return RECEIVED_AT
