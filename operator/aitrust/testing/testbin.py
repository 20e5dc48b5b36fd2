"""Locate the pinned test binaries that hack/testbin.sh installs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

K8S_VERSION = "v1.37.2"


class MissingBinaryError(RuntimeError):
    pass


def testbin_dir() -> Path:
    if env := os.environ.get("AITRUST_TESTBIN_DIR"):
        return Path(env) / "bin"
    root = os.environ.get("AITRUST_TESTBIN_ROOT")
    base = (
        Path(root)
        if root
        else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aitrust/testbin"
    )
    return base / K8S_VERSION / "bin"


def find_binary(name: str) -> str:
    """Path of a pinned binary; raises (never skips) when it is missing."""
    candidate = testbin_dir() / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    raise MissingBinaryError(
        f"{name} not found in {testbin_dir()}; run `make testbin` to install the pinned binaries"
    )


def find_any(name: str) -> str:
    """A pinned binary if present, else one on PATH (for tools we do not pin)."""
    try:
        return find_binary(name)
    except MissingBinaryError:
        found = shutil.which(name)
        if not found:
            raise
        return found
