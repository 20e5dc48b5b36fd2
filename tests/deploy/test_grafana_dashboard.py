"""deploy/grafana: the dashboard is valid JSON and its PromQL only uses the metric contract."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from aitrust.testing.testbin import find_binary
from tests.deploy.contract import DEPLOY, check_contract, read

DASHBOARD = DEPLOY / "grafana" / "aitrust-dashboard.json"
# Grafana's variables, replaced by values Prometheus accepts.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$namespace": ".*", "$workload": ".*"}


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _panels() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def _queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    queries = [(f"{p['title']}/{t['refId']}", t["expr"]) for p in _panels() for t in p["targets"]]
    for var in _dashboard()["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            inner = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
            assert inner, f"variable {var['name']}: unexpected query {query}"
            # As an aggregation, so the label it lists is checked against the contract too.
            queries.append((f"${var['name']}", f"count by ({inner.group(2)}) ({inner.group(1)})"))
    return queries


def _substitute(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def test_dashboard_is_valid_json_with_panels() -> None:
    dash = _dashboard()
    assert dash["uid"] == "aitrust-overview"
    assert dash["title"]
    panels = _panels()
    assert len(panels) >= 8
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24


@pytest.mark.parametrize(("where", "expr"), _queries(), ids=[w for w, _ in _queries()])
def test_queries_use_only_contract_metrics(where: str, expr: str) -> None:
    assert check_contract(expr) == [], where


@pytest.mark.integration
def test_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses every expression as a recording rule: the real PromQL parser.
    rules = [
        {"record": f"aitrust:dashboard:query{i}", "expr": _substitute(expr)}
        for i, (_, expr) in enumerate(_queries())
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        [find_binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout


@pytest.mark.integration
def test_promql_check_rejects_a_broken_query(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "r", "expr": "sum by (("}]}]})
    )
    proc = subprocess.run(
        [find_binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert proc.returncode != 0


def test_dashboard_covers_trust_tiers_signals_and_latency() -> None:
    used = {name for _, expr in _queries() for name in read(expr)[0]}
    for series in (
        "aitrust_trust_score",
        "aitrust_workload_tier",
        "aitrust_workloads",
        "aitrust_signals_total",
        "aitrust_enforcement_latency_seconds_bucket",
    ):
        assert series in used
    trust = next(p for p in _panels() if "aitrust_trust_score" in p["targets"][0]["expr"])
    assert "workload" in read(trust["targets"][0]["expr"])[1]
    assert trust["type"] == "timeseries"
    latency = [t["expr"] for p in _panels() for t in p["targets"] if "enforcement_latency" in t["expr"]]
    quantiles = {m for e in latency for m in re.findall(r"histogram_quantile\(([0-9.]+),", e)}
    assert {"0.5", "0.99"} <= quantiles
    signals = [t["expr"] for p in _panels() for t in p["targets"] if "aitrust_signals_total" in t["expr"]]
    assert all("rate(aitrust_signals_total" in e for e in signals)
