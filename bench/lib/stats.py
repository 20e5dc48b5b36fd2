"""Summary statistics of latency samples (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ascending ``ordered`` by linear interpolation (numpy's default)."""
    if not ordered:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} outside [0, 1]")
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarise(samples: Iterable[float], prefix: str = "", suffix: str = "") -> dict[str, float]:
    """n, mean, min, p50, p95, p99 and max of ``samples``, keys as ``<prefix><stat><suffix>``.

    ``n`` is a count and keeps no suffix (a unit makes no sense on it).
    """
    ordered = sorted(samples)
    if not ordered:
        return {f"{prefix}n": 0}
    out = {f"{prefix}n": float(len(ordered))}
    stats = {"mean": math.fsum(ordered) / len(ordered), "min": ordered[0], "max": ordered[-1]}
    stats.update({name: percentile(ordered, q) for name, q in QUANTILES.items()})
    for name in ("mean", "min", "p50", "p95", "p99", "max"):
        out[f"{prefix}{name}{suffix}"] = stats[name]
    return out


def rate(count: int, seconds: float) -> float:
    """Events per second; 0 for an empty or instantaneous window."""
    return count / seconds if seconds > 0 else 0.0


def cdf(samples: Iterable[float]) -> tuple[list[float], list[float]]:
    """Points of the empirical CDF: ascending values and the fraction of samples at or below each."""
    ordered = sorted(samples)
    n = len(ordered)
    return ordered, [(i + 1) / n for i in range(n)]


def thin(samples: Iterable[float], points: int = 1000) -> list[float]:
    """At most ``points`` ascending values with the same distribution (evenly spaced quantiles)."""
    ordered = sorted(samples)
    if len(ordered) <= points:
        return ordered
    return [percentile(ordered, i / (points - 1)) for i in range(points)]
