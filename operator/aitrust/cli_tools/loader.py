"""Reading Kubernetes manifests from files, directories and stdin, with document line numbers.

YAML streams are composed node by node (``CSafeLoader`` when libyaml is present) so that
each document, and each item of a ``List``, keeps the line it starts on for SARIF. Nodes
become Python objects through a lean walker rather than PyYAML's generic constructor (most
of the parse time otherwise); it differs from ``safe_load`` only in keeping timestamps as
strings, as the Kubernetes API does. Merge keys and unusual tags fall back to PyYAML.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import yaml

from aitrust.core.scan import Document, ScanError

try:
    _Base: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Base = yaml.SafeLoader

_RESOLVED: dict[tuple[str, tuple[bool, bool]], str] = {}


class _Loader(_Base):  # type: ignore[misc]
    """The safe loader with two hot spots trimmed; the parser calls both for every node.

    Scalar tags are memoised (keys and values repeat across manifests), and the path
    resolvers, which nobody registers, become C no-ops instead of Python calls.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.descend_resolver: Any = {}.get  # takes (node, index), returns None
        self.ascend_resolver: Any = tuple  # takes nothing

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            key = (value, implicit)
            tag = _RESOLVED.get(key)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(_RESOLVED) > 100_000:
                    _RESOLVED.clear()
                _RESOLVED[key] = tag
            return tag
        return str(super().resolve(kind, value, implicit))


STDIN = "-"
_SAFE = yaml.constructor.SafeConstructor()
_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SCALARS: dict[str, Any] = {
    "tag:yaml.org,2002:int": _SAFE.construct_yaml_int,
    "tag:yaml.org,2002:float": _SAFE.construct_yaml_float,
    "tag:yaml.org,2002:bool": _SAFE.construct_yaml_bool,
    "tag:yaml.org,2002:null": _SAFE.construct_yaml_null,
    "tag:yaml.org,2002:timestamp": lambda node: node.value,
}


class _Unusual(Exception):
    """A node the lean walker leaves to PyYAML (merge keys, custom tags, complex keys)."""


_ScalarNode = yaml.ScalarNode
_MappingNode = yaml.MappingNode
_SequenceNode = yaml.SequenceNode


def _build(node: yaml.Node, memo: dict[int, Any]) -> Any:
    cls = node.__class__
    if cls is _ScalarNode:
        tag = node.tag
        if tag == _STR:
            return node.value
        make = _SCALARS.get(tag)
        if make is None:
            raise _Unusual
        return make(node)
    seen = memo.get(id(node))
    if seen is not None:
        return seen  # an alias
    if cls is _MappingNode and node.tag == _MAP:
        out: dict[Any, Any] = {}
        memo[id(node)] = out
        for key_node, value_node in node.value:
            if key_node.__class__ is not _ScalarNode or key_node.tag != _STR:
                if key_node.__class__ is not _ScalarNode or key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Unusual
                out[_build(key_node, memo)] = _build(value_node, memo)
                continue
            value_cls = value_node.__class__
            if value_cls is _ScalarNode and value_node.tag == _STR:
                out[key_node.value] = value_node.value
            else:
                out[key_node.value] = _build(value_node, memo)
        return out
    if cls is _SequenceNode and node.tag == _SEQ:
        items: list[Any] = []
        memo[id(node)] = items
        items.extend([_build(item, memo) for item in node.value])
        return items
    raise _Unusual


def _construct(loader: Any, node: yaml.Node) -> Any:
    try:
        return _build(node, {})
    except _Unusual:
        return loader.construct_document(node)


SUFFIXES = (".yaml", ".yml", ".json")


def _items_lines(node: yaml.Node) -> list[int | None]:
    """Start lines of a List object's ``items`` entries (1-based)."""
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "items" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _is_list(data: Any) -> bool:
    kind = data.get("kind") if isinstance(data, dict) else None
    return isinstance(kind, str) and kind.endswith("List") and isinstance(data.get("items"), list)


