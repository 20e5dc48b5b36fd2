"""`aitrust scan` end to end, in process: outputs, exit codes, stdin, policies, SARIF."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from aitrust.cli import main
from aitrust.cli_tools.scan_cmd import print_table, scan_paths
from aitrust.core.posture import CHECKS
from aitrust.core.scan import ScanReport

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
PLATFORM = CORPUS / "scan" / "platform.yaml"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BOX = re.compile(r"[─│┃━┏┓┗┛╭╮╰╯┼]")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["scan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _write(path: Path, objects: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return path


def _platform() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(PLATFORM.read_text()) if d]


def _without(objects: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["metadata"]["name"] != name]


# --- outputs ------------------------------------------------------------------------------------


def test_table_off_a_terminal_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, str(PLATFORM))
    assert code == 0
    assert not ANSI.search(out) and not BOX.search(out)
    assert all(line == line.rstrip() for line in out.splitlines())
    lines = out.splitlines()
    assert lines[0].startswith("4 workloads: 3 AI (1 not managed), 2 managed by 2 AIWorkloads")
    header = lines[1].split()
    assert header[:5] == ["WORKLOAD", "AI", "MANAGED", "SCORE", "TIER"]
    row = next(line for line in lines if line.startswith("Deployment/llm/ollama-test"))
    assert "inference" in row and " no " in row and "quarantined" in row
    assert "tests/corpus/scan/platform.yaml:" in row or "platform.yaml:" in row
    assert "NetworkPolicies the operator would write (4)" in out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _report() -> ScanReport:
    from datetime import UTC, datetime

    report, errors = scan_paths([str(PLATFORM)], datetime(2026, 5, 1, tzinfo=UTC))
    assert not errors
    return report


def test_table_on_a_terminal_has_colour_unless_no_color() -> None:
    coloured, plain = _Terminal(), _Terminal()
    print_table(_report(), coloured, no_color=False)
    print_table(_report(), plain, no_color=True)
    colours = re.compile(r"\x1b\[[0-9;]*3[1-7]m")  # foreground colours
    assert colours.search(coloured.getvalue())
    assert not colours.search(plain.getvalue())
    assert BOX.search(plain.getvalue())  # still a table, just without colour
    assert ANSI.sub("", coloured.getvalue()) == ANSI.sub("", plain.getvalue())


def test_json_output_follows_the_documented_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, str(PLATFORM), "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert {"workloads", "networkPolicies", "opaData", "summary"} <= set(doc)
    contract = Path(__file__).resolve().parents[2] / "docs" / "scan-json.md"
    text = contract.read_text()
    for w in doc["workloads"]:
        assert {
            "namespace",
            "name",
            "kind",
            "ai",
            "managed",
            "trustScore",
            "tier",
            "findings",
            "source",
        } <= set(w)
        assert set(w["ai"]) == {"isAI", "category", "confidence", "evidence"}
        assert w["ai"]["category"] in (None, "inference", "agent", "training", "notebook", "datastore")
        assert {"file", "line"} <= set(w["source"])
        for f in w["findings"]:
            assert {"id", "severity", "title", "points", "remediation", "references"} <= set(f)
        for key in w:
            assert f"`{key}" in text, f"{key} is not documented"
    for key in doc["summary"]:
        assert f"`{key}`" in text, f"summary.{key} is not documented"
    bot = next(w for w in doc["workloads"] if w["name"] == "support-bot")
    assert bot["managed"] is True and bot["ai"] == {**bot["ai"], "isAI": True, "category": "agent"}
    lines = PLATFORM.read_text().splitlines()
    assert lines[bot["source"]["line"] - 1] == "apiVersion: apps/v1"
    assert lines[bot["source"]["line"] - 2] == "---"


def test_sarif_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, str(PLATFORM), "-o", "sarif")
    assert code == 0
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    [run] = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [*CHECKS, "AIT-S001"]
    for rule in rules:
        assert rule["name"] and re.fullmatch(r"[A-Za-z0-9]+", rule["name"])
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"] and rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
    p001 = rules[0]
    assert CHECKS["AIT-P001"].remediation in p001["help"]["text"]
    assert p001["defaultConfiguration"]["level"] == "error"  # critical
    levels = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
    platform_lines = PLATFORM.read_text().splitlines()
    for result in run["results"]:
        rule = rules[result["ruleIndex"]]
        assert rule["id"] == result["ruleId"]
        if result["ruleId"] in CHECKS:
            assert result["level"] == levels[CHECKS[result["ruleId"]].severity.value]
        [location] = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"].endswith("corpus/scan/platform.yaml")
        assert platform_lines[physical["region"]["startLine"] - 1] == "apiVersion: apps/v1"
        assert result["message"]["text"]
    shadow = [r for r in run["results"] if r["ruleId"] == "AIT-S001"]
    assert len(shadow) == 1 and "ollama-test" in shadow[0]["message"]["text"]
    privileged = [r for r in run["results"] if r["ruleId"] == "AIT-P001"]
    assert len(privileged) == 1 and "ollama-test" in privileged[0]["message"]["text"]


# --- exit codes ---------------------------------------------------------------------------------


def test_fail_on(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, str(PLATFORM), "--fail-on", "quarantined")
    assert code == 1 and "Deployment/llm/ollama-test (quarantined)" in err
    clean = _write(tmp_path / "clean.yaml", _without(_platform(), "ollama-test"))
    assert _run(capsys, str(clean), "--fail-on", "quarantined")[0] == 0
    code, _, err = _run(capsys, str(clean), "--fail-on", "restricted")
    assert code == 1 and "support-bot" in err and "llama-chat" not in err  # llama-chat is trusted


def test_a_policy_file_changes_the_verdict(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text(
        "apiVersion: aitrust.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {name: ci}\n"
        "spec:\n  thresholds: {trusted: 20, restricted: 10}\n"
    )
    code, out, _ = _run(
        capsys, str(PLATFORM), "--policy", str(lenient), "--fail-on", "restricted", "-o", "json"
    )
    assert code == 0
    assert {w["policy"] for w in json.loads(out)["workloads"]} == {str(lenient)}
    bare = tmp_path / "bare.yaml"
    bare.write_text("thresholds: {trusted: 30, restricted: 10}\n")
    assert _run(capsys, str(PLATFORM), "--policy", str(bare), "--fail-on", "quarantined")[0] == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("kind: Pod\nmetadata: {name: a}\n---\nkind: Pod\n  metadata: [\n", ["document 1", "invalid YAML"]),
        (
            "apiVersion: aitrust.dev/v1alpha1\nkind: AIWorkload\nmetadata: {name: w}\n"
            "spec: {kind: oracle, selector: {matchLabels: {a: b}}}\n",
            ["document 0 (line 1)", "AIWorkload default/w", "spec.kind"],
        ),
    ],
    ids=["yaml", "schema"],
)
def test_unreadable_input_exits_2_with_file_and_document(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, expected: list[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    code, out, err = _run(capsys, str(PLATFORM), str(bad))
    assert code == 2 and out == ""
    assert "bad.yaml" in err and all(e in err for e in expected), err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert _run(capsys, str(tmp_path / "nope.yaml"))[0] == 2
    bad_policy = tmp_path / "policy.yaml"
    bad_policy.write_text("kind: TrustPolicy\nmetadata: {name: x}\nspec: {hysteresis: 99}\n")
    code, _, err = _run(capsys, str(PLATFORM), "--policy", str(bad_policy))
    assert code == 2 and "hysteresis" in err
    with pytest.raises(SystemExit) as exc:
        main(["scan", str(PLATFORM), "-o", "xml"])
    assert exc.value.code == 2


# --- inputs -------------------------------------------------------------------------------------


def test_helm_output_on_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = "".join(
        f"---\n# Source: platform/templates/{o['kind'].lower()}-{o['metadata']['name']}.yaml\n"
        + yaml.safe_dump(o, sort_keys=False)
        for o in _platform()
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(rendered))
    code, out, _ = _run(capsys, "-", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["summary"]["workloads"] == 4 and doc["summary"]["networkPolicies"] == 4
    lines = rendered.splitlines()
    for w in doc["workloads"]:
        assert w["source"]["file"] == "stdin"
        assert lines[w["source"]["line"] - 2].startswith("# Source: platform/templates/")


def test_directories_lists_and_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    objects = _platform()
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    rest = [o for o in objects if o["kind"] != "Deployment"]
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "list.json").write_text(
        json.dumps({"apiVersion": "v1", "kind": "List", "items": deployments})
    )
    _write(tmp_path / "rest.yml", rest)
    code, out, _ = _run(capsys, str(tmp_path), "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert sorted(w["name"] for w in doc["workloads"]) == sorted(d["metadata"]["name"] for d in deployments)
    assert {w["source"]["file"].rsplit("/", 1)[-1] for w in doc["workloads"]} == {"list.json"}
    assert doc["summary"]["managed"] == 2


def test_the_whole_corpus_scans(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, str(CORPUS), "-o", "json")
    assert code == 0
    doc = json.loads(out)
    ai_files = {str(p.relative_to(CORPUS.parents[1]).as_posix()) for p in (CORPUS / "ai").rglob("*.yaml")}
    for w in doc["workloads"]:
        if any(w["source"]["file"].endswith(f) for f in ai_files):
            assert w["ai"]["isAI"], w["name"]
    shadow = [w for w in doc["workloads"] if w["ai"]["isAI"] and not w["managed"]]
    assert doc["summary"]["shadowAI"] == len(shadow) > 40


def _document_starts(path: Path) -> set[int]:
    """1-based lines where a YAML document's content begins (after `---`, comments, blanks)."""
    starts, expecting = set(), True
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("---"):
            expecting = True
        elif expecting and stripped and not stripped.startswith("#"):
            starts.add(number)
            expecting = False
    return starts


