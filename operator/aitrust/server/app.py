"""The signal HTTP API, served from the operator process by ``aitrust.server.http1``."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aitrust import __version__, metrics
from aitrust.controller.reconciler import Reconciler
from aitrust.core.mapping import WorkloadIndex, build_workload_index, map_signal
from aitrust.core.parsers import PARSERS, build_openapi_schemas
from aitrust.core.parsers.base import PayloadError
from aitrust.core.signal import Signal
from aitrust.server.auth import RateLimiter, TokenStore
from aitrust.server.http1 import Request, RequestHead, Response, Server, json_response
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
    _routes: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = field(init=False)

    def __post_init__(self) -> None:
        self._routes = self.routes()

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

    # --- HTTP (aitrust.server.http1.Application) --------------------------------------

    def routes(self) -> dict[str, dict[str, Callable[[Request], Awaitable[Response]]]]:
        table: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {
            path: {"POST": self.handle_signal} for path in ENDPOINTS
        }
        for path, handler in (
            ("/v1/signals/unmatched", self.handle_unmatched),
            ("/v1/inventory/shadow", self.handle_shadow),
            ("/healthz", self.healthz),
            ("/readyz", self.readyz),
            ("/openapi.json", self.openapi),
            ("/metrics", self.metrics),
        ):
            table[path] = {"GET": handler, "HEAD": handler}
        return table

    def admit(self, head: RequestHead) -> Response | None:
        """Refusals that need no body: route, caller, rate, media type and size."""
        methods = self._routes.get(head.path)
        if methods is None:
            return _error(404, f"no such path: {head.path[:200]}")
        if head.method not in methods:
            return _error(405, f"method {head.method} not allowed", headers={"Allow": ", ".join(methods)})
        if head.path in ("/v1/signals/unmatched", "/v1/inventory/shadow"):
            if self.tokens.authenticate(head.headers.get("authorization")) is None:
                return _unauthorized()
            return None
        kind = ENDPOINTS.get(head.path)
        if kind is None:
            return None
        source = SOURCE_OF[kind]
        caller = self.tokens.authenticate(head.headers.get("authorization"))
        if caller is None:
            metrics.SIGNALS.labels(source, "rejected").inc()
            return _unauthorized()
        wait = self.limiter.acquire(caller)
        if wait > 0:
            metrics.SIGNALS.labels(source, "rejected").inc()
            return _error(429, "rate limit exceeded", headers={"Retry-After": str(max(1, round(wait + 0.5)))})
        if head.content_type not in JSON_TYPES:
            metrics.SIGNALS.labels(source, "rejected").inc()
            return _error(415, f"content type must be application/json, not {head.content_type or 'none'}")
        if head.content_length is not None and head.content_length > self.max_body:
            return self.body_too_large(head)
        return None

    def body_too_large(self, head: RequestHead) -> Response:
        kind = ENDPOINTS.get(head.path)
        if kind is not None:
            metrics.SIGNALS.labels(SOURCE_OF[kind], "rejected").inc()
        return _error(413, f"body larger than {self.max_body} bytes")

    def respond(self, request: Request) -> Awaitable[Response]:
        return self._routes[request.head.path][request.head.method](request)

    # --- handlers ------------------------------------------------------------------

    async def handle_signal(self, request: Request) -> Response:
        kind = ENDPOINTS[request.head.path]
        source = SOURCE_OF[kind]
        try:
            payload = json.loads(request.body)
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
    ) -> Response:
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
        return json_response(body)

    async def handle_unmatched(self, _: Request) -> Response:
        return json_response({"unmatched": list(self.unmatched)})

    async def handle_shadow(self, _: Request) -> Response:
        current = self.shadow.current if self.shadow is not None else []
        return json_response({"shadowAI": [s.model_dump() for s in current]})

    async def healthz(self, _: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, _: Request) -> Response:
        if not self.reconciler.synced.is_set():
            return _error(503, "not synced")
        return json_response({"status": "ready"})

    async def openapi(self, _: Request) -> Response:
        return json_response(build_openapi_document())

    async def metrics(self, _: Request) -> Response:
        return Response(200, generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST)


def _unauthorized() -> Response:
    challenge = {"WWW-Authenticate": 'Bearer realm="aitrust"'}
    return _error(401, "missing or invalid bearer token", headers=challenge)


def _error(
    status: int, message: str, *, path: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    body: dict[str, Any] = {"error": message}
    if path is not None:
        body["path"] = path
    return json_response(body, status=status, headers=headers)


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


class SignalServer:
    """The running signal API: its listener and the token refresher."""

    def __init__(self, server: Server, refresher: asyncio.Task[None]) -> None:
        self.server = server
        self.refresher = refresher

    async def cleanup(self) -> None:
        self.refresher.cancel()
        await self.server.close()


async def start_signal_api(
    api: SignalApi, host: str, port: int, ssl_context: ssl.SSLContext | None
) -> SignalServer:
    server = Server(api, asyncio.get_running_loop())
    await server.start(host, port, ssl_context)
    refresher = asyncio.create_task(api.tokens.keep_fresh(), name="signal token refresh")
    log.info("signal API listening on %s://%s:%d", "https" if ssl_context else "http", host, port)
    return SignalServer(server, refresher)
