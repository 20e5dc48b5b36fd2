"""Serve the signed OPA bundle for OPA instances that prefer to pull (services + bundles config)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from aitrust.render.bundle import Algorithm, render_bundle


class BundleServer:
    def __init__(
        self,
        data: Callable[[], dict[str, Any]],
        policies: dict[str, str],
        key_file: Path,
        algorithm: Algorithm,
        key_id: str,
    ) -> None:
        self.data = data
        self.policies = policies
        self.key_pem = key_file.read_bytes()
        self.algorithm = algorithm
        self.key_id = key_id
        self._cache: tuple[str, bytes] | None = None

    def current(self) -> tuple[str, bytes]:
        data = self.data()
        revision = hashlib.sha256(json.dumps([data, self.policies], sort_keys=True).encode()).hexdigest()[:16]
        if self._cache is None or self._cache[0] != revision:
            self._cache = (
                revision,
                render_bundle(data, self.policies, revision, self.key_pem, self.algorithm, self.key_id),
            )
        return self._cache

    async def handle(self, request: web.Request) -> web.Response:
        revision, body = self.current()
        etag = f'"{revision}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, headers={"Content-Type": "application/gzip", "ETag": etag})


async def start_bundle_server(server: BundleServer, host: str, port: int) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/bundles/aitrust.tar.gz", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
