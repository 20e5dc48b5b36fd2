"""A signal endpoint that does nothing: the load generator's own ceiling on this machine.

``python -m bench.lib.nullserver PORT`` answers every POST like the signal API would for one
accepted signal, so ingestion results can be read against what the client can drive at all.
"""

from __future__ import annotations

import sys

from aiohttp import web


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"received": 1, "accepted": 1, "duplicates": 0})


def main() -> None:
    app = web.Application()
    app.router.add_post("/v1/signals/falco", accept)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
