"""Leader election on a coordination.k8s.io Lease: with replicas, exactly one instance acts."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aitrust.kube.client import FIELD_MANAGER, Kube, raw_json

log = logging.getLogger("aitrust.leader")


def _now() -> datetime:
    return datetime.now(UTC)


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str = "aitrust-operator",
        identity: str | None = None,
        lease_seconds: int = 10,
        retry_seconds: float = 2.0,
    ) -> None:
        self.api = client.CoordinationV1Api(kube.api_client)
        self.namespace = namespace
        self.name = name
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.lease_seconds = lease_seconds
        self.retry_seconds = retry_seconds
        self.is_leader = False

    def try_acquire(self) -> bool:
        """One round: create, renew or take over an expired Lease. True while we hold it."""
        now = _now()
        try:
            lease: dict[str, Any] = raw_json(
                self.api.read_namespaced_lease(self.name, self.namespace, _preload_content=False)
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, now, 0),
            }
            try:
                self.api.create_namespaced_lease(self.namespace, body, field_manager=FIELD_MANAGER)  # type: ignore[arg-type]
            except ApiException as create_exc:
                if create_exc.status == 409:
                    return False
                raise
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
        duration = timedelta(seconds=spec.get("leaseDurationSeconds") or self.lease_seconds)
        expired = renewed is None or now > renewed + duration
        if holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
        acquired = _parse(spec.get("acquireTime")) if holder == self.identity else now
        lease["spec"] = self._spec(acquired or now, now, transitions)
        try:
            # resourceVersion in the body makes this a compare-and-swap: two takers cannot both win.
            self.api.replace_namespaced_lease(self.name, self.namespace, lease, field_manager=FIELD_MANAGER)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def _spec(self, acquired: datetime, renewed: datetime, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_seconds,
            "acquireTime": _fmt(acquired),
            "renewTime": _fmt(renewed),
            "leaseTransitions": transitions,
        }

    async def wait_for_leadership(self) -> None:
        log.info("waiting to lead (Lease %s/%s as %s)", self.namespace, self.name, self.identity)
        while True:
            try:
                if await asyncio.to_thread(self.try_acquire):
                    self.is_leader = True
                    log.info("became the leader")
                    return
            except Exception as exc:  # API outage: keep trying
                log.warning("leader election round failed: %s", exc)
            await asyncio.sleep(self.retry_seconds)

    async def hold(self) -> None:
        """Renew until we cannot; then stop the process, so that nothing is enforced twice."""
        deadline = _now() + timedelta(seconds=self.lease_seconds)
        while True:
            await asyncio.sleep(self.retry_seconds)
            try:
                if await asyncio.to_thread(self.try_acquire):
                    deadline = _now() + timedelta(seconds=self.lease_seconds)
                    continue
                log.error("lost the Lease to another instance; exiting")
            except Exception as exc:
                if _now() < deadline:
                    log.warning("could not renew the Lease (%s); retrying", exc)
                    continue
                log.error("could not renew the Lease before it expired; exiting")
            os._exit(3)
