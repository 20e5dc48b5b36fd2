#!/usr/bin/env python3
"""Copy the generated CRDs and the Prometheus rules into the Helm chart's files/.

The chart cannot read files outside its directory (and Argo CD rejects symlinks that leave a
chart), so it carries copies; this script is the only writer. Usage:

    python hack/sync-chart-crds.py          # write the copies
    python hack/sync-chart-crds.py --check  # exit 1 and list the drift, write nothing
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART_FILES = ROOT / "charts" / "aitrust-operator" / "files"
# Files in the chart that this script owns: anything else matching is stale.
OWNED_GLOBS = ("crds/*.yaml", "prometheus/*.yaml")


def planned_copies(root: Path = ROOT) -> dict[Path, Path]:
    """Destination in the chart -> source in the repository."""
    files = root / "charts" / "aitrust-operator" / "files"
    copies = {files / "crds" / src.name: src for src in sorted((root / "crds").glob("aitrust.dev_*.yaml"))}
    copies[files / "crds" / "kopf-peering.yaml"] = root / "crds" / "kopf" / "peering.yaml"
    copies[files / "prometheus" / "aitrust-rules.yaml"] = (
        root / "deploy" / "prometheus" / "aitrust-rules.yaml"
    )
    return copies


def drift(root: Path = ROOT) -> list[str]:
    """Human-readable differences between the chart's copies and their sources."""
    copies = planned_copies(root)
    problems = []
    for dest, src in copies.items():
        if not src.is_file():
            problems.append(f"missing source {src.relative_to(root)}")
        elif not dest.is_file():
            problems.append(f"missing copy {dest.relative_to(root)}")
        elif dest.read_bytes() != src.read_bytes():
            problems.append(f"{dest.relative_to(root)} differs from {src.relative_to(root)}")
    files = root / "charts" / "aitrust-operator" / "files"
    for pattern in OWNED_GLOBS:
        for existing in sorted(files.glob(pattern)):
            if existing not in copies:
                problems.append(f"stale copy {existing.relative_to(root)}")
    return problems


def sync(root: Path = ROOT) -> list[Path]:
    """Write every copy and remove stale ones; returns the files changed."""
    copies = planned_copies(root)
    changed = []
    for dest, src in copies.items():
        data = src.read_bytes()
        if not dest.is_file() or dest.read_bytes() != data:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            changed.append(dest)
    files = root / "charts" / "aitrust-operator" / "files"
    for pattern in OWNED_GLOBS:
        for existing in sorted(files.glob(pattern)):
            if existing not in copies:
                existing.unlink()
                changed.append(existing)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report drift instead of fixing it")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    if args.check:
        problems = drift(root)
        for problem in problems:
            print(f"sync-chart-crds: {problem}", file=sys.stderr)
        if problems:
            print("sync-chart-crds: run `python hack/sync-chart-crds.py`", file=sys.stderr)
            return 1
        return 0
    for path in sync(root):
        print(f"sync-chart-crds: wrote {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
