"""Kopf registrations: parse nothing here, just feed the cache and the queue.

Only ``on.event`` handlers and startup/cleanup are used, so kopf writes no finalizers,
annotations or status of its own onto user objects: Argo CD and Flux see no churn.
"""

from __future__ import annotations

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
    await reconciler.start()
    log.info("aitrust operator synced: %d AIWorkloads", reconciler.store.count("AIWorkload"))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
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
