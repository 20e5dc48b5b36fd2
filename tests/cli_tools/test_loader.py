"""Reading manifests: documents, List items, their lines, JSON, directories and errors."""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from aitrust.cli_tools.loader import expand_paths, load_documents, parse_yaml

TESTS = Path(__file__).resolve().parents[1]

STREAM = """\
# leading comment
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
---
# an empty document above, and a List here
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: p1}
  -
    apiVersion: v1
    kind: Pod
    metadata: {name: p2}
--- |
  a plain scalar document
"""


def test_documents_and_list_items_keep_their_start_lines() -> None:
    docs, errors = parse_yaml(STREAM, "f.yaml")
    assert errors == []
    got = [(d.index, d.line, d.obj if isinstance(d.obj, str) else d.obj["metadata"]["name"]) for d in docs]
    assert got == [(0, 2, "a"), (2, 11, "p1"), (2, 15, "p2"), (3, 18, "a plain scalar document\n")]
    lines = STREAM.splitlines()
    assert lines[11 - 1].strip().startswith("- apiVersion") and lines[15 - 1].strip() == "apiVersion: v1"


def test_a_syntax_error_reports_file_document_and_line_and_keeps_what_came_before() -> None:
    text = "kind: Pod\nmetadata: {name: ok}\n---\nkind: Pod\nmetadata: {name: [broken\n---\nkind: Pod\n"
    docs, errors = parse_yaml(text, "bad.yaml")
    assert [d.obj["metadata"]["name"] for d in docs] == ["ok"]
    [error] = errors
    assert (error.file, error.index) == ("bad.yaml", 1)
    assert error.line is not None and 4 <= error.line <= 6
    assert error.message.startswith("invalid YAML")


def _has_dates(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_dates(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_dates(v) for v in value)
    return isinstance(value, datetime.date)


def test_same_objects_as_safe_load_for_every_yaml_in_the_tests() -> None:
    compared = 0
    for path in sorted(TESTS.rglob("*.yaml")):
        text = path.read_text()
        try:
            expected = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError:
            continue
        if _has_dates(expected):
            continue  # timestamps stay strings on purpose (see below)
        flat: list[Any] = []
        for d in expected:
            if (
                isinstance(d, dict)
                and str(d.get("kind", "")).endswith("List")
                and isinstance(d.get("items"), list)
            ):
                flat += d["items"]
            else:
                flat.append(d)
        docs, errors = parse_yaml(text, path.name)
        assert not errors
        assert [d.obj for d in docs] == flat, path
        compared += 1
    assert compared > 80


def test_anchors_merge_keys_and_timestamps() -> None:
    text = "base: &b {image: nginx, ports: [80]}\nderived:\n  <<: *b\n  name: x\nalias: *b\n"
    [doc], _ = parse_yaml(text, "f")
    assert doc.obj == yaml.safe_load(text)
    [stamped], _ = parse_yaml("metadata: {creationTimestamp: 2025-01-02T03:04:05Z}\n", "f")
    # Kept as the API server returns it, not turned into a datetime.
    assert stamped.obj["metadata"]["creationTimestamp"] == "2025-01-02T03:04:05Z"


def test_directories_recurse_filter_and_skip_hidden(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    for name in ("a.yaml", "b/c.yml", "b/d.json", "e.txt", ".hidden.yaml", ".git/f.yaml"):
        (tmp_path / name).write_text("{}")
    files, errors = expand_paths([str(tmp_path), str(tmp_path / "missing.yaml")])
    assert [Path(f).relative_to(tmp_path).as_posix() for f in files] == ["a.yaml", "b/c.yml", "b/d.json"]
    assert [e.file for e in errors] == [str(tmp_path / "missing.yaml")]


def test_json_files_and_lists(tmp_path: Path) -> None:
    pods = {
        "apiVersion": "v1",
        "kind": "PodList",
        "items": [{"kind": "Pod", "metadata": {"name": n}} for n in "xy"],
    }
    (tmp_path / "pods.json").write_text(json.dumps(pods, indent=2))
    (tmp_path / "broken.json").write_text('{"kind": ')
    docs, errors = load_documents([str(tmp_path)])
    assert [d.obj["metadata"]["name"] for d in docs] == ["x", "y"]
    [error] = errors
    assert error.file.endswith("broken.json") and error.message.startswith("invalid JSON")


def test_stdin_and_file_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "one.yaml").write_text("kind: Pod\nmetadata: {name: from-file}\n")
    monkeypatch.chdir(tmp_path)
    stdin = io.StringIO("---\n# Source: chart/templates/pod.yaml\nkind: Pod\nmetadata: {name: from-stdin}\n")
    docs, errors = load_documents(["-", "one.yaml"], stdin)
    assert errors == []
    assert [(d.file, d.line, d.obj["metadata"]["name"]) for d in docs] == [
        ("stdin", 3, "from-stdin"),
        ("one.yaml", 1, "from-file"),
    ]


def test_file_names_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "app.yaml").write_text("kind: Pod\n")
    monkeypatch.chdir(tmp_path)
    absolute, _ = load_documents([str(tmp_path / "deploy")])
    relative, _ = load_documents(["./deploy/"])
    assert [d.file for d in absolute] == [d.file for d in relative] == ["deploy/app.yaml"]
