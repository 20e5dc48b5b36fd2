"""The e2e harness: a data plane whose packets are judged by a real NetworkPolicy enforcer."""

from __future__ import annotations

TIMINGS: list[str] = []


def record_timing(line: str) -> None:
    """Print a measured figure now and again in the terminal summary, so it survives `-q` runs."""
    print(line)
    TIMINGS.append(line)
