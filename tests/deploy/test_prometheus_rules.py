"""deploy/prometheus: the alert rules pass promtool's checks and their own unit tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from aitrust.testing.testbin import find_binary
from tests.deploy.contract import DEPLOY, check_contract, read

pytestmark = pytest.mark.integration

PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "aitrust-rules.yaml"
RULE_TESTS = PROMETHEUS / "aitrust-rules.test.yaml"
ALERTS = {
    "AITrustWorkloadQuarantined",
    "AITrustScoreLow",
    "AITrustSignalsRejected",
    "AITrustOPASyncFailing",
    "AITrustEnforcementSlow",
    "AITrustOperatorDown",
}


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_binary("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def _rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_check_rules() -> None:
    proc = promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout


def test_promtool_unit_tests_pass() -> None:
    proc = promtool("test", "rules", str(RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_is_tested_firing_and_silent() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == [RULES.name]
    fires: set[str] = set()
    silent: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    assert fires == ALERTS
    assert silent == ALERTS


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("< 60", "< 40"),
        ("> 0.05", "> 0.5"),
        ('tier="quarantined"}) == 1\n', 'tier="restricted"}) == 1\n'),
        ("for: 5m", "for: 30m"),
        ("absent(aitrust_build_info)", 'absent(aitrust_build_info{version="0.1.0"}) and absent(up)'),
    ],
)
def test_unit_tests_catch_a_changed_rule(tmp_path: Path, old: str, new: str) -> None:
    # A rule change that alters behaviour must fail the unit tests, or they test nothing.
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    text = RULES.read_text()
    assert old in text
    (tmp_path / RULES.name).write_text(text.replace(old, new, 1))
    assert promtool("check", "rules", RULES.name, cwd=tmp_path).returncode == 0
    proc = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert proc.returncode != 0, f"unit tests still pass with {new!r}"


def test_alerts_are_documented() -> None:
    rules = _rules()
    assert {r["alert"] for r in rules} == ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        annotations = rule["annotations"]
        for key in ("summary", "description", "runbook"):
            assert len(annotations.get(key, "")) > 20, f"{rule['alert']} lacks {key}"
        assert "for" in rule


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["alert"])
def test_rules_use_only_contract_metrics(rule: dict[str, Any]) -> None:
    assert check_contract(rule["expr"]) == []


def test_contract_reader_flags_foreign_metrics() -> None:
    assert check_contract("up == 0") == ["series 'up' is not in the metric contract"]
    assert check_contract('sum by (pod) (aitrust_trust_score{tier="trusted"})') == [
        "label 'pod' is not exported by ['aitrust_trust_score']",
        "label 'tier' is not exported by ['aitrust_trust_score']",
    ]
    assert check_contract('aitrust_signals_total{result="dropped"}') == [
        "result='dropped' is not one of ['accepted', 'duplicate', 'rejected', 'unmatched']"
    ]
    series, labels = read('histogram_quantile(0.9, sum by (le) (rate(x_bucket{a="b"}[5m]))) offset 1h')
    assert series == {"x_bucket"}
    assert labels == {"le", "a"}