def _expand(
    data: Any, file: str, index: int, line: int | None, item_lines: list[int | None]
) -> Iterator[Document]:
    if _is_list(data):
        for j, item in enumerate(data["items"]):
            yield Document(item, file, index, item_lines[j] if j < len(item_lines) else line)
    elif data is not None:
        yield Document(data, file, index, line)


def parse_yaml(text: str, file: str) -> tuple[list[Document], list[ScanError]]:
    """Every document in a YAML stream; a syntax error ends the file with one ScanError."""
    docs: list[Document] = []
    errors: list[ScanError] = []
    loader = _Loader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1 if node is not None else None
            data = _construct(loader, node) if node is not None else None
            docs.extend(_expand(data, file, index, line, _items_lines(node) if _is_list(data) else []))
            index += 1
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"invalid YAML: {context + ', ' if context else ''}{problem}"
        errors.append(
            ScanError(file=file, index=index, line=mark.line + 1 if mark else None, message=message)
        )
    finally:
        loader.dispose()
    return docs, errors


def parse_json(text: str, file: str) -> tuple[list[Document], list[ScanError]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [ScanError(file=file, index=0, line=exc.lineno, message=f"invalid JSON: {exc.msg}")]
    return list(_expand(data, file, 0, 1, [])), []


def parse_text(text: str, file: str) -> tuple[list[Document], list[ScanError]]:
    if file.endswith(".json"):
        return parse_json(text, file)
    return parse_yaml(text, file)


def _display(path: str, cwd: str) -> str:
    """The path as SARIF wants it: relative to the working directory when possible, with /."""
    if os.path.isabs(path):
        relative = os.path.relpath(path, cwd)
        if not relative.startswith(".."):
            path = relative
    return os.path.normpath(path).replace(os.sep, "/")


def expand_paths(paths: Iterable[str]) -> tuple[list[str], list[ScanError]]:
    """Files named directly, and *.yaml/*.yml/*.json under directories (hidden ones skipped)."""
    named, errors = _files(paths, os.getcwd())
    return [path for path, _ in named], errors


def _files(paths: Iterable[str], cwd: str) -> tuple[list[tuple[str, str]], list[ScanError]]:
    """(path, display name) of every file; names are derived per directory, not per file."""
    files: list[tuple[str, str]] = []
    errors: list[ScanError] = []
    for raw in paths:
        if os.path.isdir(raw):
            root = _display(raw, cwd)
            for dirpath, dirnames, filenames in os.walk(raw):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                sub = dirpath[len(raw) :].strip(os.sep).replace(os.sep, "/")
                prefix = "/".join(p for p in (root if root != "." else "", sub) if p)
                files.extend(
                    (os.path.join(dirpath, f), f"{prefix}/{f}" if prefix else f)
                    for f in sorted(filenames)
                    if f.endswith(SUFFIXES) and not f.startswith(".")
                )
        elif os.path.isfile(raw):
            files.append((raw, _display(raw, cwd)))
        else:
            errors.append(ScanError(file=raw, index=0, message="no such file or directory"))
    return files, errors


def load_documents(
    paths: Iterable[str], stdin: TextIO | None = None
) -> tuple[list[Document], list[ScanError]]:
    """Documents from ``paths`` in order (``-`` reads ``stdin``), and any read or parse errors."""
    docs: list[Document] = []
    errors: list[ScanError] = []
    for raw in paths:
        if raw == STDIN:
            stream = stdin if stdin is not None else sys.stdin
            found, errs = parse_yaml(stream.read(), "stdin")
            docs.extend(found)
            errors.extend(errs)
            continue
        files, missing = _files([raw], os.getcwd())
        errors.extend(missing)
        for path, name in files:
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(ScanError(file=name, index=0, message=f"cannot read: {exc}"))
                continue
            found, errs = parse_text(text, name)
            docs.extend(found)
            errors.extend(errs)
    return docs, errors
