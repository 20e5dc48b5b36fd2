"""The signal HTTP API (aiohttp, already a kopf dependency), served from the operator process."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aitrust import __version__, metrics
from aitrust.controller.reconciler import Reconciler
from aitrust.core.mapping import WorkloadIndex, build_workload_index, map_signal
from aitrust.core.parsers import PARSERS, build_openapi_schemas
from aitrust.core.parsers.base import PayloadError
from aitrust.core.signal import Signal
from aitrust.server.auth import RateLimiter, TokenStore
from aitrust.server.ingestor import CommitError, Ingestor

log = logging.getLogger("aitrust.signals")

ENDPOINTS = {
    "/v1/signals/falco": "falco",
    "/v1/signals/cloudtrail": "cloudtrail",
    "/v1/signals/azure": "azure",
    "/v1/signals/gcp": "gcp",
    "/v1/signals": "cloudevents",
}
SOURCE_OF = {
    "falco": "falco",
    "cloudtrail": "cloudtrail",
    "azure": "azure",
    "gcp": "gcp",
    "cloudevents": "custom",
}
JSON_TYPES = {"application/json", "application/cloudevents+json", "application/cloudevents-batch+json"}


@dataclass
class SignalApi:
    reconciler: Reconciler
    tokens: TokenStore
    ingestor: Ingestor
    limiter: RateLimiter = field(default_factory=RateLimiter)
    max_body: int = 1 << 20
    shadow: Any = None  # the ShadowInventory, when running
    unmatched: collections.deque[dict[str, Any]] = field(
        default_factory=lambda: collections.deque(maxlen=200)
    )
    _index: WorkloadIndex | None = None
    _index_version: int = -1

    def index(self) -> WorkloadIndex:
        store = self.reconciler.store
        if self._index is None or self._index_version != store.version:
            self._index = build_workload_index(
                self.reconciler.specs.parse_all(store.all("AIWorkload")),
                list(store.all("Pod")),
                list(store.all("ServiceAccount")),
            )
            self._index_version = store.version
        return self._index

    # --- handlers ------------------------------------------------------------------

    async def handle_signal(self, request: web.Request) -> web.Response:
        kind = ENDPOINTS[request.path]
        source = SOURCE_OF[kind]
        caller = self.tokens.authenticate(request.headers.get("Authorization"))
        if caller is None:
            metrics.SIGNALS.labels(source, "rejected").inc()
            return _error(
                401, "missing or invalid bearer token", headers={"WWW-Authenticate": 'Bearer realm="aitrust"'}
            )
        wait = self.limiter.acquire(caller)
        if wait > 0:
            metrics.SIGNALS.labels(source, "rejected").inc()
            return _error(429, "rate limit exceeded", headers={"Retry-After": str(max(1, round(wait + 0.5)))})
        if request.content_type not in JSON_TYPES:
            metrics.SIGNALS.labels(source, "rejected").inc()
            return _error(415, f"content type must be application/json, not {request.content_type or 'none'}")
        if request.content_length is not None and request.content_length > self.max_body:
            metrics.SIGNALS.labels(source, "rejected").inc()
            return _error(413, f"body larger than {self.max_body} bytes")
        try:
            raw = await request.content.read(self.max_body + 1)
        except asyncio.CancelledError:
            raise
        if len(raw) > self.max_body:
            metrics.SIGNALS.labels(source, "rejected").inc()
            return _error(413, f"body larger than {self.max_body} bytes")
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            metrics.SIGNALS.labels(source, "rejected").inc()
            return _error(400, f"malformed JSON: {exc}", path="$")
        if not self.reconciler.synced.is_set():
            return _error(503, "operator is starting; retry", headers={"Retry-After": "1"})
        try:
            result = PARSERS[kind](payload, datetime.now(UTC))
        except PayloadError as exc:
            metrics.SIGNALS.labels(source, "rejected").inc()
            return _error(400, exc.message, path=exc.path)
        return await self._ingest(source, result.signals, result.rejected, result.notes)

    async def _ingest(
        self, source: str, signals: list[Signal], rejected: list[Any], notes: list[Any]
    ) -> web.Response:
        index = self.index()
        by_workload: dict[tuple[str, str], list[Signal]] = collections.defaultdict(list)
        matched: list[dict[str, Any]] = []
        unmatched: list[dict[str, Any]] = []
        for signal in signals:
            mapping = map_signal(index, signal)
            if not mapping.workloads:
                entry = {
                    "id": signal.id,
                    "source": signal.source,
                    "rule": signal.rule,
                    "reason": mapping.reason,
                    "time": signal.time.isoformat(),
                }
                unmatched.append(entry)
                self.unmatched.append(entry)
                continue
            for key in mapping.workloads:
                by_workload[key].append(signal)
            matched.append({"id": signal.id, "workloads": [f"{ns}/{n}" for ns, n in mapping.workloads]})
        try:
            committed = await self.ingestor.submit_many(by_workload)
        except CommitError as exc:
            return _error(503, f"could not record signals durably: {exc}", headers={"Retry-After": "2"})
        added, duplicates = committed.added, committed.duplicates
        metrics.SIGNALS.labels(source, "accepted").inc(added)
        metrics.SIGNALS.labels(source, "duplicate").inc(duplicates)
        metrics.SIGNALS.labels(source, "unmatched").inc(len(unmatched))
        metrics.SIGNALS.labels(source, "rejected").inc(len(rejected))
        body = {
            "received": len(signals) + len(rejected),
            "accepted": added,
            "duplicates": duplicates,
            "matched": matched,
            "unmatched": unmatched,
            "rejected": [r.model_dump() for r in rejected],
            "ignored": [n.model_dump() for n in notes],
        }
        return web.json_response(body, status=200)

    async def handle_unmatched(self, request: web.Request) -> web.Response:
        if self.tokens.authenticate(request.headers.get("Authorization")) is None:
            return _error(401, "missing or invalid bearer token")
        return web.json_response({"unmatched": list(self.unmatched)})

    async def handle_shadow(self, request: web.Request) -> web.Response:
        if self.tokens.authenticate(request.headers.get("Authorization")) is None:
            return _error(401, "missing or invalid bearer token")
        current = self.shadow.current if self.shadow is not None else []
        return web.json_response({"shadowAI": [s.model_dump() for s in current]})

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, _: web.Request) -> web.Response:
        if not self.reconciler.synced.is_set():
            return _error(503, "not synced")
        return web.json_response({"status": "ready"})

    async def openapi(self, _: web.Request) -> web.Response:
        return web.json_response(build_openapi_document())

    async def metrics(self, _: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _token_refresher(self, _: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self.tokens.keep_fresh(), name="signal token refresh")
        yield
        task.cancel()

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body + 1)
        app.cleanup_ctx.append(self._token_refresher)
        for path in ENDPOINTS:
            app.router.add_post(path, self.handle_signal)
        app.router.add_get("/v1/signals/unmatched", self.handle_unmatched)
        app.router.add_get("/v1/inventory/shadow", self.handle_shadow)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/openapi.json", self.openapi)
        app.router.add_get("/metrics", self.metrics)
        return app


def _error(
    status: int, message: str, *, path: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if path is not None:
        body["path"] = path
    return web.json_response(body, status=status, headers=headers)


def build_openapi_document() -> dict[str, Any]:
    schemas = build_openapi_schemas()
    error = {
        "type": "object",
        "properties": {"error": {"type": "string"}, "path": {"type": "string"}},
        "required": ["error"],
    }
    responses = {
        "200": {
            "description": "Processed: counts of accepted, duplicate, unmatched and rejected records",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "400": {
            "description": "Malformed JSON or schema violation; `path` names the field",
            "content": {"application/json": {"schema": error}},
        },
        "401": {
            "description": "Missing or invalid bearer token",
            "content": {"application/json": {"schema": error}},
        },
        "413": {"description": "Body too large", "content": {"application/json": {"schema": error}}},
        "415": {"description": "Not JSON", "content": {"application/json": {"schema": error}}},
        "429": {
            "description": "Rate limited; see Retry-After",
            "content": {"application/json": {"schema": error}},
        },
        "503": {
            "description": "Not recorded durably; retry",
            "content": {"application/json": {"schema": error}},
        },
    }
    paths = {
        path: {
            "post": {
                "operationId": f"post_{kind}",
                "summary": f"Ingest {kind} signals",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": schemas[kind]}}},
                "responses": responses,
            }
        }
        for path, kind in ENDPOINTS.items()
    }
    for path in ("/healthz", "/readyz"):
        paths[path] = {"get": {"operationId": path.strip("/"), "responses": {"200": {"description": "OK"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "aitrust signal API", "version": __version__},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def build_ssl_context(cert: str | None, key: str | None, client_ca: str | None) -> ssl.SSLContext | None:
    if not cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no valid client certificate, no connection
    return ctx


async def start_signal_api(
    api: SignalApi, host: str, port: int, ssl_context: ssl.SSLContext | None
) -> web.AppRunner:
    runner = web.AppRunner(api.build_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
    log.info("signal API listening on %s://%s:%d", "https" if ssl_context else "http", host, port)
    return runner
