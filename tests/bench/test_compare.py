"""Targets and run-to-run comparison of `make bench` results (bench/lib/compare.py)."""

from __future__ import annotations

from bench.lib.compare import Target, compare_metrics, evaluate_targets, format_comparison, judge, metric
from hypothesis import given, settings
from hypothesis import strategies as st

positive = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False)


def test_lower_is_better_latency() -> None:
    assert judge(200.0, 150.0, "lower") == "better"
    assert judge(200.0, 260.0, "lower") == "worse"
    assert judge(200.0, 204.0, "lower") == "same"  # within 5 %


def test_higher_is_better_throughput() -> None:
    assert judge(1000.0, 1500.0, "higher") == "better"
    assert judge(1000.0, 700.0, "higher") == "worse"


def test_context_metrics_are_never_judged() -> None:
    assert judge(2.0, 64.0, None) == "info"


def test_from_zero() -> None:
    assert judge(0.0, 0.0, "lower") == "same"
    assert judge(0.0, 3.0, "lower") == "worse"  # errors appeared
    assert judge(0.0, 3.0, "higher") == "better"


@settings(max_examples=200)
@given(positive, positive)
def test_swapping_runs_swaps_the_verdict(old: float, new: float) -> None:
    forward, backward = judge(old, new, "lower"), judge(new, old, "lower")
    if forward == "better":
        assert backward in ("worse", "same")
    if forward == "worse":
        assert backward in ("better", "same")
    assert judge(old, new, "lower") != judge(old, new, "higher") or forward == "same"


def test_compare_reports_ratio_new_and_removed_metrics() -> None:
    old = {"a.p99_ms": metric(200.0, "ms", "lower"), "gone": metric(1.0, "s", "lower")}
    new = {"a.p99_ms": metric(100.0, "ms", "lower"), "b.per_sec": metric(10.0, "signals/s", "higher")}
    rows = {r.name: r for r in compare_metrics(old, new)}
    assert rows["a.p99_ms"].ratio == 0.5 and rows["a.p99_ms"].verdict == "better"
    assert rows["b.per_sec"].verdict == "new" and rows["b.per_sec"].old is None
    assert rows["gone"].verdict == "removed" and rows["gone"].new is None
    assert [r.name for r in compare_metrics(old, new)] == ["a.p99_ms", "b.per_sec", "gone"]


def test_compare_uses_the_new_runs_direction_and_tolerance() -> None:
    old = {"x": metric(100.0, "ms", "lower")}
    new = {"x": metric(108.0, "ms", "lower")}
    assert compare_metrics(old, new)[0].verdict == "worse"
    assert compare_metrics(old, new, tolerance=0.10)[0].verdict == "same"


def test_formatted_lines_carry_the_marker_and_ratio() -> None:
    rows = compare_metrics({"p99": metric(300.0, "ms", "lower")}, {"p99": metric(150.0, "ms", "lower")})
    header, line = format_comparison(rows)
    assert "new/old" in header
    assert "0.500" in line and "better" in line and "300" in line and "150" in line
    worse = format_comparison(
        compare_metrics({"r": metric(10.0, "/s", "higher")}, {"r": metric(5.0, "/s", "higher")})
    )
    assert "WORSE" in worse[1]


def test_targets_pass_fail_and_unmeasured() -> None:
    targets = [
        Target("lat", "<=", 250, "latency"),
        Target("thr", ">=", 2000, "throughput"),
        Target("missing", "<=", 1, "not run"),
    ]
    metrics = {"lat": metric(250.0, "ms", "lower"), "thr": metric(1999.0, "/s", "higher")}
    out = {t["metric"]: t for t in evaluate_targets(targets, metrics)}
    assert out["lat"]["pass"] is True  # the limit itself passes
    assert out["thr"]["pass"] is False
    assert out["missing"]["pass"] is None and out["missing"]["value"] is None
