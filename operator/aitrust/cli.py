"""The `aitrust` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

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
    memo = kopf.Memo(store=Store(), kubeconfig=args.kubeconfig, workers=args.workers)
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace or (),
        standalone=args.peering is None,
        peering_name=args.peering,
        liveness_endpoint=args.liveness,
        memo=memo,
    )
    return 0


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
    run.add_argument("--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8081/healthz")
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
