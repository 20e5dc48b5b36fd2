"""deploy/argocd: the AIWorkload health check, run by the real Lua interpreter."""

from __future__ import annotations

import math
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from aitrust.api.v1alpha1 import AIWorkloadStatus, QuarantineStatus, Tier
from aitrust.core.conditions import build_condition
from aitrust.core.objstatus import build_object_status
from aitrust.testing.testbin import find_binary
from tests.deploy.contract import DEPLOY

pytestmark = pytest.mark.integration

SCRIPT = DEPLOY / "argocd" / "aitrust-health.lua"
SNIPPET = DEPLOY / "argocd" / "argocd-cm-snippet.yaml"
HEALTH_KEYS = {
    f"resource.customizations.health.aitrust.dev_{kind}"
    for kind in ("AIWorkload", "TrustPolicy", "ModelEndpoint", "DataSource")
}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DEGRADED_REASONS = ["InvalidSpec", "InvalidPolicy", "TargetNotFound", "EnforcementFailed"]


def _lua_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\{ord(ch):03d}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def to_lua(value: Any) -> str:
    """A Lua table constructor for JSON-like data. Numbers become floats, as in Argo CD's
    gopher-lua, where JSON numbers decode to float64."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        number = float(value)
        assert math.isfinite(number)
        return repr(number)
    if isinstance(value, str):
        return _lua_string(value)
    if isinstance(value, list | tuple):
        return "{" + ", ".join(to_lua(v) for v in value) + "}"
    if isinstance(value, dict):
        items = [f"[{_lua_string(str(k))}] = {to_lua(v)}" for k, v in value.items() if v is not None]
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"cannot encode {type(value).__name__}")


def health(obj: dict[str, Any], tmp_path: Path) -> tuple[str, str]:
    """(status, message) that Argo CD would show for `obj`."""
    harness = tmp_path / "harness.lua"
    harness.write_text(
        f"obj = {to_lua(obj)}\n"
        f"local hs = dofile({_lua_string(str(SCRIPT))})\n"
        'io.write(hs.status, "\\n", hs.message or "", "\\n")\n'
    )
    proc = subprocess.run([find_binary("lua5.4"), str(harness)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    status, message = proc.stdout.split("\n")[:2]
    return status, message


def workload(status: AIWorkloadStatus | None, generation: int = 3) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "vllm-chat", "namespace": "ml", "generation": generation},
        "spec": {"selector": {"matchLabels": {"app": "vllm"}}},
    }
    if status is not None:
        obj["status"] = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    return obj


def status(
    *,
    ready: bool | None,
    reason: str = "Reconciled",
    message: str = "scored",
    tier: Tier | None = Tier.TRUSTED,
    score: int | None = 92,
    observed: int | None = 3,
    quarantine: QuarantineStatus | None = None,
) -> AIWorkloadStatus:
    conditions = [] if ready is None else [build_condition("Ready", ready, reason, message, observed, NOW)]
    return AIWorkloadStatus(
        trust_score=score,
        tier=tier,
        conditions=conditions,
        observed_generation=observed,
        quarantine=quarantine,
    )


def test_lua_encoder_round_trips_through_lua(tmp_path: Path) -> None:
    value = {"a": [1, 2.5, 'x"y\\z\n'], "b": {"c": True, "d": None}, "é": "ü"}
    harness = tmp_path / "t.lua"
    harness.write_text(
        f"local v = {to_lua(value)}\n"
        'io.write(#v.a, "|", v.a[2], "|", v.a[3], "|", tostring(v.b.c), "|", tostring(v.b.d), "|", v["é"])\n'
    )
    proc = subprocess.run([find_binary("lua5.4"), str(harness)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '3|2.5|x"y\\z\n|true|nil|ü'


def test_ready_true_is_healthy(tmp_path: Path) -> None:
    assert health(workload(status(ready=True)), tmp_path) == ("Healthy", "Tier trusted, trust 92")


def test_no_matching_pods_is_healthy(tmp_path: Path) -> None:
    obj = workload(status(ready=True, reason="NoMatchingPods", tier=Tier.RESTRICTED, score=61))
    assert health(obj, tmp_path) == ("Healthy", "Tier restricted, trust 61")


def test_no_status_is_progressing(tmp_path: Path) -> None:
    state, message = health(workload(None), tmp_path)
    assert state == "Progressing"
    assert "reconcile" in message


def test_stale_generation_is_progressing(tmp_path: Path) -> None:
    # Even a failure or a quarantine reported for an older spec says nothing about this one.
    for stale in (
        status(ready=True, observed=2),
        status(ready=False, reason="InvalidSpec", observed=2),
        status(ready=True, tier=Tier.QUARANTINED, observed=2),
    ):
        assert health(workload(stale, generation=3), tmp_path)[0] == "Progressing"


def test_missing_observed_generation_is_progressing(tmp_path: Path) -> None:
    assert health(workload(status(ready=True, observed=None)), tmp_path)[0] == "Progressing"


def test_quarantined_is_degraded_with_the_reason(tmp_path: Path) -> None:
    hold = QuarantineStatus(active=True, reason="shell-in-model-server", since="2026-01-02T03:00:00Z")
    obj = workload(status(ready=True, tier=Tier.QUARANTINED, score=12, quarantine=hold))
    assert health(obj, tmp_path) == ("Degraded", "Quarantined (trust 12): shell-in-model-server")


def test_quarantined_without_hold_uses_the_ready_message(tmp_path: Path) -> None:
    obj = workload(status(ready=True, tier=Tier.QUARANTINED, score=31, message="score 31 below 50"))
    assert health(obj, tmp_path) == ("Degraded", "Quarantined (trust 31): score 31 below 50")


@pytest.mark.parametrize("reason", DEGRADED_REASONS)
def test_ready_false_for_a_user_error_is_degraded(tmp_path: Path, reason: str) -> None:
    obj = workload(
        status(ready=False, reason=reason, message="spec.selector: field required", tier=None, score=None)
    )
    assert health(obj, tmp_path) == ("Degraded", f"{reason}: spec.selector: field required")


def test_ready_false_for_another_reason_is_progressing(tmp_path: Path) -> None:
    obj = workload(status(ready=False, reason="Scoring", message="waiting for pods", tier=None, score=None))
    assert health(obj, tmp_path) == ("Progressing", "Scoring: waiting for pods")


def test_no_ready_condition_is_progressing(tmp_path: Path) -> None:
    assert health(workload(status(ready=None)), tmp_path) == (
        "Progressing",
        "Waiting for the Ready condition",
    )


def test_snippet_embeds_the_script_verbatim() -> None:
    snippet = yaml.safe_load(SNIPPET.read_text())
    assert snippet["kind"] == "ConfigMap"
    assert snippet["metadata"] == snippet["metadata"] | {"name": "argocd-cm", "namespace": "argocd"}
    assert set(snippet["data"]) == HEALTH_KEYS
    for key in HEALTH_KEYS:
        assert snippet["data"][key] == SCRIPT.read_text()


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([], ("Healthy", "Accepted: valid")),
        (
            [{"name": "broken", "match": {"rule": "(x"}, "points": 10}],
            ("Degraded", "InvalidPolicy: signals.rules[0] (broken): match.rule"),
        ),
    ],
)
def test_a_trust_policys_own_status_is_read_the_same_way(
    tmp_path: Path, rules: list[dict[str, Any]], expected: tuple[str, str]
) -> None:
    obj: dict[str, Any] = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "TrustPolicy",
        "metadata": {"name": "default", "namespace": "ml", "generation": 2},
        "spec": {"signals": {"rules": rules}},
    }
    obj["status"] = build_object_status("TrustPolicy", obj, NOW)
    state, message = health(obj, tmp_path)
    assert (state, message[: len(expected[1])]) == expected
