"""Write Kubernetes Events (``events.k8s.io/v1``) rendered by ``aitrust.render.events``."""

from __future__ import annotations

from typing import Any

from aitrust.kube.client import FIELD_MANAGER, Kube


async def push_event(kube: Kube, event: dict[str, Any]) -> None:
    namespace = event["metadata"]["namespace"]
    await kube.aio.request(
        "POST",
        f"/apis/events.k8s.io/v1/namespaces/{namespace}/events",
        event,
        params={"fieldManager": FIELD_MANAGER},
    )
