"""Percentiles and summaries used by `make bench` (bench/lib/stats.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bench.lib.stats import cdf, percentile, rate, summarise, thin
from hypothesis import given, settings
from hypothesis import strategies as st

samples = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=300)


@settings(max_examples=200)
@given(samples, st.floats(min_value=0, max_value=1))
def test_percentile_matches_numpy_linear_interpolation(values: list[float], q: float) -> None:
    ordered = sorted(values)
    assert math.isclose(
        percentile(ordered, q), float(np.percentile(ordered, q * 100)), rel_tol=1e-9, abs_tol=1e-9
    )


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([10.0, 20.0], 0.5) == 15.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.99) == pytest.approx(4.96)
    assert percentile([7.0], 0.99) == 7.0


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 0.5)
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


@settings(max_examples=200)
@given(samples)
def test_summary_is_ordered_and_bounded(values: list[float]) -> None:
    s = summarise(values, prefix="x.", suffix="_ms")
    assert s["x.n"] == len(values)
    assert s["x.min_ms"] <= s["x.p50_ms"] <= s["x.p95_ms"] <= s["x.p99_ms"] <= s["x.max_ms"]
    assert s["x.min_ms"] == min(values) and s["x.max_ms"] == max(values)
    assert s["x.min_ms"] - 1e-6 <= s["x.mean_ms"] <= s["x.max_ms"] + 1e-6


def test_summary_of_nothing_is_a_zero_count() -> None:
    assert summarise([]) == {"n": 0}


def test_p99_of_200_trials_is_driven_by_the_two_slowest() -> None:
    trials = [100.0] * 198 + [900.0, 1000.0]
    s = summarise(trials)
    assert s["p50"] == 100.0
    assert 100.0 < s["p99"] < 1000.0


def test_rate_and_cdf() -> None:
    assert rate(500, 0.25) == 2000.0
    assert rate(10, 0.0) == 0.0
    xs, ys = cdf([3.0, 1.0, 2.0, 2.0])
    assert xs == [1.0, 2.0, 2.0, 3.0]
    assert ys == [0.25, 0.5, 0.75, 1.0]


@settings(max_examples=100)
@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=3000))
def test_thinning_keeps_the_distribution(values: list[float]) -> None:
    thinned = thin(values, points=100)
    assert len(thinned) == min(len(values), 100)
    assert thinned == sorted(thinned)
    assert thinned[0] == min(values) and thinned[-1] == max(values)
    ordered = sorted(values)
    assert math.isclose(
        percentile(thinned, 0.5), percentile(ordered, 0.5), rel_tol=0.05, abs_tol=max(values) * 0.02
    )
