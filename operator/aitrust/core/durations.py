"""Go-style duration strings of the API ("1h30m", "500ms", "1.5h") as ``timedelta``.

The grammar is ``DURATION_PATTERN`` of the API: one or more ``<number><unit>`` parts
with units ``ms``, ``s``, ``m`` and ``h``; parts add up ("1h1h" is two hours).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from aitrust.api.v1alpha1 import DURATION_PATTERN

__all__ = ["format_duration", "parse_duration"]

_WHOLE = re.compile(DURATION_PATTERN)
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_MICROS = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}
# timedelta stops at 999999999 days; anything longer is a typo, not a policy.
_MAX_MICROS = int(timedelta.max.total_seconds()) * 1_000_000


@lru_cache(maxsize=512)
def parse_duration(text: str) -> timedelta:
    """Parse ``text`` to a timedelta; raise ``ValueError`` when it does not match the API pattern.

    Decimal arithmetic keeps "0.1h" exact (360 s) instead of accumulating float error.
    """
    if not isinstance(text, str) or _WHOLE.fullmatch(text) is None:
        raise ValueError(f"invalid duration {text!r}: expected e.g. 30s, 5m, 1h30m, 500ms")
    total = Decimal(0)
    try:
        for number, unit in _PART.findall(text):
            total += Decimal(number) * _MICROS[unit]
    except InvalidOperation as err:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"invalid duration {text!r}") from err
    micros = int(total)
    if micros > _MAX_MICROS:
        raise ValueError(f"duration {text!r} is too long")
    return timedelta(microseconds=micros)


def format_duration(delta: timedelta) -> str:
    """Render a non-negative timedelta in the API's format, largest units first ("1h30m", "250ms")."""
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if micros < 0:
        raise ValueError("negative durations have no API representation")
    if micros == 0:
        return "0s"
    parts: list[str] = []
    hours, micros = divmod(micros, _MICROS["h"])
    minutes, micros = divmod(micros, _MICROS["m"])
    seconds, micros = divmod(micros, _MICROS["s"])
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if seconds:
        parts.append(f"{seconds}s")
    if micros:
        millis = Decimal(micros) / 1000
        parts.append(f"{millis.normalize():f}ms")
    return "".join(parts)
