"""`make demo`'s script runs every step against real components and cleans up after itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from aitrust.testing.testbin import find_binary
from tests.conftest import ROOT

STAMP = re.compile(r"^\[\d\d:\d\d:\d\d\] ")


def _demo(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aitrust.demo", *args],
        env={**os.environ, "AITRUST_DEMO_DIR": str(state)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _between(lines: list[str], start: str, end: str) -> list[str]:
    first = next(i for i, line in enumerate(lines) if start in line)
    last = next(i for i, line in enumerate(lines) if end in line and i > first)
    return lines[first + 1 : last]


def _leftovers(state: Path) -> str:
    return subprocess.run(["pgrep", "-f", str(state)], capture_output=True, text=True).stdout.strip()


def test_demo_runs_every_step_and_tears_down(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    proc = _demo(state, "up", "--teardown")
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    for step in ("1/6", "2/6", "3/6", "4/6", "5/6", "6/6"):
        assert step in out
    assert "llama-server: tier quarantined" in out
    assert "OPA llama-server -> DataSource training-data: allow=True -> allow=False" in out
    assert "egress rules -> 1" in out
    assert "bedrock-app: tier quarantined" in out and "allow=True -> allow=False" in out
    assert "ai-demo/Deployment/ollama-sidecar-experiment: inference" in out
    assert "support-agent    trusted" in out  # untouched workloads keep their trust
    assert "demo stopped" in out
    assert "cluster left running" not in out  # --teardown: nothing is left to point at
    assert not state.exists()
    assert _leftovers(state) == "", "the demo left processes behind"


def test_demo_left_running_prints_its_kubeconfig_and_demo_down_stops_it(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    try:
        proc = _demo(state, "up")
        out = proc.stdout
        assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
        lines = out.splitlines()

        # Every status line carries a timestamp; the slow steps report progress as they go.
        status = [line for line in lines if STAMP.match(line)]
        for step in ("1/6", "2/6", "3/6", "4/6", "5/6", "6/6"):
            assert any(step in line for line in status), step
        starting = [line for line in _between(lines, "1/6", "2/6") if STAMP.match(line)]
        assert any("control plane up" in line for line in starting)
        assert any("CRDs installed" in line for line in starting)
        assert any("waiting for it to sync" in line for line in starting)
        scoring = _between(lines, "2/6", "3/6")
        assert any(STAMP.match(line) and "5/5 AIWorkloads scored" in line for line in scoring)

        # It stays up, and says how to reach it and how to stop it.
        [export] = [line for line in status if "export KUBECONFIG=" in line]
        kubeconfig = Path(export.split("export KUBECONFIG=", 1)[1].strip())
        assert kubeconfig.is_file() and state in kubeconfig.parents
        assert any("make demo-down" in line for line in status)
        assert "demo stopped" not in out
        kubectl = [find_binary("kubectl"), f"--kubeconfig={kubeconfig}"]
        listed = subprocess.run(
            [*kubectl, "get", "aiw", "-n", "ai-demo", "-o", "name"], capture_output=True, text=True
        )
        assert listed.returncode == 0, listed.stderr
        assert len(listed.stdout.split()) == 5
        assert _leftovers(state) != ""
    finally:
        # What `make demo-down` runs (checked below).
        down = _demo(state, "down")
    assert down.returncode == 0 and "demo stopped" in down.stdout, down.stdout + down.stderr
    assert not state.exists()
    assert _leftovers(state) == "", "demo down left processes behind"
    gone = subprocess.run([*kubectl, "get", "ns", "--request-timeout=5s"], capture_output=True, text=True)
    assert gone.returncode != 0  # the API server is gone
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ndemo-down:", 1)[1].split("\n\n", 1)[0]
    assert "-m aitrust.demo down" in recipe


def test_demo_down_without_a_demo_is_harmless(tmp_path: Path) -> None:
    proc = _demo(tmp_path / "none", "down")
    assert proc.returncode == 0 and "no demo is running" in proc.stdout
