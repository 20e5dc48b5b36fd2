"""The `aitrust` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from aitrust import __version__
from aitrust.cli_tools import register
from aitrust.controller.options import add_run_arguments


def _run(args: argparse.Namespace) -> int:
    import kopf

    from aitrust.controller import handlers  # noqa: F401 - registers the handlers
    from aitrust.controller.memories import EventOnlyMemories
    from aitrust.controller.options import OperatorOptions
    from aitrust.controller.store import Store

    options = OperatorOptions.from_args(args)
    # The kubernetes client blocks in threads; each of its socket reads must win the GIL back from
    # the busy event loop, by default after up to 5 ms each: a 10 ms API call then took 60 ms.
    sys.setswitchinterval(0.0005)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        # kopf logs every handled event, httpx every OPA request, at INFO: thousands of lines a
        # minute on a busy cluster, and CPU taken from the signal path.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    if options.metrics_port:
        from prometheus_client import start_http_server

        from aitrust.metrics import REGISTRY

        start_http_server(options.metrics_port, addr=options.metrics_host, registry=REGISTRY)
    kopf.run(
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
        standalone=args.peering is None,
        peering_name=args.peering,
        liveness_endpoint=args.liveness,
        memo=kopf.Memo(store=Store(), options=options),
        memories=EventOnlyMemories(),
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aitrust", description=__doc__)
    parser.add_argument("--version", action="version", version=f"aitrust {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator against the current kubeconfig")
    add_run_arguments(run)
    run.set_defaults(func=_run)
    register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
