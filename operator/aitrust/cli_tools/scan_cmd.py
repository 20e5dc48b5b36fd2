"""`aitrust scan`: the offline scan of manifests, as a table, JSON (docs/scan-json.md) or SARIF."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import ValidationError
from rich.text import Text

from aitrust.api.v1alpha1 import Tier, TrustPolicy, TrustPolicySpec
from aitrust.cli_tools.console import emit, make_console, new_table, tier_text
from aitrust.cli_tools.loader import load_documents
from aitrust.cli_tools.sarif import build_sarif
from aitrust.core.scan import ScanError, ScanReport, build_scan_report

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "scan",
        help="score Kubernetes manifests offline (files, directories, or - for stdin)",
        description="Classify, posture-check and trust-score every workload in the manifests, and show "
        "the NetworkPolicies and OPA data the operator would produce for the AIWorkloads among them. "
        "Exit 1 when a workload's tier is at or below --fail-on, 2 on unreadable input.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="YAML/JSON file, directory (recursive), or -")
    p.add_argument("-o", "--output", choices=("table", "json", "sarif"), default="table")
    p.add_argument("--policy", metavar="FILE", help="TrustPolicy (or its spec) applied to every workload")
    p.add_argument(
        "--fail-on",
        choices=(Tier.QUARANTINED.value, Tier.RESTRICTED.value),
        help="exit 1 when any workload's tier is at or below this",
    )
    p.add_argument("--no-color", action="store_true", help="plain output, no colours")
    p.set_defaults(func=run_scan)


def format_error(error: ScanError) -> str:
    where = f"{error.file}: document {error.index}"
    if error.line is not None:
        where += f" (line {error.line})"
    return f"{where}: {error.message}"


def load_policy(path: str) -> tuple[TrustPolicySpec | None, str | None]:
    """The TrustPolicy spec in ``path`` (a TrustPolicy object or a bare spec), or an error."""
    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if d is not None]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return None, f"{path}: cannot read policy: {exc}"
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        try:
            if doc.get("kind") == "TrustPolicy":
                return TrustPolicy.model_validate(doc).spec, None
            if "kind" not in doc:
                return TrustPolicySpec.model_validate(doc), None
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            return None, f"{path}: invalid TrustPolicy: {loc}: {first['msg']}"
    return None, f"{path}: no TrustPolicy found"


def report_json(report: ScanReport) -> dict[str, Any]:
    """The JSON contract of docs/scan-json.md."""
    return report.model_dump(mode="json", by_alias=True)


def _short_findings(ids: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" +{len(ids) - limit}" if len(ids) > limit else "")


def print_table(report: ScanReport, out: TextIO, no_color: bool) -> None:
    console = make_console(no_color, out)
    s = report.summary
    title = (
        f"{s.workloads} workloads: {s.ai} AI ({s.shadow_ai} not managed), {s.managed} managed by "
        f"{s.ai_workloads} AIWorkloads"
    )
    table = new_table(
        console, "WORKLOAD", "AI", "MANAGED", "SCORE", "TIER", "FINDINGS", "SOURCE", title=title
    )
    for w in report.workloads:
        ai = f"{w.ai.category} {w.ai.confidence:.2f}" if w.ai.is_ai else "-"
        source = f"{w.source.file}:{w.source.line}" if w.source.line else w.source.file
        table.add_row(
            Text(f"{w.kind}/{w.namespace}/{w.name}"),
            Text(ai, style="cyan" if w.ai.is_ai and not w.managed else ""),
            "yes" if w.managed else "no",
            str(w.trust_score),
            tier_text(w.tier),
            Text(_short_findings([f.id for f in w.findings]) or "-"),
            Text(source),
        )
    emit(console, table)
    if report.ai_workloads:
        console.line()
        aiw = new_table(
            console,
            "AIWORKLOAD",
            "KIND",
            "SCORE",
            "TIER",
            "MODE",
            "POLICY",
            "WORKLOADS",
            "GRANTS",
            title="AIWorkloads",
        )
        for a in report.ai_workloads:
            allowed = sum(g.allowed for g in a.grants)
            aiw.add_row(
                Text(f"{a.namespace}/{a.name}"),
                a.kind,
                str(a.trust_score),
                tier_text(a.tier),
                a.mode.value,
                Text(a.policy),
                Text(", ".join(a.workloads) or "none"),
                f"{allowed}/{len(a.grants)} allowed",
            )
        emit(console, aiw)
    if report.network_policies:
        console.line()
        names = ", ".join(
            f"{m['metadata']['namespace']}/{m['metadata']['name']}" for m in report.network_policies
        )
        emit(
            console,
            Text(f"NetworkPolicies the operator would write ({len(report.network_policies)}): {names}"),
        )


def write_report(report: ScanReport, output: str, out: TextIO, no_color: bool) -> None:
    if output == "json":
        # Serialised in pydantic-core: json.dump with indent is pure Python, and slow at 10k workloads.
        out.write(report.model_dump_json(by_alias=True, indent=2))
        out.write("\n")
    elif output == "sarif":
        json.dump(build_sarif(report), out, indent=2)
        out.write("\n")
    else:
        print_table(report, out, no_color)


def failing(report: ScanReport, fail_on: str | None) -> list[str]:
    """Workloads whose tier is at or below ``fail_on``."""
    if not fail_on:
        return []
    limit = Tier(fail_on).rank
    return [
        f"{w.kind}/{w.namespace}/{w.name} ({w.tier.value})" for w in report.workloads if w.tier.rank <= limit
    ]


@contextmanager
def bulk_allocation() -> Iterator[None]:
    """No cyclic GC while building a large report: it is all live data, and the collector's
    repeated passes over tens of thousands of objects cost more than the scan itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def scan_paths(
    paths: Sequence[str], now: datetime, policy: TrustPolicySpec | None = None, policy_name: str = "--policy"
) -> tuple[ScanReport, list[ScanError]]:
    """Load and scan ``paths``; the errors are the loader's and the report's together."""
    with bulk_allocation():
        documents, errors = load_documents(paths)
        report = build_scan_report(documents, now, policy, policy_name=policy_name)
    return report, errors + report.errors


def run_scan(args: argparse.Namespace) -> int:
    policy: TrustPolicySpec | None = None
    if args.policy:
        policy, problem = load_policy(args.policy)
        if problem:
            print(f"aitrust scan: {problem}", file=sys.stderr)
            return EXIT_USAGE
    report, errors = scan_paths(args.paths, datetime.now(UTC), policy, args.policy or "--policy")
    if errors:
        for error in errors:
            print(f"aitrust scan: {format_error(error)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with bulk_allocation():
            write_report(report, args.output, sys.stdout, args.no_color)
    except BrokenPipeError:
        # The reader (head, less) went away: nothing more to say, and no traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    failed = failing(report, args.fail_on)
    if failed:
        print(
            f"aitrust scan: {len(failed)} workload(s) at or below {args.fail_on}: " + ", ".join(failed[:10]),
            file=sys.stderr,
        )
        return EXIT_FAIL
    return EXIT_OK
