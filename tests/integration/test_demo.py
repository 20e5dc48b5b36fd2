"""`make demo`'s script runs every step against real components and cleans up after itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_every_step_and_tears_down(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "aitrust.demo", "up", "--teardown"],
        env={**os.environ, "AITRUST_DEMO_DIR": str(state)},
        capture_output=True,
        text=True,
        timeout=600,
    )
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
    assert not state.exists()
    leftovers = subprocess.run(["pgrep", "-f", str(state)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "the demo left processes behind"
