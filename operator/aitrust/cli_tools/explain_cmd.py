"""`aitrust explain NS/NAME` and `aitrust get`: read what the operator wrote into AIWorkload status."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from aitrust.api.v1alpha1 import AIWorkload, Tier, TrustPolicy, TrustPolicySpec
from aitrust.cli_tools.console import emit, make_console, new_table, tier_text
from aitrust.core.scan import BUILTIN_POLICY, TierGap, build_tier_gap

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    explain = sub.add_parser(
        "explain",
        help="why an AIWorkload has its score and tier, and what would raise it",
        description="Read an AIWorkload's status from the cluster and explain its score: every factor, "
        "what it may and may not reach, and the fixes that would lift it to the next tier.",
    )
    explain.add_argument("target", metavar="NAMESPACE/NAME", help="the AIWorkload (NAME alone uses -n)")
    explain.add_argument("-n", "--namespace", help="namespace when the target has none")
    explain.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config)")
    explain.add_argument("--no-color", action="store_true", help="plain output, no colours")
    explain.set_defaults(func=run_explain)

    get = sub.add_parser("get", help="list AIWorkloads with their tier and score")
    scope = get.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    get.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config)")
    get.add_argument("--no-color", action="store_true", help="plain output, no colours")
    get.set_defaults(func=run_get)


# --- presentation (no cluster needed) ----------------------------------------------------------


def _points(points: int) -> Text:
    return Text(f"{points:+d}", style="green" if points > 0 else "red" if points < 0 else "")


def print_explain(
    workload: AIWorkload, policy: TrustPolicySpec, policy_name: str, out: TextIO, no_color: bool = False
) -> TierGap | None:
    """Everything ``explain`` shows; returns the tier gap (None when never evaluated)."""
    console = make_console(no_color, out)
    status = workload.status
    ns, name = workload.metadata.namespace, workload.metadata.name
    head = Text(f"AIWorkload {ns}/{name} ({workload.spec.kind.value})", style="bold")
    emit(console, head)
    if status.trust_score is None or status.tier is None:
        emit(console, Text("Not evaluated yet: the operator has not written a score to its status."))
        return None
    line = Text("Score ")
    line.append(f"{status.trust_score}/100", style="bold")
    line.append("  Tier ")
    line.append_text(tier_text(status.tier))
    line.append(f"  Posture {status.posture_score if status.posture_score is not None else '-'}")
    line.append(f"  Mode {status.mode.value if status.mode else '-'}  Policy {policy_name}")
    if status.matched_pods is not None:
        line.append(f"  Pods {status.matched_pods}")
    emit(console, line)
    hold = status.quarantine is not None and status.quarantine.active
    if hold and status.quarantine is not None:
        q = status.quarantine
        text = f"Quarantine hold since {q.since or '?'} until {q.until or 'acknowledged'}: {q.reason}"
        emit(console, Text(text, style="bold red"))

    console.line()
    factors = new_table(console, "FACTOR", "POINTS", "SOURCE", "REASON", "REFERENCES", title="Factors")
    for f in status.factors:
        factors.add_row(
            Text(f.id), _points(f.points), f.source, Text(f.reason), Text(", ".join(f.references))
        )
    emit(console, factors)

    console.line()
    if status.grants:
        grants = new_table(console, "TARGET", "ACCESS", "REASON", title="Access")
        for g in status.grants:
            access = Text("allowed", style="green") if g.allowed else Text("denied", style="red")
            grants.add_row(Text(g.target), access, Text(g.reason))
        emit(console, grants)
    else:
        emit(console, Text("Access: it references no ModelEndpoint or DataSource."))

    gap = build_tier_gap(status.trust_score, status.tier, status.factors, policy, hold=hold)
    console.line()
    _print_gap(console, gap, policy)
    return gap


def _print_gap(console: Console, gap: TierGap, policy: TrustPolicySpec) -> None:
    if gap.next_tier is None:
        margin = gap.score - policy.thresholds.trusted
        emit(console, Text(f"Already trusted; {margin} points above the trusted threshold."))
        return
    threshold = policy.thresholds.trusted if gap.next_tier is Tier.TRUSTED else policy.thresholds.restricted
    head = (
        f"To reach {gap.next_tier.value}: score {gap.required_score} "
        f"(threshold {threshold} + hysteresis {policy.hysteresis}); "
    )
    head += (
        f"{gap.gap} points missing."
        if gap.gap
        else "the score is there; the tier rises on the next evaluation."
    )
    emit(console, Text(head, style="bold"))
    if gap.hold:
        emit(console, Text("The quarantine hold must end (or be acknowledged) first, whatever the score."))
    if not gap.fixes:
        emit(console, Text("No negative factor left to fix."))
        return
    fixes = new_table(console, "#", "FIX", "GAIN", "TOTAL", "ACTION")
    for i, fix in enumerate(gap.fixes, start=1):
        marker = " <- enough" if i == gap.sufficient else ""
        fixes.add_row(str(i), Text(fix.id), f"+{fix.points}", f"{fix.cumulative}{marker}", Text(fix.action))
    emit(console, fixes)
    if gap.gap and not gap.sufficient:
        emit(console, Text("Fixing all of these is not enough on its own: signal penalties must decay too."))


def print_get(
    workloads: list[dict[str, Any]], all_namespaces: bool, out: TextIO, no_color: bool = False
) -> None:
    console = make_console(no_color, out)
    columns = ["NAME", "KIND", "TIER", "SCORE", "POSTURE", "MODE", "PODS"]
    if all_namespaces:
        columns.insert(0, "NAMESPACE")
    table = new_table(console, *columns)
    rows = sorted(
        workloads, key=lambda w: ((w.get("metadata") or {}).get("namespace", ""), w["metadata"]["name"])
    )
    for body in rows:
        meta = body.get("metadata") or {}
        status = body.get("status") or {}
        spec = body.get("spec") or {}
        tier_raw = status.get("tier")
        try:
            tier: Tier | None = Tier(tier_raw) if tier_raw else None
        except ValueError:
            tier = None
        row: list[Text | str] = [
            Text(str(meta.get("name", ""))),
            str(spec.get("kind", "-")),
            tier_text(tier),
            str(status.get("trustScore", "-")),
            str(status.get("postureScore", "-")),
            str(status.get("mode", "-")),
            str(status.get("matchedPods", "-")),
        ]
        if all_namespaces:
            row.insert(0, Text(str(meta.get("namespace", ""))))
        table.add_row(*row)
    if not rows:
        print("No AIWorkloads found.", file=out)
        return
    emit(console, table)


# --- commands ----------------------------------------------------------------------------------


def parse_target(target: str, namespace: str | None, default: str) -> tuple[str, str] | None:
    ns, sep, name = target.partition("/")
    if not sep:
        return (namespace or default, target) if target else None
    return (ns, name) if ns and name and "/" not in name else None


def _fail(command: str, message: str) -> int:
    print(f"aitrust {command}: {message}", file=sys.stderr)
    return EXIT_FAIL


def resolve_policy(reader: Any, workload: AIWorkload) -> tuple[TrustPolicySpec, str]:
    """The TrustPolicy the operator applies: its ref, else the namespace's default, else built-ins."""
    from aitrust.cli_tools.cluster import ApiException

    ref = workload.spec.trust_policy_ref.name if workload.spec.trust_policy_ref else "default"
    try:
        body = reader.get_aitrust("TrustPolicy", workload.metadata.namespace, ref)
    except ApiException as exc:
        if exc.status == 403:
            return TrustPolicySpec(), f"{BUILTIN_POLICY}, TrustPolicy {ref} not readable"
        raise
    if body is None:
        return TrustPolicySpec(), BUILTIN_POLICY
    try:
        return TrustPolicy.model_validate(body).spec, ref
    except ValidationError:
        return TrustPolicySpec(), f"{BUILTIN_POLICY}, TrustPolicy {ref} invalid"


