"""The shipped Falco rules produce events that aitrust can map and score."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from aitrust.api.v1alpha1 import TrustPolicySpec
from aitrust.core.parsers import PARSERS
from aitrust.core.rules import score_signal
from tests.conftest import ROOT

RULES = yaml.safe_load((ROOT / "deploy/falco/aitrust-ai-rules.yaml").read_text())
FALCO_RULES = [r for r in RULES if "rule" in r]
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def test_rules_file_is_well_formed() -> None:
    assert len(FALCO_RULES) >= 5
    lists = {r["list"] for r in RULES if "list" in r}
    macros = {r["macro"] for r in RULES if "macro" in r}
    assert {"ai_model_server_images", "ai_package_managers"} <= lists
    assert "ai_model_server" in macros
    for rule in FALCO_RULES:
        assert {"rule", "desc", "condition", "output", "priority", "tags"} <= set(rule)
        assert rule["priority"] in {"CRITICAL", "ERROR", "WARNING"}
        assert "aitrust" in rule["tags"]
        assert "ai_model_server" in rule["condition"]


@pytest.mark.parametrize("rule", FALCO_RULES, ids=[r["rule"] for r in FALCO_RULES])
def test_events_map_to_pods_and_score(rule: dict[str, Any]) -> None:
    for field in ("k8s.ns.name=%k8s.ns.name", "k8s.pod.name=%k8s.pod.name", "container.id=%container.id"):
        assert field in " ".join(rule["output"].split())
    # What Falcosidekick would deliver for it.
    event = {
        "uuid": "7e8c1c2a-0000-4000-8000-000000000001",
        "output": rule["rule"],
        "priority": rule["priority"].capitalize(),
        "rule": rule["rule"],
        "time": "2026-11-01T00:00:00.000000000Z",
        "source": "syscall",
        "tags": rule["tags"],
        "output_fields": {"k8s.ns.name": "ml", "k8s.pod.name": "vllm-0", "container.id": "abcdef123456"},
    }
    result = PARSERS["falco"](event, NOW)
    assert not result.rejected
    signal = result.signals[0]
    assert (signal.target.namespace, signal.target.pod) == ("ml", "vllm-0")
    record = score_signal(signal, TrustPolicySpec(), NOW)
    assert record.points > 0
    if "Model file written" not in rule["rule"]:
        assert record.rule.startswith("AIT-R"), f"{rule['rule']} is not recognised by a built-in rule"