def test_sarif_over_the_whole_corpus_locates_every_result(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, str(CORPUS), "-o", "sarif")
    assert code == 0
    [run] = json.loads(out)["runs"]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids)) and set(CHECKS) | {"AIT-S001"} == set(ids)
    for rule in rules:
        assert re.fullmatch(r"AIT-[PS][0-9]{3}", rule["id"])
        assert rule["help"]["text"].startswith("Remediation:") and rule["help"]["markdown"]
    by_file: dict[str, set[str]] = {}
    root = Path.cwd()
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        [location] = result["locations"]
        physical = location["physicalLocation"]
        uri = physical["artifactLocation"]["uri"]
        path = Path(uri) if uri.startswith("/") else root / uri
        assert path.is_file() and CORPUS in path.resolve().parents, uri
        assert physical["region"]["startLine"] in _document_starts(path), (uri, physical["region"])
        by_file.setdefault(path.resolve().relative_to(CORPUS).as_posix(), set()).add(result["ruleId"])
    ai_files = {p.relative_to(CORPUS).as_posix() for p in (CORPUS / "ai").rglob("*.yaml")}
    non_ai_files = {p.relative_to(CORPUS).as_posix() for p in (CORPUS / "non-ai").rglob("*.yaml")}
    shadow_files = {f for f, found in by_file.items() if "AIT-S001" in found}
    # Every AI manifest is reported as shadow AI; no ordinary service is (no false positive).
    assert ai_files <= shadow_files
    assert not shadow_files & non_ai_files
    # The non-AI manifests are still posture-checked, and their findings located.
    assert len(non_ai_files & set(by_file)) > len(non_ai_files) / 2
    # SARIF and JSON agree on the shadow-AI count.
    _, json_out, _ = _run(capsys, str(CORPUS), "-o", "json")
    shadow_results = [r for r in run["results"] if r["ruleId"] == "AIT-S001"]
    assert len(shadow_results) == json.loads(json_out)["summary"]["shadowAI"]
