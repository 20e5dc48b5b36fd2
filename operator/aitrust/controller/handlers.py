"""Kopf registrations: parse nothing here, just feed the cache and the queue.

Only ``on.event`` handlers and startup/cleanup are used, so kopf writes no finalizers,
annotations or status of its own onto user objects: Argo CD and Flux see no churn.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import kopf

from aitrust.api.v1alpha1 import GROUP, VERSION
from aitrust.controller.reconciler import Reconciler
from aitrust.kube.client import Kube, load_config

log = logging.getLogger("aitrust.handlers")


def _reconciler(memo: Any) -> Reconciler:
    rec: Reconciler = memo["reconciler"]
    return rec


@kopf.on.login()
def login(memo: Any, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """Credentials from the kubeconfig given on the command line, else kopf's in-cluster login."""
    kubeconfig = memo.get("kubeconfig")
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


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    kube = Kube(load_config(memo.get("kubeconfig")))
    reconciler = Reconciler(
        kube,
        memo["store"],
        workers=memo.get("workers", 8),
        opa_urls=tuple(memo.get("opa_urls") or ()),
        opa_policies=memo.get("opa_policies"),
        resync_seconds=memo.get("resync_seconds", 30.0),
    )
    memo["reconciler"] = reconciler
    if memo.get("leader_namespace"):
        from aitrust.kube.leader import LeaderElector

        elector = LeaderElector(kube, memo["leader_namespace"], memo.get("leader_name") or "aitrust-operator")
        await elector.wait_for_leadership()
        memo["leader_task"] = asyncio.create_task(elector.hold())
    await reconciler.start()
    if memo.get("signal_port") is not None:
        memo["signal_runner"] = await start_signals(memo, reconciler, kube)
    log.info("aitrust operator synced: %d AIWorkloads", reconciler.store.count("AIWorkload"))


async def start_signals(memo: Any, reconciler: Reconciler, kube: Kube) -> Any:
    from pathlib import Path

    from aitrust.server.app import SignalApi, build_ssl_context, start_signal_api
    from aitrust.server.auth import RateLimiter, TokenStore, directory_loader, secret_loader
    from aitrust.server.ingestor import Ingestor

    if memo.get("signal_token_dir"):
        loader = directory_loader(Path(memo["signal_token_dir"]))
    elif memo.get("signal_token_secret"):
        ns, name = memo["signal_token_secret"].split("/", 1)
        loader = secret_loader(lambda: kube.read_secret_data(ns, name))
    else:
        raise kopf.PermanentError("the signal API needs --signal-token-secret or --signal-token-dir")
    tokens = TokenStore(loader)
    await asyncio.to_thread(tokens.refresh)
    ingestor = Ingestor(reconciler)
    ingestor.start()
    api = SignalApi(
        reconciler,
        tokens,
        ingestor,
        limiter=RateLimiter(rate=memo.get("signal_rate", 5000.0), burst=2 * memo.get("signal_rate", 5000.0)),
        max_body=memo.get("signal_max_body", 1 << 20),
    )
    ssl_context = build_ssl_context(
        memo.get("signal_tls_cert"), memo.get("signal_tls_key"), memo.get("signal_client_ca")
    )
    return await start_signal_api(api, memo.get("signal_host", "0.0.0.0"), memo["signal_port"], ssl_context)  # noqa: S104


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if "signal_runner" in memo:
        await memo["signal_runner"].cleanup()
    if "reconciler" in memo:
        await _reconciler(memo).stop()


@kopf.on.event(GROUP, VERSION, "aiworkloads")
def aiworkload_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_workload_event(dict(event["object"]), event["type"] == "DELETED")


@kopf.on.event(GROUP, VERSION, "modelendpoints")
def modelendpoint_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_target_event("ModelEndpoint", dict(event["object"]), event["type"] == "DELETED")


@kopf.on.event(GROUP, VERSION, "datasources")
def datasource_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_target_event("DataSource", dict(event["object"]), event["type"] == "DELETED")


@kopf.on.event(GROUP, VERSION, "trustpolicies")
def trustpolicy_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_policy_event(dict(event["object"]), event["type"] == "DELETED")


@kopf.on.event("", "v1", "pods")
def pod_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_pod_event(dict(event["object"]), event["type"] == "DELETED")


@kopf.on.event("", "v1", "services")
def service_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_service_event(dict(event["object"]), event["type"] == "DELETED")


@kopf.on.event(
    "networking.k8s.io", "v1", "networkpolicies", labels={"app.kubernetes.io/managed-by": "aitrust"}
)
def networkpolicy_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_networkpolicy_event(dict(event["object"]), event["type"] == "DELETED")


@kopf.on.event("", "v1", "serviceaccounts")
def serviceaccount_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    _reconciler(memo).on_serviceaccount_event(dict(event["object"]), event["type"] == "DELETED")
