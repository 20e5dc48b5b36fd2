"""Everything `aitrust run` is told, in one immutable object (the Helm chart's flags map onto it)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from aitrust.api.v1alpha1 import Mode


@dataclass(frozen=True)
class OperatorOptions:
    kubeconfig: str | None = None
    namespaces: tuple[str, ...] = ()
    workers: int = 8
    startup_workers: int = 32
    resync_seconds: float = 30.0
    default_policy_mode: Mode = Mode.ENFORCE
    secrets_namespace: str | None = None
    health_port: int = 0
    health_host: str = "0.0.0.0"  # noqa: S104 - probes come from the kubelet
    leader_elect: bool = False
    leader_namespace: str | None = None
    leader_lease: str = "aitrust-operator"
    metrics_port: int = 0
    metrics_host: str = "0.0.0.0"  # noqa: S104
    signals_port: int = 0
    signals_host: str = "0.0.0.0"  # noqa: S104
    signals_token_file: str | None = None
    signals_token_dir: str | None = None
    signals_token_secret: str | None = None
    signals_tls_cert_file: str | None = None
    signals_tls_key_file: str | None = None
    signals_client_ca_file: str | None = None
    signals_max_body_bytes: int = 1 << 20
    signals_rate_limit: float = 5000.0
    signals_rate_burst: float = 10000.0
    signals_journal_namespace: str | None = None
    opa_urls: tuple[str, ...] = ()
    opa_token_file: str | None = None
    opa_bundle_port: int = 0
    opa_bundle_signing_key_file: str | None = None
    opa_bundle_signing_alg: str = "ES256"
    opa_bundle_key_id: str = "aitrust"
    shadow_adopt: bool = False
    opa_policy_dir: Path = field(default_factory=lambda: Path(__file__).resolve().parents[3] / "policies")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> OperatorOptions:
        pod_ns = os.environ.get("POD_NAMESPACE")
        return cls(
            kubeconfig=args.kubeconfig,
            namespaces=tuple(args.namespace or ()),
            workers=args.workers,
            startup_workers=args.startup_workers,
            resync_seconds=args.resync_seconds,
            default_policy_mode=Mode(args.default_policy_mode),
            secrets_namespace=args.secrets_namespace or pod_ns,
            health_port=args.health_port,
            leader_elect=args.leader_elect,
            leader_namespace=args.leader_election_namespace or pod_ns,
            leader_lease=args.leader_election_lease,
            metrics_port=args.metrics_port,
            metrics_host=args.metrics_host,
            signals_port=args.signals_port,
            signals_host=args.signals_host,
            signals_token_file=args.signals_token_file,
            signals_token_dir=args.signals_token_dir,
            signals_token_secret=args.signals_token_secret,
            signals_tls_cert_file=args.signals_tls_cert_file,
            signals_tls_key_file=args.signals_tls_key_file,
            signals_client_ca_file=args.signals_client_ca_file,
            signals_max_body_bytes=args.signals_max_body_bytes,
            signals_rate_limit=args.signals_rate_limit,
            signals_rate_burst=args.signals_rate_burst,
            signals_journal_namespace=(
                args.signals_journal_namespace or pod_ns or args.secrets_namespace or "default"
            ),
            opa_urls=tuple(dict.fromkeys(args.opa_url or ())),
            opa_token_file=args.opa_token_file,
            opa_bundle_port=args.opa_bundle_port,
            opa_bundle_signing_key_file=args.opa_bundle_signing_key_file,
            opa_bundle_signing_alg=args.opa_bundle_signing_alg,
            opa_bundle_key_id=args.opa_bundle_key_id,
            opa_policy_dir=Path(args.opa_policy_dir),
            shadow_adopt=args.shadow_adopt,
        )


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    env = os.environ.get
    run.add_argument(
        "--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    run.add_argument("--namespace", "-n", action="append", help="watch only this namespace (repeatable)")
    run.add_argument("--peering", metavar="NAME", help="use kopf peering NAME (crds/kopf/peering.yaml)")
    run.add_argument("--workers", type=int, default=8, help="concurrent reconcile workers")
    run.add_argument(
        "--startup-workers",
        type=int,
        default=32,
        help="concurrent reconcile workers for the first pass after start (at least --workers)",
    )
    run.add_argument("--resync-seconds", type=float, default=30.0, help="recompute decaying trust this often")
    run.add_argument(
        "--default-policy-mode",
        choices=["enforce", "audit"],
        default="enforce",
        help="mode of the built-in policy, for namespaces without a 'default' TrustPolicy",
    )
    run.add_argument("--secrets-namespace", help="the only namespace whose Secrets are read (default: own)")
    run.add_argument("--health-port", type=int, default=0, help="serve /healthz and /readyz here (0: off)")
    run.add_argument("--liveness", help=argparse.SUPPRESS)  # kopf's; kept for compatibility
    ha = run.add_argument_group("high availability")
    ha.add_argument("--leader-elect", action="store_true", help="only the holder of a Lease acts")
    ha.add_argument("--leader-election-namespace", help="namespace of the Lease (default: own)")
    ha.add_argument("--leader-election-lease", default="aitrust-operator", help="name of the Lease")
    mx = run.add_argument_group("metrics")
    mx.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus /metrics here (0: off)")
    mx.add_argument("--metrics-host", default="0.0.0.0", help="address of the metrics server")  # noqa: S104
    sig = run.add_argument_group("signal API")
    sig.add_argument("--signals-port", type=int, default=0, help="serve the signal API here (0: off)")
    sig.add_argument("--signals-host", default="0.0.0.0", help="address of the signal API")  # noqa: S104
    sig.add_argument("--signals-token-file", help="bearer tokens, one per line (a mounted Secret key)")
    sig.add_argument(
        "--signals-token-dir", help="a mounted Secret: each file is a caller, its content a token"
    )
    sig.add_argument(
        "--signals-token-secret", metavar="[NS/]NAME", help="read tokens from this Secret via the API"
    )
    sig.add_argument("--signals-tls-cert-file", help="serve HTTPS with this certificate")
    sig.add_argument("--signals-tls-key-file", help="private key of the certificate")
    sig.add_argument("--signals-client-ca-file", help="require client certificates from this CA (mutual TLS)")
    sig.add_argument("--signals-max-body-bytes", type=int, default=1 << 20, help="larger bodies get 413")
    sig.add_argument("--signals-rate-limit", type=float, default=5000.0, help="requests/s per caller; 0: off")
    sig.add_argument("--signals-rate-burst", type=float, default=10000.0, help="burst size per caller")
    sig.add_argument(
        "--signals-journal-namespace",
        help="namespace of the journal ConfigMaps that make acknowledged signals durable "
        "(default: own, else --secrets-namespace, else default)",
    )
    opa = run.add_argument_group("OPA")
    opa.add_argument(
        "--opa-url",
        action="append",
        default=[u for u in (env("AITRUST_OPA_URLS") or "").split(",") if u],
        help="OPA server to publish to (repeatable; env AITRUST_OPA_URLS, comma-separated)",
    )
    opa.add_argument("--opa-token-file", help="bearer token for OPA's API")
    opa.add_argument(
        "--opa-policy-dir",
        default=env("AITRUST_POLICY_DIR") or str(Path(__file__).resolve().parents[3] / "policies"),
        help="directory of the Rego policies to publish",
    )
    opa.add_argument("--opa-bundle-port", type=int, default=0, help="serve a signed OPA bundle here (0: off)")
    opa.add_argument("--opa-bundle-signing-key-file", help="PEM private key that signs the bundle")
    opa.add_argument("--opa-bundle-signing-alg", choices=["ES256", "RS256"], default="ES256")
    opa.add_argument("--opa-bundle-key-id", default="aitrust", help="keyid OPA verifies the bundle with")
    shadow = run.add_argument_group("shadow AI")
    shadow.add_argument(
        "--shadow-adopt",
        action="store_true",
        default=env("AITRUST_SHADOW_ADOPT", "").lower() in ("1", "true", "yes"),
        help="create an AIWorkload in audit mode (TrustPolicy aitrust-adopted) for each AI workload "
        "that none selects (env AITRUST_SHADOW_ADOPT)",
    )
    run.add_argument("-v", "--verbose", action="store_true")
