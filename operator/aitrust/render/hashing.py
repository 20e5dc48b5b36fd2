"""Stable content hashes, so the shell can skip writes when the cluster already matches."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

SPEC_HASH_ANNOTATION = "aitrust.dev/spec-hash"


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def spec_hash(spec: Mapping[str, Any], labels: Mapping[str, str], owner_references: Any = ()) -> str:
    """sha256 hex over spec, labels and owner references.

    Owner references are included because a recreated owner (same name, new uid) must rewrite the
    object; otherwise garbage collection of the old owner would delete a policy we think is current.
    """
    doc = {"spec": spec, "labels": labels, "ownerReferences": list(owner_references)}
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    """The spec hash of a rendered manifest (the annotation itself is not hashed).

    Compare it with the annotation on the live object, not with a hash of the live object: the API
    server defaults and drops fields, so a read-back manifest never hashes the same.
    """
    meta = manifest.get("metadata", {})
    return spec_hash(manifest.get("spec", {}), meta.get("labels", {}), meta.get("ownerReferences", ()))
