"""A small async client of the local control plane's API server (client-certificate auth)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx


class ApiServer:
    def __init__(self, server: str, pki: Path, connections: int = 32) -> None:
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        self._ctx = ctx
        self.server = server
        self.client = httpx.AsyncClient(
            base_url=server,
            verify=ctx,
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def get(self, path: str, **params: str) -> Any:
        r = await self.client.get(path, params=params)
        r.raise_for_status()
        return r.json()

    async def text(self, path: str) -> str:
        r = await self.client.get(path)
        r.raise_for_status()
        return r.text

    async def exists(self, path: str) -> bool:
        r = await self.client.get(path)
        return r.status_code == 200

    async def create(self, collection: str, body: dict[str, Any], attempts: int = 60) -> None:
        """POST, tolerating AlreadyExists; retries while the namespace's ServiceAccount is missing."""
        for _ in range(attempts):
            r = await self.client.post(collection, json=body)
            if r.status_code in (200, 201, 202, 409):
                return
            if r.status_code in (403, 429, 500, 503, 504):
                await asyncio.sleep(0.2)
                continue
            raise RuntimeError(f"POST {collection} -> {r.status_code}: {r.text[:300]}")
        raise RuntimeError(f"POST {collection} kept failing: {r.status_code} {r.text[:300]}")

    async def create_many(
        self,
        items: Sequence[tuple[str, dict[str, Any]]],
        concurrency: int = 24,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        done = 0

        async def worker() -> None:
            nonlocal done
            while not queue.empty():
                path, body = queue.get_nowait()
                await self.create(path, body)
                done += 1
                if progress is not None and done % 1000 == 0:
                    progress(done)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def merge_patch_status(self, path: str, status: dict[str, Any]) -> None:
        r = await self.client.patch(
            path + "/status",
            content=json.dumps({"status": status}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        r.raise_for_status()

    async def watch(
        self, collection: str, resource_version: str, **params: str
    ) -> AsyncIterator[dict[str, Any]]:
        """Events of a watch from ``resource_version``; ends when the server closes the stream."""
        query = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true", **params}
        # A watch stays open for minutes: no read timeout, only a connect timeout.
        timeout = httpx.Timeout(10.0, read=None)
        async with (
            httpx.AsyncClient(base_url=self.server, verify=self._ctx, timeout=timeout) as client,
            client.stream("GET", collection, params=query) as r,
        ):
            r.raise_for_status()
            async for line in r.aiter_lines():
                if line:
                    yield json.loads(line)
