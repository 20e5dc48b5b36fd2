"""Liveness and readiness for the kubelet: alive while the loop runs, ready only when leading and synced."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web


async def start_health_server(host: str, port: int, ready: Callable[[], bool]) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        if ready():
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "standby or syncing"}, status=503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def stop(runner: web.AppRunner | None) -> None:
    if runner is not None:
        await asyncio.shield(runner.cleanup())
