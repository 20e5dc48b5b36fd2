"""The signal API's HTTP/1.1 server: framing, limits and refusals, over real sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitrust.server.http1 import (
    ChunkedBody,
    HttpError,
    Request,
    RequestHead,
    Response,
    Server,
    _TooLarge,
    json_response,
    parse_head,
)


def test_parse_head_reads_the_request_line_and_fields() -> None:
    head = parse_head(
        b"POST /v1/signals/%66alco?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: Application/JSON; charset=utf-8"
        b"\r\nContent-Length: 12\r\nX-A: 1\r\nx-a: 2"
    )
    assert (head.method, head.path, head.query, head.version) == (
        "POST",
        "/v1/signals/falco",
        "x=1",
        "HTTP/1.1",
    )
    assert head.content_type == "application/json"
    assert head.content_length == 12
    assert head.headers["x-a"] == "1, 2"
    assert head.keep_alive


@pytest.mark.parametrize(
    ("raw", "status", "says"),
    [
        (b"POST /x", 400, "request line"),
        (b"POST /x HTTP/2.0", 505, "version"),
        (b"POST x HTTP/1.1", 400, "absolute path"),
        (b"P(ST /x HTTP/1.1", 400, "method"),
        (b"POST /x HTTP/1.1\r\nA: 1\r\n folded", 400, "header field"),
        (b"POST /x HTTP/1.1\r\nA : 1", 400, "header field"),
        (b"POST /x HTTP/1.1\r\nA: 1\x00", 400, "header field"),
        (b"POST /x HTTP/1.1\r\nA: 1\nB: 2", 400, "header field"),
        (b"POST /\xff HTTP/1.1", 400, "absolute path"),
        (b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked", 400, "both"),
        (b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip", 501, "chunked"),
        (b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked", 400, "HTTP/1.0"),
        (b"POST /x HTTP/1.1\r\nContent-Length: -1", 400, "Content-Length"),
        (b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6", 400, "Content-Length"),
        (b"POST /%ff HTTP/1.1", 400, "UTF-8"),
        (b"POST /x HTTP/1.1" + b"\r\nA: 1" * 101, 431, "header fields"),
    ],
)
def test_parse_head_refuses_what_it_does_not_support(raw: bytes, status: int, says: str) -> None:
    with pytest.raises(HttpError) as err:
        parse_head(raw)
    assert err.value.status == status
    assert says in err.value.message


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_parse_head_fails_only_with_an_http_error(raw: bytes) -> None:
    try:
        parse_head(raw)
    except HttpError as exc:
        assert 400 <= exc.status < 600


def chunked(body: bytes, sizes: list[int]) -> bytes:
    out, pos = b"", 0
    for size in sizes:
        part = body[pos : pos + size]
        if not part:
            break
        out += f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n"
        pos += len(part)
    if pos < len(body):
        out += f"{len(body) - pos:X}\r\n".encode() + body[pos:] + b"\r\n"
    return out + b"0\r\nTrailer: x\r\n\r\n"


@given(st.binary(max_size=500), st.lists(st.integers(1, 64), max_size=20), st.integers(1, 50))
def test_chunked_bodies_decode_however_they_arrive(body: bytes, sizes: list[int], step: int) -> None:
    wire = chunked(body, sizes) + b"NEXT"
    decoder = ChunkedBody(limit=1000)
    buf, pos = b"", 0
    while not decoder.done:
        assert pos < len(wire), "the decoder wanted more than the message"
        buf += wire[pos : pos + step]
        pos += step
        buf = buf[decoder.feed(buf) :]
    assert decoder.body() == body
    assert (buf + wire[pos:]) == b"NEXT"  # nothing of the next request was eaten


def test_chunked_bodies_are_bounded_and_strict() -> None:
    with pytest.raises(_TooLarge):
        ChunkedBody(limit=10).feed(b"6\r\nabcdef\r\n6\r\n")
    with pytest.raises(HttpError):
        ChunkedBody(limit=10).feed(b"zz\r\n")
    with pytest.raises(HttpError):
        ChunkedBody(limit=10).feed(b"2\r\nabc\r\n")


class EchoApp:
    """Echoes the body; ``/fail`` raises; ``/slow`` waits for the test; refuses a bad token early."""

    max_body = 1000

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.answered: list[bytes] = []

    def admit(self, head: RequestHead) -> Response | None:
        if head.headers.get("authorization") == "Bearer bad":
            return json_response({"error": "no"}, 401)
        return None

    def body_too_large(self, head: RequestHead) -> Response:
        return json_response({"error": "too large"}, 413)

    async def respond(self, request: Request) -> Response:
        if request.head.path == "/fail":
            raise RuntimeError("boom")
        if request.head.path == "/slow":
            await self.release.wait()
        self.answered.append(request.body)
        return json_response({"path": request.head.path, "body": request.body.decode()})


@pytest.fixture
async def served() -> AsyncIterator[tuple[Server, EchoApp, int]]:
    app = EchoApp()
    server = Server(app, asyncio.get_running_loop())
    server.sweep_interval = 0.05
    await server.start("127.0.0.1", 0)
    yield server, app, server.sockets[0].getsockname()[1]
    await server.close()


async def exchange(
    port: int, wire: bytes, responses: int, *, read_all: bool = False
) -> list[tuple[int, dict[str, str], bytes]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(wire)
    out: list[tuple[int, dict[str, str], bytes]] = []
    try:
        for _ in range(responses):
            out.append(await asyncio.wait_for(read_response(reader), 5))
        if read_all:
            assert await asyncio.wait_for(reader.read(), 5) == b""  # the server closed
    finally:
        writer.close()
    return out


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
    body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, body


def post(path: str, body: bytes, *extra: str) -> bytes:
    fields = "".join(f"{e}\r\n" for e in extra)
    return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{fields}\r\n".encode() + body


async def test_keep_alive_and_pipelined_requests_are_answered_in_order(
    served: tuple[Server, EchoApp, int],
) -> None:
    _, app, port = served
    wire = post("/a", b"one") + post("/b", b"two") + b"\r\n" + post("/c", b"three")
    out = await exchange(port, wire, 3)
    assert [json.loads(body)["body"] for _, _, body in out] == ["one", "two", "three"]
    assert all(status == 200 and "date" in headers for status, headers, _ in out)
    assert app.answered == [b"one", b"two", b"three"]


async def test_a_request_split_into_bytes_is_still_read(served: tuple[Server, EchoApp, int]) -> None:
    _, _, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for byte in post("/a", b"hello"):
        writer.write(bytes([byte]))
        await writer.drain()
    status, _, body = await asyncio.wait_for(read_response(reader), 5)
    writer.close()
    assert status == 200 and json.loads(body)["body"] == "hello"


async def test_a_refusal_from_the_head_skips_the_body_and_keeps_the_connection(
    served: tuple[Server, EchoApp, int],
) -> None:
    _, app, port = served
    wire = post("/a", b"secret", "Authorization: Bearer bad") + post("/b", b"next")
    out = await exchange(port, wire, 2)
    assert [status for status, _, _ in out] == [401, 200]
    assert app.answered == [b"next"]  # the refused body never reached the application


async def test_an_oversized_body_gets_413_even_while_the_client_still_sends(
    served: tuple[Server, EchoApp, int],
) -> None:
    _, app, port = served
    big = b"x" * (4 << 20)
    out = await exchange(port, post("/a", big), 1, read_all=True)
    assert out[0][0] == 413 and out[0][1]["connection"] == "close"
    chunked_big = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"y" * 5000, [700] * 8)
    out = await exchange(port, chunked_big, 1, read_all=True)
    assert out[0][0] == 413
    assert app.answered == []


async def test_chunked_bodies_and_expect_continue(served: tuple[Server, EchoApp, int]) -> None:
    _, _, port = served
    out = await exchange(
        port, b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"abcdef", [2, 3]), 1
    )
    assert json.loads(out[0][2])["body"] == "abcdef"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /a HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"ok")
    status, _, body = await asyncio.wait_for(read_response(reader), 5)
    writer.close()
    assert status == 200 and json.loads(body)["body"] == "ok"


async def test_bad_requests_are_answered_then_closed_and_the_server_keeps_serving(
    served: tuple[Server, EchoApp, int],
) -> None:
    _, _, port = served
    for wire, status in (
        (b"GARBAGE\r\n\r\n", 400),
        (b"POST /a HTTP/1.1\r\nX: " + b"a" * 40_000 + b"\r\n\r\n", 431),
        (b"POST /a HTTP/1.1\r\nX: " + b"a" * 40_000, 431),
        (b"POST /a HTTP/3\r\n\r\n", 505),
    ):
        out = await exchange(port, wire, 1, read_all=True)
        assert out[0][0] == status
        assert "error" in json.loads(out[0][2])
    out = await exchange(port, post("/fail", b"") + post("/a", b"after"), 2)
    assert [status for status, _, _ in out] == [500, 200]


async def test_connection_close_and_http_1_0(served: tuple[Server, EchoApp, int]) -> None:
    _, _, port = served
    out = await exchange(port, post("/a", b"1", "Connection: close"), 1, read_all=True)
    assert out[0][1]["connection"] == "close"
    out = await exchange(port, b"POST /a HTTP/1.0\r\nContent-Length: 1\r\n\r\n1", 1, read_all=True)
    assert out[0][0] == 200
    out = await exchange(
        port, b"POST /a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n1" * 2, 2
    )
    assert out[1][1]["connection"] == "keep-alive"


async def test_slow_and_idle_clients_are_cut_off(served: tuple[Server, EchoApp, int]) -> None:
    server, _, port = served
    server.request_timeout = 0.2
    server.keepalive_timeout = 0.4
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /a HTTP/1.1\r\nContent-Le")
    status, _, _ = await asyncio.wait_for(read_response(reader), 5)
    assert status == 408
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # idle: closed without a word
    writer.close()


async def test_a_request_waiting_on_the_application_is_not_timed_out(
    served: tuple[Server, EchoApp, int],
) -> None:
    server, app, port = served
    server.request_timeout = 0.1
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(post("/slow", b"x") + post("/a", b"y"))
    await asyncio.sleep(0.4)
    app.release.set()
    first = await asyncio.wait_for(read_response(reader), 5)
    second = await asyncio.wait_for(read_response(reader), 5)
    writer.close()
    assert (first[0], second[0]) == (200, 200)
    assert app.answered == [b"x", b"y"]


async def test_a_client_that_half_closes_still_gets_its_answers(served: tuple[Server, EchoApp, int]) -> None:
    _, app, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(post("/slow", b"1") + post("/a", b"2"))
    writer.write_eof()
    await asyncio.sleep(0.1)
    app.release.set()
    first = await asyncio.wait_for(read_response(reader), 5)
    second = await asyncio.wait_for(read_response(reader), 5)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # then the server closes
    writer.close()
    assert (first[0], second[0]) == (200, 200)
