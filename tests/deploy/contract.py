"""The metric contract the alerts and dashboards rely on, and a small PromQL reader.

The reader is lexical, not a parser: it finds the series names and label names an expression
uses. Syntax is checked separately with the real promtool.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

# name -> labels the operator exports on it.
METRICS: dict[str, frozenset[str]] = {
    "aitrust_trust_score": frozenset({"namespace", "workload"}),
    "aitrust_workload_tier": frozenset({"namespace", "workload", "tier"}),
    "aitrust_workloads": frozenset({"tier", "mode"}),
    "aitrust_signals_total": frozenset({"source", "result"}),
    "aitrust_enforcement_latency_seconds": frozenset(),
    "aitrust_signal_commit_seconds": frozenset(),
    "aitrust_signal_backlog": frozenset(),
    "aitrust_opa_sync_errors_total": frozenset({"target"}),
    "aitrust_reconcile_errors_total": frozenset({"kind"}),
    "aitrust_shadow_ai_workloads": frozenset({"namespace"}),
    "aitrust_build_info": frozenset({"version"}),
}
HISTOGRAMS = {"aitrust_enforcement_latency_seconds", "aitrust_signal_commit_seconds"}
SIGNAL_RESULTS = {"accepted", "unmatched", "rejected", "duplicate"}
TIERS = {"trusted", "restricted", "quarantined"}
MODES = {"audit", "enforce"}
LABEL_VALUES = {"tier": TIERS, "result": SIGNAL_RESULTS, "mode": MODES}


def series_names() -> dict[str, frozenset[str]]:
    """Every series name a scrape can contain (histograms expand to _bucket/_sum/_count)."""
    names = dict(METRICS)
    for hist in HISTOGRAMS:
        labels = METRICS[hist]
        del names[hist]
        names[f"{hist}_bucket"] = labels | {"le"}
        names[f"{hist}_sum"] = labels
        names[f"{hist}_count"] = labels
    return names


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{([^{}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_IDENT = re.compile(r"(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(?!\s*\()")
_EXACT = re.compile(r'\b(tier|result|mode)\s*=\s*"([^"]*)"')
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
_KEYWORDS |= {"group_left", "group_right", "inf", "nan", "atan2", "start", "end"}


def read(expr: str) -> tuple[set[str], set[str]]:
    """(series names, label names) used by a PromQL expression."""
    labels: set[str] = set()
    text = _STRING.sub('""', expr)
    for block in _MATCHERS.findall(text):
        labels.update(_MATCHER_LABEL.findall(block))
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    for _, names in _GROUPING.findall(text):
        labels.update(n.strip() for n in names.split(",") if n.strip())
    text = _GROUPING.sub(" ", text)
    series = {name for name in _IDENT.findall(text) if name.lower() not in _KEYWORDS}
    return series, labels


def check_contract(expr: str) -> list[str]:
    """Problems with an expression: unknown series, or labels the contract does not export."""
    known = series_names()
    series, labels = read(expr)
    problems = [f"series {name!r} is not in the metric contract" for name in sorted(series - set(known))]
    if not series:
        problems.append("uses no contract series")
    allowed = set().union(*(known[s] for s in series if s in known)) if series else set()
    problems += [f"label {label!r} is not exported by {sorted(series)}" for label in sorted(labels - allowed)]
    for label, value in _EXACT.findall(expr):
        if value not in LABEL_VALUES[label]:
            problems.append(f"{label}={value!r} is not one of {sorted(LABEL_VALUES[label])}")
    return problems