def run_explain(args: argparse.Namespace) -> int:
    from aitrust.cli_tools.cluster import ApiException, ClusterReader, TransportError, current_namespace

    target = parse_target(args.target, args.namespace, current_namespace(args.kubeconfig))
    if target is None:
        print(f"aitrust explain: expected NAMESPACE/NAME, got {args.target!r}", file=sys.stderr)
        return EXIT_USAGE
    ns, name = target
    try:
        reader = ClusterReader(args.kubeconfig)
    except Exception as exc:  # config errors come in many types
        return _fail("explain", f"cannot load kubeconfig: {exc}")
    try:
        body = reader.get_aitrust("AIWorkload", ns, name)
        if body is None:
            return _fail("explain", f"AIWorkload {ns}/{name} not found")
        try:
            workload = AIWorkload.model_validate(body)
        except ValidationError as exc:
            return _fail(
                "explain", f"AIWorkload {ns}/{name} does not match the API: {exc.error_count()} errors"
            )
        policy, policy_name = resolve_policy(reader, workload)
    except ApiException as exc:
        return _fail("explain", f"API server said {exc.status} {exc.reason}")
    except TransportError as exc:
        return _fail("explain", f"cannot reach the API server: {exc}")
    finally:
        reader.close()
    print_explain(workload, policy, policy_name, sys.stdout, args.no_color)
    return EXIT_OK


def run_get(args: argparse.Namespace) -> int:
    from aitrust.cli_tools.cluster import ApiException, ClusterReader, TransportError, current_namespace

    namespace = None if args.all_namespaces else args.namespace or current_namespace(args.kubeconfig)
    try:
        reader = ClusterReader(args.kubeconfig)
    except Exception as exc:
        return _fail("get", f"cannot load kubeconfig: {exc}")
    try:
        items = reader.list_aitrust("AIWorkload", namespace)
    except ApiException as exc:
        return _fail("get", f"API server said {exc.status} {exc.reason}")
    except TransportError as exc:
        return _fail("get", f"cannot reach the API server: {exc}")
    finally:
        reader.close()
    print_get(items, args.all_namespaces, sys.stdout, args.no_color)
    return EXIT_OK
