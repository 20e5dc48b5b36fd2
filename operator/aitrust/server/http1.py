"""A small, strict HTTP/1.1 server for the signal API.

aiohttp's server cost about 320 us of CPU a request on the 2-core reference machine, twice what
this protocol costs with the same JSON work (bench/README.md): at 2,000 signals/s that is a third
of the one core the operator has. The signal API needs little of HTTP: JSON bodies of bounded
size, keep-alive, pipelining, TLS (asyncio's), and nothing else. What it does not support it
refuses with a status, never by guessing: obsolete line folding, a body framed both by length and
by chunks, transfer codings other than ``chunked``, and HTTP versions other than 1.0 and 1.1.

The application is asked twice per request: ``admit`` with the head only (authentication and the
size limit run before a body is buffered), then ``respond`` with the whole body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote

log = logging.getLogger("aitrust.http")

MAX_HEAD = 32 * 1024
MAX_HEADERS = 100
KEEPALIVE_TIMEOUT = 75.0  # as aiohttp's: idle connections are closed after this long
REQUEST_TIMEOUT = 30.0  # a request's head and body must arrive within this (slow clients)
LINGER = 5.0  # after refusing a body, read and discard it this long so the client sees the answer
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
# Field lines: a token, a colon, a value without control characters but tab (so no bare CR/LF).
_FIELDS = re.compile(r"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00-\x08\x0a-\x1f\x7f]*\r\n)*")
_FIELD = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*\r\n")
_TARGET = re.compile(r"/[\x21-\x7e]*")


class HttpError(Exception):
    """The request cannot be read: answered with ``status`` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class RequestHead:
    method: str
    path: str
    query: str
    version: str
    headers: dict[str, str]  # lower-case names; repeated fields joined with ", "
    content_length: int | None  # None when the body is chunked

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case ("" when absent)."""
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclass(slots=True)
class Request:
    head: RequestHead
    body: bytes


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(doc).encode(), headers=headers or {})


class Application(Protocol):
    max_body: int

    def admit(self, head: RequestHead) -> Response | None:
        """An answer from the head alone (refusals), or None to read the body and ``respond``."""

    def respond(self, request: Request) -> Awaitable[Response]: ...

    def body_too_large(self, head: RequestHead) -> Response:
        """The answer when a chunked body outgrows ``max_body``."""


def parse_head(raw: bytes) -> RequestHead:
    """The request line and header fields (``raw`` ends before the empty line)."""
    text = raw.decode("latin-1")  # every byte decodes; the patterns below decide what is valid
    request_line, _, fields = text.partition("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if not _TOKEN.fullmatch(method):
        raise HttpError(400, "malformed method")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        if version.startswith("HTTP/"):
            raise HttpError(505, f"HTTP version {version[5:]!r} is not supported")
        raise HttpError(400, "malformed request line")
    if not _TARGET.fullmatch(target):
        raise HttpError(400, "request target must be an absolute path")
    fields = f"{fields}\r\n" if fields else ""
    if fields.count("\n") > MAX_HEADERS:
        raise HttpError(431, f"more than {MAX_HEADERS} header fields")
    if not _FIELDS.fullmatch(fields):
        # Also refuses obsolete line folding (a line starting with white space).
        lines = fields.split("\r\n")
        bad = next((line for line in lines if not _FIELDS.fullmatch(f"{line}\r\n")), "")
        raise HttpError(400, f"malformed header field {bad[:60]!r}")
    headers: dict[str, str] = {}
    for name, value in _FIELD.findall(fields):
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    path, _, query = target.partition("?")
    if "%" in path:
        try:
            path = unquote(path, errors="strict")
        except UnicodeDecodeError as exc:
            raise HttpError(400, "request path is not UTF-8") from exc
    return RequestHead(method, path, query, version, headers, _body_length(version, headers))


def _body_length(version: str, headers: dict[str, str]) -> int | None:
    coding = headers.get("transfer-encoding")
    length = headers.get("content-length")
    if coding is not None:
        # Both framings at once is how requests are smuggled past proxies: never guess.
        if length is not None:
            raise HttpError(400, "both Transfer-Encoding and Content-Length")
        if version == "HTTP/1.0":
            raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request")
        if coding.strip().lower() != "chunked":
            raise HttpError(501, f"transfer coding {coding!r} is not supported; use chunked")
        return None
    if length is None:
        return 0
    if not length.isdigit() or not length.isascii() or len(length) > 18:
        raise HttpError(400, "malformed Content-Length")
    return int(length)


class ChunkedBody:
    """Decodes a chunked body as it arrives, and never holds more than ``limit`` bytes of it."""

    __slots__ = ("_need", "_parts", "_size", "_state", "done", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self._state = "size"  # size, data, data-end, trailer
        self._need = 0
        self.done = False

    def feed(self, buf: bytes) -> int:
        """Consume what it can of ``buf``; how many bytes it used. Raises HttpError."""
        pos = 0
        while not self.done:
            if self._state == "data":
                take = min(self._need, len(buf) - pos)
                if take == 0:
                    return pos
                self._parts.append(buf[pos : pos + take])
                pos += take
                self._need -= take
                if self._need == 0:
                    self._state = "data-end"
                continue
            end = buf.find(b"\r\n", pos)
            if end < 0:
                if len(buf) - pos > 4096:
                    raise HttpError(400, "chunk line too long")
                return pos
            line = buf[pos:end]
            pos = end + 2
            if self._state == "data-end":
                if line:
                    raise HttpError(400, "chunk data longer than its size")
                self._state = "size"
            elif self._state == "size":
                size_text = line.split(b";", 1)[0].strip(b" \t")
                if not _CHUNK_SIZE.fullmatch(size_text):
                    raise HttpError(400, "malformed chunk size")
                size = int(size_text, 16)
                self._size += size
                if self._size > self.limit:
                    raise _TooLarge()
                if size == 0:
                    self._state = "trailer"
                else:
                    self._need = size
                    self._state = "data"
            elif not line:  # the empty line after the (ignored) trailer fields
                self.done = True
        return pos

    def body(self) -> bytes:
        return b"".join(self._parts)


class _TooLarge(Exception):
    pass


def _date() -> str:
    now = int(time.time())
    if _DATE[0] != now:
        _DATE[0], _DATE[1] = now, formatdate(now, usegmt=True)
    return str(_DATE[1])


_DATE: list[Any] = [0, ""]
_REASONS = {s.value: s.phrase for s in HTTPStatus}


def render_response(
    response: Response, *, head_only: bool = False, close: bool = False, version: str = "HTTP/1.1"
) -> bytes:
    lines = [
        f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        f"Date: {_date()}",
    ]
    lines.extend(f"{name}: {value}" for name, value in response.headers.items())
    if close:
        lines.append("Connection: close")
    elif version == "HTTP/1.0":
        lines.append("Connection: keep-alive")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return data if head_only else data + response.body


def _error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


class Connection(asyncio.Protocol):
    """One client connection: requests are read, answered in order, one at a time."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.head: RequestHead | None = None
        self.chunked: ChunkedBody | None = None
        self.busy = False  # a request is being answered
        self.closing = False
        self.discard = 0  # body bytes of a refused request still to skip
        self.write_paused = False
        self.read_paused = False
        self.started = 0.0  # when the request being read began to arrive
        self.last_active = self.loop.time()
        self.client_done = False  # the client half-closed its side

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        self.transport = None

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._advance()

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        if self.discard:
            skipped = min(self.discard, len(data))
            self.discard -= skipped
            data = data[skipped:]
            if self.closing:
                if self.discard == 0 and self.transport is not None:
                    self.transport.close()
                return
        if self.closing:
            return
        if not self.buf and not self.busy and self.head is None:
            self.started = self.last_active
        self.buf = self.buf + data if self.buf else data
        self._advance()

    def eof_received(self) -> bool:
        """The client is done sending: answer what it sent, then close."""
        self.client_done = True
        if not self.busy:
            self._close_when_idle()
        return True  # keep the write side open for the answers still due

    def _close_when_idle(self) -> None:
        if self.client_done and not self.busy and self.transport is not None:
            self.closing = True
            self.transport.close()

    # --- request cycle --------------------------------------------------------------------

    def _advance(self) -> None:
        """Read and dispatch the next complete request, if there is one and none is running."""
        while not self.busy and not self.closing and not self.write_paused:
            try:
                request = self._next_request()
            except HttpError as exc:
                self._refuse(_error(exc.status, exc.message))
                return
            if request is None:
                break
            self.busy = True
            self.loop.create_task(self._answer(request))
        # Pipelined requests beyond what one request may hold wait in the socket, not here.
        limit = MAX_HEAD + self.server.app.max_body
        if self.transport is not None:
            if len(self.buf) > limit and not self.read_paused:
                self.read_paused = True
                self.transport.pause_reading()
            elif len(self.buf) <= limit and self.read_paused:
                self.read_paused = False
                self.transport.resume_reading()

    def _next_request(self) -> Request | None:
        app = self.server.app
        while self.head is None:
            if self.discard:
                skipped = min(self.discard, len(self.buf))
                self.discard -= skipped
                self.buf = self.buf[skipped:]
                if self.discard:
                    return None
            self.buf = self.buf.lstrip(b"\r\n")  # RFC 9112 2.2: empty lines before a request
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    raise HttpError(431, f"request head larger than {MAX_HEAD} bytes")
                return None
            if end > MAX_HEAD:
                raise HttpError(431, f"request head larger than {MAX_HEAD} bytes")
            head = parse_head(self.buf[:end])
            self.buf = self.buf[end + 4 :]
            if head.content_length is not None and head.content_length > app.max_body:
                self._refuse(app.admit(head) or app.body_too_large(head), skip=head.content_length)
                return None
            early = app.admit(head)
            if early is not None:
                if head.content_length is None:
                    self._refuse(early)  # a chunked body is not worth decoding to skip it
                    return None
                self.discard = head.content_length
                self._send(early, head)
                if not head.keep_alive:
                    self._close_after_discard()
                    return None
                continue
            self.head = head
            if head.content_length is None:
                self.chunked = ChunkedBody(app.max_body)
            if head.headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        head = self.head
        if self.chunked is not None:
            try:
                used = self.chunked.feed(self.buf)
            except _TooLarge:
                self.head, self.chunked = None, None
                self._refuse(app.body_too_large(head))
                return None
            self.buf = self.buf[used:]
            if not self.chunked.done:
                return None
            body = self.chunked.body()
            self.chunked = None
        else:
            assert head.content_length is not None
            if len(self.buf) < head.content_length:
                return None
            body, self.buf = self.buf[: head.content_length], self.buf[head.content_length :]
        self.head = None
        return Request(head, body)

    async def _answer(self, request: Request) -> None:
        try:
            response = await self.server.app.respond(request)
        except Exception:  # the server never goes down with a request
            log.exception("unhandled error answering %s %s", request.head.method, request.head.path)
            response = _error(500, "internal error")
        self.busy = False
        if self.transport is None:
            return  # the client went away; the work is done (a retry is deduplicated)
        keep = request.head.keep_alive
        self._send(response, request.head, close=not keep)
        if not keep:
            self.closing = True
            self.transport.close()
            return
        self.started = self.loop.time()
        self._advance()
        self._close_when_idle()

    def _send(self, response: Response, head: RequestHead | None, close: bool = False) -> None:
        if self.transport is None:
            return
        self.transport.write(
            render_response(
                response,
                head_only=head is not None and head.method == "HEAD",
                close=close,
                version=head.version if head is not None else "HTTP/1.1",
            )
        )

    def _refuse(self, response: Response, skip: int = 0) -> None:
        """Answer and close; the rest of the request is read and dropped for a while first, or
        the client, still sending, would get a reset instead of the answer."""
        self._send(response, None, close=True)
        self.buf = b""
        self.head = None
        self.chunked = None
        self.discard = skip if skip else 1 << 62
        self._close_after_discard()

    def _close_after_discard(self) -> None:
        self.closing = True
        transport = self.transport
        if transport is None:
            return
        if self.read_paused:
            self.read_paused = False
            transport.resume_reading()
        if self.discard == 0:
            transport.close()
            return
        if transport.can_write_eof():
            transport.write_eof()  # the client sees the end of the answer now
        self.loop.call_later(self.server.linger, transport.close)

    def sweep(self, now: float) -> None:
        """Close a connection left idle, or one whose request is arriving too slowly."""
        if self.transport is None or self.busy or self.closing:
            return
        if self.buf or self.head is not None:
            if now - self.started > self.server.request_timeout:
                self._refuse(_error(408, "request not received in time"))
        elif now - self.last_active > self.server.keepalive_timeout:
            self.closing = True
            self.transport.close()


class Server:
    def __init__(self, app: Application, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.sweep_interval = 1.0
        self.request_timeout = REQUEST_TIMEOUT
        self.keepalive_timeout = KEEPALIVE_TIMEOUT
        self.linger = LINGER

    async def start(self, host: str, port: int, ssl: Any = None) -> None:
        self._server = await self.loop.create_server(lambda: Connection(self), host, port, ssl=ssl)
        self._sweeper = self.loop.create_task(self._sweep())

    @property
    def sockets(self) -> list[Any]:
        return list(self._server.sockets) if self._server else []

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            now = self.loop.time()
            for conn in list(self.connections):
                conn.sweep(now)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        if self._server is not None:
            await self._server.wait_closed()
