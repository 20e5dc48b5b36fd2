"""`aitrust inventory`: AI components from manifests or a live cluster; table, JSON or CycloneDX 1.6."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from rich.text import Text

from aitrust import __version__
from aitrust.cli_tools.console import emit, make_console, new_table, tier_text
from aitrust.cli_tools.loader import load_documents
from aitrust.cli_tools.scan_cmd import format_error
from aitrust.core.inventory import Inventory, build_cyclonedx, build_inventory

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "inventory",
        help="list AI components (workloads, models, endpoints, data sources); CycloneDX 1.6 ML-BOM",
        description="Inventory the AI components in manifests (-f) or a live cluster (--cluster): "
        "AI workloads, AIWorkloads and their declared models, ModelEndpoints and DataSources.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "-f", "--filename", action="extend", nargs="+", metavar="PATH", help="manifests (file, dir or -)"
    )
    source.add_argument("--cluster", action="store_true", help="read the live cluster instead")
    p.add_argument("-o", "--output", choices=("table", "json", "cyclonedx"), default="table")
    p.add_argument("--kubeconfig", help="kubeconfig path for --cluster")
    p.add_argument("--no-color", action="store_true", help="plain output, no colours")
    p.set_defaults(func=run_inventory)


def _short_digest(digest: str | None) -> str:
    return digest.removeprefix("sha256:")[:12] if digest else "-"


def print_inventory(inv: Inventory, out: TextIO, no_color: bool = False) -> None:
    console = make_console(no_color, out)
    wl = new_table(
        console, "WORKLOAD", "CATEGORY", "CONFIDENCE", "MANAGED BY", "IMAGES", title="AI workloads"
    )
    for w in inv.workloads:
        wl.add_row(
            Text(f"{w.kind}/{w.namespace}/{w.name}"),
            w.category or "-",
            f"{w.confidence:.2f}",
            Text(", ".join(w.managed_by) or "- (shadow AI)"),
            Text(", ".join(w.images)),
        )
    emit(console, wl)
    sections: list[tuple[str, Any]] = []
    if inv.ai_workloads:
        t = new_table(console, "AIWORKLOAD", "KIND", "TIER", "SCORE", "MODELS", "ACCESS", title="AIWorkloads")
        for a in inv.ai_workloads:
            access = [f"ModelEndpoint {e}" for e in a.model_endpoints] + [
                f"DataSource {d}" for d in a.data_sources
            ]
            t.add_row(
                Text(f"{a.namespace}/{a.name}"),
                a.kind.value,
                tier_text(a.tier),
                str(a.trust_score) if a.trust_score is not None else "-",
                str(len(a.models)),
                Text(", ".join(access) or "-"),
            )
        sections.append(("AIWorkloads", t))
    if inv.models:
        t = new_table(console, "MODEL", "DIGEST", "SIGNED", "SOURCE", "DECLARED BY", title="Models")
        for m in inv.models:
            t.add_row(
                Text(m.name),
                _short_digest(m.digest),
                m.signature_algorithm or "no",
                Text(m.source),
                Text(", ".join(m.used_by)),
            )
        sections.append(("Models", t))
    if inv.model_endpoints:
        t = new_table(
            console, "MODELENDPOINT", "PROVIDER", "WHERE", "MIN TIER", "SENSITIVITY", title="ModelEndpoints"
        )
        for e in inv.model_endpoints:
            where = ", ".join([*e.hosts, *e.cidrs, *([e.service] if e.service else [])]) or "selector"
            t.add_row(
                Text(f"{e.namespace}/{e.name}"), e.provider, Text(where), e.min_tier.value, e.sensitivity
            )
        sections.append(("ModelEndpoints", t))
    if inv.data_sources:
        t = new_table(console, "DATASOURCE", "TYPE", "WHERE", "MIN TIER", "SENSITIVITY", title="DataSources")
        for d in inv.data_sources:
            where = ", ".join([*d.hosts, *d.cidrs, *([d.service] if d.service else [])]) or "selector"
            t.add_row(Text(f"{d.namespace}/{d.name}"), d.type, Text(where), d.min_tier.value, d.sensitivity)
        sections.append(("DataSources", t))
    for _, table in sections:
        console.line()
        emit(console, table)


def cyclonedx_document(inv: Inventory, subject: str) -> dict[str, Any]:
    timestamp = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return build_cyclonedx(inv, str(uuid.uuid4()), timestamp, __version__, subject)


def write_inventory(inv: Inventory, output: str, subject: str, out: TextIO, no_color: bool) -> None:
    if output == "json":
        json.dump(inv.model_dump(mode="json", by_alias=True), out, indent=2)
        out.write("\n")
    elif output == "cyclonedx":
        json.dump(cyclonedx_document(inv, subject), out, indent=2)
        out.write("\n")
    else:
        print_inventory(inv, out, no_color)


def _cluster_objects(kubeconfig: str | None) -> tuple[list[Mapping[str, Any]], str] | str:
    from aitrust.cli_tools.cluster import ApiException, ClusterReader, TransportError, current_context

    try:
        reader = ClusterReader(kubeconfig)
    except Exception as exc:  # config errors come in many types
        return f"cannot load kubeconfig: {exc}"
    try:
        objects: list[Mapping[str, Any]] = []
        for kind in ("AIWorkload", "ModelEndpoint", "DataSource"):
            objects.extend(reader.list_aitrust(kind))
        objects.extend(reader.list_workloads())
    except ApiException as exc:
        return f"API server said {exc.status} {exc.reason}"
    except TransportError as exc:
        return f"cannot reach the API server: {exc}"
    finally:
        reader.close()
    return objects, current_context(kubeconfig)


def run_inventory(args: argparse.Namespace) -> int:
    objects: Iterable[Mapping[str, Any]]
    if args.cluster:
        found = _cluster_objects(args.kubeconfig)
        if isinstance(found, str):
            print(f"aitrust inventory: {found}", file=sys.stderr)
            return EXIT_FAIL
        objects, subject = found
    else:
        documents, errors = load_documents(args.filename)
        if errors:
            for error in errors:
                print(f"aitrust inventory: {format_error(error)}", file=sys.stderr)
            return EXIT_USAGE
        objects, subject = (d.obj for d in documents), "manifests"
    inv = build_inventory(objects)
    for problem in inv.problems:
        print(f"aitrust inventory: warning: {problem}", file=sys.stderr)
    write_inventory(inv, args.output, subject, sys.stdout, args.no_color)
    return EXIT_OK
