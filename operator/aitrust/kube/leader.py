"""Leader election on a coordination.k8s.io Lease: with replicas, exactly one instance acts.

Every instance also labels its own Pod with its role (``aitrust.dev/role``: ``standby`` from the
start, ``leader`` once it leads and is synced), so that the signal and bundle Service, which
selects ``leader``, sends traffic to the only instance that ingests, while every replica is Ready.
"""

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

ROLE_LABEL = "aitrust.dev/role"
LEADER = "leader"
STANDBY = "standby"


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
        # No holder: released by a leader that shut down gracefully; free at once.
        if holder and holder != self.identity and not expired:
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

    def apply_release(self) -> bool:
        """Give the Lease up (a graceful shutdown), so a standby takes over at its next round
        instead of after the Lease expires. True if it was ours and is now free."""
        for _ in range(3):
            try:
                lease: dict[str, Any] = raw_json(
                    self.api.read_namespaced_lease(self.name, self.namespace, _preload_content=False)
                )
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return False
            lease["spec"] = build_released_lease_spec(spec, _now())
            try:
                # A compare-and-swap too: a renewal still in flight makes this 409, and we re-read.
                body: Any = lease  # raw JSON, as in try_acquire
                self.api.replace_namespaced_lease(
                    self.name, self.namespace, body, field_manager=FIELD_MANAGER
                )
            except ApiException as exc:
                if exc.status == 409:
                    continue
                raise
            self.is_leader = False
            log.info("released the Lease %s/%s", self.namespace, self.name)
            return True
        return False

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


def build_released_lease_spec(spec: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The spec of a Lease its holder gives up: no holder, and a renewTime already expired."""
    released = {k: v for k, v in spec.items() if k not in ("holderIdentity", "renewTime")}
    duration = int(spec.get("leaseDurationSeconds") or 1)
    released["renewTime"] = _fmt(now - timedelta(seconds=duration + 1))
    return released


def build_role_patch(role: str) -> dict[str, Any]:
    """A JSON merge patch that sets only the role label of a Pod."""
    if role not in (LEADER, STANDBY):
        raise ValueError(f"unknown role {role!r}")
    return {"metadata": {"labels": {ROLE_LABEL: role}}}


class PodRole:
    """Labels this instance's own Pod (POD_NAME in POD_NAMESPACE) with its role.

    Without POD_NAME or POD_NAMESPACE (tests, local runs) there is no Pod, and nothing is done.
    """

    def __init__(
        self, kube: Kube, name: str | None, namespace: str | None, retry_seconds: float = 2.0
    ) -> None:
        self.api = client.CoreV1Api(kube.api_client)
        self.name = name
        self.namespace = namespace
        self.retry_seconds = retry_seconds

    @property
    def enabled(self) -> bool:
        return bool(self.name and self.namespace)

    def patch_role(self, role: str) -> None:
        assert self.name and self.namespace, "no Pod to label"
        self.api.patch_namespaced_pod(
            self.name,
            self.namespace,
            build_role_patch(role),
            field_manager=FIELD_MANAGER,
            _content_type="application/merge-patch+json",
            _preload_content=False,  # the Pod is not needed back
        )

    async def apply(self, role: str) -> bool:
        """Label the Pod, retrying while the API server is unreachable. False if it cannot be done
        at all (the Pod does not exist, or RBAC forbids it): logged, and the operator carries on."""
        if not self.enabled:
            return False
        while True:
            try:
                await asyncio.to_thread(self.patch_role, role)
                log.info("labelled Pod %s/%s %s=%s", self.namespace, self.name, ROLE_LABEL, role)
                return True
            except ApiException as exc:
                if exc.status in (401, 403, 404, 422):
                    log.error(
                        "cannot label Pod %s/%s %s=%s (%s %s): the Service that selects the leader "
                        "will not find this instance",
                        self.namespace,
                        self.name,
                        ROLE_LABEL,
                        role,
                        exc.status,
                        exc.reason,
                    )
                    return False
                log.warning(
                    "labelling Pod %s/%s failed (%s); retrying", self.namespace, self.name, exc.status
                )
            except Exception as exc:  # API outage: keep trying
                log.warning("labelling Pod %s/%s failed (%s); retrying", self.namespace, self.name, exc)
            await asyncio.sleep(self.retry_seconds)
