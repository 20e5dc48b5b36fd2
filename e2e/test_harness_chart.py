"""The cluster modes install the operator with the chart: the flags each scenario passes must map
onto values the real chart accepts and renders into the same `aitrust run` flags."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from aitrust.testing.testbin import find_binary
from e2e.harness.chart import CHART, RELEASE, TOKENS_SECRET, build_chart_values, build_token_secret

IMAGE = "registry.example/aitrust-operator:e2e-abc"
SCENARIO_FLAGS = (
    "--signals-port=41234",
    "--signals-host=127.0.0.1",
    "--signals-token-secret=e2e-ns/signal-tokens",
    "--resync-seconds=1",
    "--opa-url=http://10.244.0.7:8181",
)


def render(values: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    values_file = tmp_path / "values.json"
    values_file.write_text(json.dumps(values))
    proc = subprocess.run(
        [
            find_binary("helm"),
            "template",
            RELEASE,
            str(CHART),
            "--namespace=aitrust-e2e-system",
            "-f",
            str(values_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_scenario_flags_become_chart_values_the_chart_renders_back(tmp_path: Path) -> None:
    plan = build_chart_values(SCENARIO_FLAGS, IMAGE, "Never", "e2e-ns")
    assert plan.local_signal_port == 41234
    assert plan.token_secret == ("e2e-ns", "signal-tokens")

    docs = render(plan.values, tmp_path)
    container = operator_container(docs)
    args = container["args"]
    assert container["image"] == IMAGE and container["imagePullPolicy"] == "Never"
    assert "--opa-url=http://10.244.0.7:8181" in args
    assert "--resync-seconds=1" in args
    assert "--signals-token-file=/etc/aitrust/signals-auth/tokens" in args
    assert not any(a.startswith("--signals-tls") for a in args), "the port-forward speaks plain HTTP"
    # Only the test's namespace is watched: a RoleBinding there, no cluster-wide one.
    assert "--namespace=e2e-ns" in args
    bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert any(d["kind"] == "RoleBinding" and d["metadata"]["namespace"] == "e2e-ns" for d in bindings)
    kinds = {d["kind"] for d in docs}
    assert "CustomResourceDefinition" not in kinds and "TrustPolicy" not in kinds
    secret_volume = next(
        v
        for v in docs[[d["kind"] for d in docs].index("Deployment")]["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "signals-auth"
    )
    assert secret_volume["secret"]["secretName"] == TOKENS_SECRET


def test_without_signals_the_chart_serves_none(tmp_path: Path) -> None:
    plan = build_chart_values(("--opa-url=http://10.244.0.9:8181",), IMAGE, "IfNotPresent", "e2e-ns")
    assert plan.local_signal_port is None and plan.token_secret is None
    args = operator_container(render(plan.values, tmp_path))["args"]
    assert "--signals-port=0" in args


@pytest.mark.parametrize(
    ("flags", "image", "message"),
    [
        (("--signals-port=1",), IMAGE, "go together"),
        ((), "aitrust-operator", "explicit tag"),
        ((), "localhost:5000/aitrust-operator", "explicit tag"),
    ],
)
def test_flags_the_chart_cannot_honour_fail_loudly(flags: tuple[str, ...], image: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_chart_values(flags, image, "Never", "e2e-ns")


def test_token_secret_holds_every_caller_token_one_per_line() -> None:
    source = {
        "data": {"falco": base64.b64encode(b"t" * 32).decode(), "cloud": base64.b64encode(b"u" * 32).decode()}
    }
    secret = build_token_secret(source)
    assert secret["metadata"]["name"] == TOKENS_SECRET
    assert base64.b64decode(secret["data"]["tokens"]).decode().splitlines() == ["t" * 32, "u" * 32]
