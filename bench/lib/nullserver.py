"""A signal endpoint that does nothing: the load generator's own ceiling on this machine.

``python -m bench.lib.nullserver PORT`` answers every request on a keep-alive HTTP/1.1
connection like the signal API would for one accepted signal, so ingestion results can be read
against what the client can drive at all. It is a bare asyncio protocol rather than an aiohttp
application: on the 2-core reference machine aiohttp's server saturated near 3,500 requests/s
under vegeta, so the figure measured the server; this one answered 10,000-15,000/s there, with
vegeta using about one core and the server less.
"""

from __future__ import annotations

import asyncio
import sys

BODY = b'{"received": 1, "accepted": 1, "duplicates": 0}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)
MAX_HEAD = 64 * 1024


def split_requests(buffer: bytes) -> tuple[int, bytes]:
    """How many complete requests ``buffer`` starts with, and the bytes after them.

    A request is a head ending in an empty line and a body of its Content-Length (none without
    one; chunked bodies are not supported). Raises ValueError on a head it cannot read.
    """
    count = 0
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD:
                raise ValueError("request head too large")
            return count, buffer
        length = 0
        for line in buffer[:end].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            elif name.strip().lower() == b"transfer-encoding":
                raise ValueError("chunked bodies are not supported")
        if len(buffer) < end + 4 + length:
            return count, buffer
        buffer = buffer[end + 4 + length :]
        count += 1


class NullProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            count, self.buffer = split_requests(self.buffer + data)
        except ValueError:
            self.transport.write(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            self.transport.close()
            return
        if count:
            self.transport.write(RESPONSE * count)


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(NullProtocol, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    asyncio.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
