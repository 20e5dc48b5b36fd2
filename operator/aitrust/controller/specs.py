"""Parsed AIWorkload specs, cached per object version.

Pod events, signal mapping and the shadow inventory all need every workload's selector; parsing
a hundred bodies per pod event cost most of a cold start's CPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from aitrust.api.v1alpha1 import AIWorkload

Version = tuple[Any, Any]
# Five or more would double the size of each cached ObjectMeta's pydantic fields-set.
_IDENTITY = ("name", "namespace", "uid", "generation")


class WorkloadSpecs:
    def __init__(self) -> None:
        self._parsed: dict[tuple[str, str], tuple[Version, AIWorkload | None]] = {}

    def parse(self, body: Mapping[str, Any]) -> AIWorkload | None:
        """The workload's identity and spec, all that selecting pods and mapping signals read
        (labels, annotations and status change without a new generation); None when invalid."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        # Without a generation (bodies not from an API server), any new resourceVersion counts.
        version = (meta.get("uid"), meta.get("generation") or meta.get("resourceVersion"))
        cached = self._parsed.get(key)
        if cached is not None and cached[0] == version and version[1] is not None:
            return cached[1]
        try:
            trimmed = {k: body[k] for k in ("apiVersion", "kind", "spec") if k in body}
            trimmed["metadata"] = {k: meta[k] for k in _IDENTITY if k in meta}
            workload: AIWorkload | None = AIWorkload.model_validate(trimmed)
        except ValidationError:
            workload = None
        self._parsed[key] = (version, workload)
        return workload

    def parse_all(self, bodies: Iterable[Mapping[str, Any]]) -> list[AIWorkload]:
        return [w for w in map(self.parse, bodies) if w is not None]

    def forget(self, namespace: str, name: str) -> None:
        self._parsed.pop((namespace, name), None)
