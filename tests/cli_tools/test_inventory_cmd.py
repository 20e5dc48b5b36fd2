"""`aitrust inventory` from files: table, JSON and a CycloneDX 1.6 BOM that validates."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from aitrust.cli import main

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
PLATFORM = CORPUS / "scan" / "platform.yaml"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["inventory", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cyclonedx_output_validates(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "-f", str(PLATFORM), str(CORPUS / "ai"), "-o", "cyclonedx")
    assert code == 0
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(out) is None
    bom = json.loads(out)
    assert bom["metadata"]["component"]["name"] == "manifests"
    assert bom["metadata"]["tools"]["components"][0]["name"] == "aitrust"
    types = {c["type"] for c in bom["components"]}
    assert {"machine-learning-model", "data", "application", "container"} <= types
    assert {s["name"] for s in bom["services"]} == {"llama", "openai"}
    # Every run is a new BOM.
    _, again, _ = _run(capsys, "-f", str(PLATFORM), "-o", "cyclonedx")
    assert json.loads(again)["serialNumber"] != bom["serialNumber"]


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "-f", str(PLATFORM), "-o", "json")
    assert code == 0
    inv = json.loads(out)
    assert {w["name"] for w in inv["workloads"]} == {"llama-chat", "support-bot", "ollama-test"}
    assert [m["name"] for m in inv["models"]] == ["meta-llama/Llama-3.1-8B-Instruct"]
    assert {e["name"] for e in inv["modelEndpoints"]} == {"llama", "openai"}
    assert [d["name"] for d in inv["dataSources"]] == ["customer-db"]


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "-f", str(PLATFORM))
    assert code == 0
    assert "\x1b[" not in out
    row = next(line for line in out.splitlines() if line.startswith("Deployment/llm/ollama-test"))
    assert "- (shadow AI)" in row and "ollama/ollama:latest" in row
    assert "meta-llama/Llama-3.1-8B-Instruct" in out and "5f1d6a3c9b8e" in out  # short digest
    assert "api.openai.com" in out and "customer-db" in out


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PLATFORM.read_text()))
    code, out, _ = _run(capsys, "-f", "-", "-o", "json")
    assert code == 0 and len(json.loads(out)["aiWorkloads"]) == 2


def test_errors_and_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    code, out, err = _run(capsys, "-f", str(bad))
    assert code == 2 and out == "" and "bad.yaml: document 0" in err
    with pytest.raises(SystemExit) as exc:
        main(["inventory", "-o", "json"])  # neither -f nor --cluster
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["inventory", "-f", str(PLATFORM), "--cluster"])
