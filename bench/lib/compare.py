"""Targets and run-to-run comparison of benchmark metrics (pure).

A metric is ``{"value": float, "unit": str, "better": "lower" | "higher" | None}``; ``better``
None marks context (a count, a configured rate) that is recorded but never judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Better = Literal["lower", "higher"]
Verdict = Literal["better", "worse", "same", "new", "removed", "info"]
MARKERS: Mapping[Verdict, str] = {
    "better": "better  +",
    "worse": "WORSE   -",
    "same": "same    =",
    "new": "new",
    "removed": "removed",
    "info": "",
}


def metric(value: float, unit: str, better: Better | None) -> dict[str, Any]:
    return {"value": value, "unit": unit, "better": better}


@dataclass(frozen=True)
class Comparison:
    name: str
    old: float | None
    new: float | None
    unit: str
    ratio: float | None  # new / old
    verdict: Verdict


def judge(old: float, new: float, better: Better | None, tolerance: float = 0.05) -> Verdict:
    """Whether ``new`` improves on ``old``; within ``tolerance`` (relative) counts as the same."""
    if better is None:
        return "info"
    if old == new:
        return "same"
    if old == 0:
        up = new > 0
    else:
        ratio = new / old
        if abs(ratio - 1) <= tolerance:
            return "same"
        up = ratio > 1
    return "better" if up == (better == "higher") else "worse"


def compare_metrics(
    old: Mapping[str, Mapping[str, Any]],
    new: Mapping[str, Mapping[str, Any]],
    tolerance: float = 0.05,
) -> list[Comparison]:
    """Every metric of either run, in ``new``'s order then the removed ones; judged by ``new``'s direction."""
    rows: list[Comparison] = []
    for name, cur in new.items():
        value = float(cur["value"])
        unit = str(cur.get("unit", ""))
        prev = old.get(name)
        if prev is None:
            rows.append(Comparison(name, None, value, unit, None, "new"))
            continue
        before = float(prev["value"])
        ratio = value / before if before else None
        rows.append(
            Comparison(name, before, value, unit, ratio, judge(before, value, cur.get("better"), tolerance))
        )
    for name, prev in old.items():
        if name not in new:
            rows.append(
                Comparison(name, float(prev["value"]), None, str(prev.get("unit", "")), None, "removed")
            )
    return rows


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-2):
        return f"{value:.3g}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def format_comparison(rows: Iterable[Comparison]) -> list[str]:
    """One aligned line per metric: name, old, new, new/old and the verdict marker."""
    rows = list(rows)
    width = max((len(r.name) for r in rows), default=10)
    lines = [f"{'metric':<{width}}  {'previous':>12}  {'latest':>12}  {'new/old':>8}  verdict"]
    for r in rows:
        ratio = f"{r.ratio:.3f}" if r.ratio is not None else "-"
        lines.append(
            f"{r.name:<{width}}  {_num(r.old):>12}  {_num(r.new):>12}  {ratio:>8}  {MARKERS[r.verdict]}"
            + (f" ({r.unit})" if r.unit and r.verdict != "info" else "")
        )
    return lines


@dataclass(frozen=True)
class Target:
    metric: str
    op: Literal["<=", ">="]
    limit: float
    label: str


def evaluate_targets(
    targets: Iterable[Target], metrics: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Pass/fail per target; ``pass`` is None when the metric was not measured in this run."""
    out = []
    for t in targets:
        value = metrics.get(t.metric, {}).get("value")
        if value is None:
            ok: bool | None = None
        else:
            ok = float(value) <= t.limit if t.op == "<=" else float(value) >= t.limit
        out.append(
            {"metric": t.metric, "op": t.op, "limit": t.limit, "value": value, "pass": ok, "label": t.label}
        )
    return out
