"""The `aitrust` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aitrust import __version__


def _run(args: argparse.Namespace) -> int:
    import kopf

    from aitrust.controller import handlers  # noqa: F401 - registers the handlers
    from aitrust.controller.store import Store

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    opa_policies = None
    if args.opa:
        from aitrust.kube.opa import load_policies

        opa_policies = load_policies(Path(args.opa_policy_dir))
    if args.metrics_port:
        from prometheus_client import start_http_server

        from aitrust.metrics import REGISTRY

        start_http_server(args.metrics_port, addr=args.metrics_addr, registry=REGISTRY)
    memo = kopf.Memo(
        store=Store(),
        kubeconfig=args.kubeconfig,
        workers=args.workers,
        opa_urls=args.opa or [],
        opa_policies=opa_policies,
        resync_seconds=args.resync_seconds,
        signal_port=args.signal_port,
        signal_host=args.signal_host,
        signal_token_secret=args.signal_token_secret,
        signal_token_dir=args.signal_token_dir,
        signal_tls_cert=args.signal_tls_cert,
        signal_tls_key=args.signal_tls_key,
        signal_client_ca=args.signal_client_ca,
        signal_max_body=args.signal_max_body,
        signal_rate=args.signal_rate,
        leader_namespace=args.leader_elect_namespace,
        leader_name=args.leader_elect_name,
    )
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace or (),
        standalone=args.peering is None,
        peering_name=args.peering,
        liveness_endpoint=args.liveness,
        memo=memo,
    )
    return 0


def _default_policy_dir() -> Path:
    # A source checkout keeps the Rego beside the package; the image sets AITRUST_POLICY_DIR.
    return Path(__file__).resolve().parents[2] / "policies"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aitrust", description=__doc__)
    parser.add_argument("--version", action="version", version=f"aitrust {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument(
        "--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    run.add_argument(
        "--namespace", "-n", action="append", help="watch only this namespace (repeatable; default: all)"
    )
    run.add_argument(
        "--peering",
        metavar="NAME",
        help="coordinate replicas through the ClusterKopfPeering NAME (crds/kopf-peering.yaml); "
        "without it the operator runs standalone",
    )
    run.add_argument("--workers", type=int, default=8, help="concurrent reconcile workers")
    run.add_argument(
        "--leader-elect-namespace",
        default=os.environ.get("AITRUST_LEADER_ELECT_NAMESPACE"),
        help="run as one of several replicas: only the holder of a Lease in this namespace acts",
    )
    run.add_argument("--leader-elect-name", default="aitrust-operator", help="name of that Lease")
    run.add_argument(
        "--opa",
        action="append",
        default=[u for u in os.environ.get("AITRUST_OPA_URLS", "").split(",") if u],
        metavar="URL",
        help="OPA server to push trust data and policies to (repeatable; env AITRUST_OPA_URLS, comma list)",
    )
    run.add_argument(
        "--opa-policy-dir",
        default=os.environ.get("AITRUST_POLICY_DIR", str(_default_policy_dir())),
        help="directory of the Rego policies to publish",
    )
    run.add_argument("--resync-seconds", type=float, default=30.0, help="recompute decaying trust this often")
    run.add_argument(
        "--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port (0: off)"
    )
    run.add_argument("--metrics-addr", default="0.0.0.0", help="address for the metrics server")  # noqa: S104
    run.add_argument("--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8081/healthz")
    sig = run.add_argument_group("signal API")
    sig.add_argument(
        "--signal-port", type=int, default=None, help="serve the signal API on this port (off if unset)"
    )
    sig.add_argument("--signal-host", default="0.0.0.0", help="address of the signal API")  # noqa: S104
    sig.add_argument(
        "--signal-token-secret", metavar="NS/NAME", help="Secret whose keys are callers, values tokens"
    )
    sig.add_argument("--signal-token-dir", help="directory of token files (a mounted Secret)")
    sig.add_argument("--signal-tls-cert", help="serve HTTPS with this certificate")
    sig.add_argument("--signal-tls-key", help="private key of --signal-tls-cert")
    sig.add_argument("--signal-client-ca", help="require client certificates signed by this CA (mutual TLS)")
    sig.add_argument(
        "--signal-max-body", type=int, default=1 << 20, help="largest accepted body in bytes (413)"
    )
    sig.add_argument("--signal-rate", type=float, default=5000.0, help="requests per second per caller (429)")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
