"""The Kubernetes API on the event loop, for the calls that acknowledge signals.

The official client is synchronous: each call runs in a worker thread, which must win the GIL
back from the busy event loop at every socket operation. Under signal load those hand-offs, not
the API server, made most of a journal write's latency. aiohttp (kopf's own HTTP client) keeps
the call on the loop. Credentials, CA and server come from the official client's configuration,
so this speaks as the same identity, and refreshing tokens (exec plugins, in-cluster token
files) are re-read through its hook on every call.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import aiohttp
from kubernetes import client
from kubernetes.client.exceptions import ApiException

TIMEOUT_S = 30.0
# Above the reconcile workers plus the urgent, endpoint and journal writers together, so that a
# signal's writes never wait for a connection behind a cold start's reconciles.
MAX_CONNECTIONS = 64
# Idle connections stay open this long (aiohttp's default is 15 s): a signal after a quiet
# minute must not pay for a new TLS handshake. The reconciler's resync keeps one in use.
KEEPALIVE_S = 75.0


def build_ssl_context(cfg: client.Configuration) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file or None)
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class AsyncKube:
    def __init__(self, configuration: client.Configuration) -> None:
        self.configuration = configuration
        self.host = configuration.host.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        auth = self.configuration.auth_settings().get("BearerToken")
        if auth and auth.get("value"):
            headers["Authorization"] = str(auth["value"])
        return headers

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            https = self.host.startswith("https:")
            connector = aiohttp.TCPConnector(
                limit=MAX_CONNECTIONS,
                keepalive_timeout=KEEPALIVE_S,
                ssl=build_ssl_context(self.configuration) if https else False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """The decoded JSON answer; an ApiException (with ``status``) for any non-2xx."""
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        async with self._client().request(
            method,
            self.host + path,
            data=data,
            params=params,
            headers=self._headers(content_type if data is not None else None),
        ) as response:
            raw = await response.read()
            if response.status >= 300:
                exc = ApiException(status=response.status, reason=response.reason)
                exc.body = raw.decode(errors="replace")
                raise exc
        return json.loads(raw) if raw else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
