"""Kopf registrations: they only feed the cache and the queue.

Only ``on.event`` handlers and startup/cleanup are used, so kopf writes no finalizers,
annotations or status of its own onto user objects: Argo CD and Flux see no churn.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any, cast

import kopf

from aitrust.api.v1alpha1 import GROUP, VERSION
from aitrust.controller.memories import freeze_heap
from aitrust.controller.options import OperatorOptions
from aitrust.controller.reconciler import Reconciler
from aitrust.kube.client import Kube, load_config

log = logging.getLogger("aitrust.handlers")


def _options(memo: Any) -> OperatorOptions:
    options: OperatorOptions = memo["options"]
    return options


def _reconciler(memo: Any) -> Reconciler:
    rec: Reconciler = memo["reconciler"]
    return rec


@kopf.on.login()
def login(memo: Any, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """Credentials from the kubeconfig given on the command line, else kopf's in-cluster login."""
    kubeconfig = _options(memo).kubeconfig
    if not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return kopf.login_with_service_account(**kwargs)
    cfg = load_config(kubeconfig).configuration
    token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        scheme="Bearer" if token else None,
        token=token.removeprefix("Bearer ").strip() if token else None,
    )


class EventOnlyDiffBase(kopf.AnnotationsDiffBaseStorage):
    """Only ``on.event`` handlers here: kopf's per-event deep copies of every object, made to
    diff it against its last-handled state, are pure cost (they were the top of the profile)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.persistence.diffbase_storage = EventOnlyDiffBase()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="aitrust.dev")
    settings.watching.server_timeout = 300
    # Paged initial listings, and per-object workers that exit soon after their last event: a
    # start with thousands of pods must not hold every body, and a task per object, at once.
    settings.watching.chunk_size = 500
    # A listing of 10,000 objects spawns a worker per object; at 1 s each they were all alive
    # at once (tens of MB that fragmentation then kept).
    settings.queueing.idle_timeout = 0.2
    settings.networking.request_timeout = 60
    options = _options(memo)
    kube = Kube(load_config(options.kubeconfig))
    opa_policies = None
    if options.opa_urls or options.opa_bundle_port:
        from aitrust.kube.opa import load_policies

        opa_policies = load_policies(options.opa_policy_dir)
    if options.opa_bundle_port and not options.opa_bundle_signing_key_file:
        raise kopf.PermanentError(
            "--opa-bundle-port needs --opa-bundle-signing-key-file: bundles are always signed"
        )
    reconciler = Reconciler(
        kube,
        memo["store"],
        workers=options.workers,
        startup_workers=options.startup_workers,
        opa_urls=options.opa_urls,
        opa_policies=opa_policies,
        opa_token_file=options.opa_token_file,
        resync_seconds=options.resync_seconds,
        default_mode=options.default_policy_mode,
        namespaces=options.namespaces,
        journal_namespace=options.signals_journal_namespace if options.signals_port else None,
    )
    memo["reconciler"] = reconciler
    memo["leading"] = False
    memo["standby"] = False
    if options.health_port:
        from aitrust.server.health import start_health_server

        memo["health_runner"] = await start_health_server(
            options.health_host, options.health_port, lambda: is_ready(memo, reconciler)
        )
    # Startup must return for kopf to watch (and to serve liveness): lead in the background.
    memo["lead_task"] = asyncio.create_task(lead(memo, kube, reconciler, options))


def is_ready(memo: Any, reconciler: Reconciler) -> bool:
    """Readiness means "healthy and able to take over": a standby is Ready once it is labelled
    standby (its kopf watches keep the store warm meanwhile); the leader once it is synced.
    Signals still reach the leader alone: the Service selects the ``leader`` role label."""
    if memo["leading"]:
        return reconciler.synced.is_set()
    return bool(memo["standby"])


async def lead(memo: Any, kube: Kube, reconciler: Reconciler, options: OperatorOptions) -> None:
    role = None
    if options.leader_elect:
        from aitrust.kube.leader import LEADER, STANDBY, LeaderElector, PodRole

        if not options.leader_namespace:
            raise kopf.PermanentError("--leader-elect needs --leader-election-namespace (or POD_NAMESPACE)")
        elector = LeaderElector(
            kube, options.leader_namespace, options.leader_lease, identity=os.environ.get("POD_NAME")
        )
        memo["elector"] = elector
        # Standby first, before reporting Ready: a container restarted after it lost the Lease
        # must not keep the leader label (and the signals) it had.
        role = PodRole(kube, os.environ.get("POD_NAME"), os.environ.get("POD_NAMESPACE"))
        await role.apply(STANDBY)
        memo["standby"] = True
        await elector.wait_for_leadership()
        memo["standby"] = False  # not Ready while the new leader syncs
        memo["hold_task"] = asyncio.create_task(elector.hold())
    await reconciler.start()
    freeze_heap()  # before signals arrive: the collection it starts with pauses once
    from aitrust.controller.shadow import ShadowInventory

    shadow = ShadowInventory(
        kube,
        reconciler.store,
        specs=reconciler.specs,
        adopt=options.shadow_adopt,
        namespaces=reconciler.namespaces,
    )
    shadow.start()
    memo["shadow"] = shadow
    if options.signals_port:
        memo["signal_runner"] = await start_signals(options, reconciler, kube, shadow)
    if options.opa_bundle_port:
        from aitrust.server.bundles import BundleServer, start_bundle_server

        bundles = BundleServer(
            reconciler.build_full_opa_data,
            reconciler.opa_policies,
            Path(options.opa_bundle_signing_key_file or ""),
            "RS256" if options.opa_bundle_signing_alg == "RS256" else "ES256",
            options.opa_bundle_key_id,
        )
        memo["bundle_runner"] = await start_bundle_server(
            bundles, options.signals_host, options.opa_bundle_port
        )
    memo["leading"] = True
    if role is not None:
        # Before the "synced" line: whoever waits for it finds the signal Service's endpoint.
        await role.apply(LEADER)
    log.info("aitrust operator synced: %d AIWorkloads", reconciler.store.count("AIWorkload"))


async def start_signals(options: OperatorOptions, reconciler: Reconciler, kube: Kube, shadow: Any) -> Any:
    from aitrust.server.app import SignalApi, build_ssl_context, start_signal_api
    from aitrust.server.auth import RateLimiter, TokenStore, directory_loader, file_loader, secret_loader
    from aitrust.server.ingestor import Ingestor

    if options.signals_token_file:
        loader = file_loader(Path(options.signals_token_file))
    elif options.signals_token_dir:
        loader = directory_loader(Path(options.signals_token_dir))
    elif options.signals_token_secret:
        ns, _, name = options.signals_token_secret.rpartition("/")
        ns = ns or options.secrets_namespace or "default"
        loader = secret_loader(lambda: kube.read_secret_data(ns, name))
    else:
        raise kopf.PermanentError(
            "the signal API needs --signals-token-file, -dir or -secret: it never runs open"
        )
    tokens = TokenStore(loader)
    await asyncio.to_thread(tokens.refresh)
    ingestor = Ingestor(reconciler)
    ingestor.start()
    api = SignalApi(
        reconciler,
        tokens,
        ingestor,
        limiter=RateLimiter(rate=options.signals_rate_limit, burst=options.signals_rate_burst),
        max_body=options.signals_max_body_bytes,
        shadow=shadow,
    )
    ssl_context = build_ssl_context(
        options.signals_tls_cert_file, options.signals_tls_key_file, options.signals_client_ca_file
    )
    return await start_signal_api(api, options.signals_host, options.signals_port, ssl_context)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if "shadow" in memo:
        await memo["shadow"].stop()
    if "lead_task" in memo:
        memo["lead_task"].cancel()
    for runner in ("signal_runner", "bundle_runner", "health_runner"):
        if runner in memo:
            await memo[runner].cleanup()
    if "reconciler" in memo:
        await _reconciler(memo).stop()
    # The Lease is renewed until here: a standby must not start while this instance still writes.
    if "hold_task" in memo:
        memo["hold_task"].cancel()
    # Last, once nothing acts any more: hand the Lease over now rather than at its expiry, so a
    # rollout or a drain moves leadership to the standby at its next retry.
    elector = memo.get("elector")
    if elector is not None and elector.is_leader:
        try:
            await asyncio.to_thread(elector.apply_release)
        except Exception as exc:
            log.warning("could not release the Lease (%s); the standby takes over when it expires", exc)


@kopf.on.event(GROUP, VERSION, "aiworkloads")
async def aiworkload_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_workload_event(dict(event["object"]), event["type"] == "DELETED")


@kopf.on.event(GROUP, VERSION, "modelendpoints")
async def modelendpoint_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_target_event("ModelEndpoint", dict(event["object"]), event["type"] == "DELETED")


@kopf.on.event(GROUP, VERSION, "datasources")
async def datasource_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_target_event("DataSource", dict(event["object"]), event["type"] == "DELETED")


@kopf.on.event(GROUP, VERSION, "trustpolicies")
async def trustpolicy_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_policy_event(dict(event["object"]), event["type"] == "DELETED")


@kopf.on.event("", "v1", "pods")
async def pod_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_pod_event(dict(event["object"]), event["type"] == "DELETED")


@kopf.on.event("", "v1", "services")
async def service_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_service_event(dict(event["object"]), event["type"] == "DELETED")


@kopf.on.event("", "v1", "serviceaccounts")
async def serviceaccount_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_serviceaccount_event(dict(event["object"]), event["type"] == "DELETED")


@kopf.on.event(
    "networking.k8s.io", "v1", "networkpolicies", labels={"app.kubernetes.io/managed-by": "aitrust"}
)
async def networkpolicy_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_networkpolicy_event(dict(event["object"]), event["type"] == "DELETED")
