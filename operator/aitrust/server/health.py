"""Liveness and readiness for the kubelet.

Alive while the loop runs. Ready means "healthy and able to take over": a standby replica once
started, the leader once synced (``controller.handlers.is_ready``). Readiness does not route
signals: the signal Service selects the Pod labelled ``aitrust.dev/role: leader``.
"""

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
        return web.json_response({"status": "starting or syncing"}, status=503)

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
