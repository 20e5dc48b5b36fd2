"""Signal load generator, run as its own process so it does not disturb the measuring loop.

``python -m bench.lib.loadgen open --rate 200 ...``: an open-loop stream (background noise)
until SIGTERM or ``--seconds``. ``closed --concurrency 32 ...``: clients that each POST back
to back, bounded by ``--seconds`` and ``--max-requests``. Either prints one JSON object:
counts, and for ``closed`` each accepted request's completion time and latency.

It uses aiohttp's client: on the 2-core reference machine httpx's async client tops out near
300 requests/s against a server that does nothing (its connection pool costs CPU on every
request), aiohttp's near 1,100/s, so httpx would measure itself rather than the operator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.lib.estate import Workload, falco_event  # noqa: E402


def _targets(path: str) -> list[Workload]:
    return [Workload(i, ns, name) for i, ns, name in json.loads(Path(path).read_text())]


class Tally:
    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.sent = 0
        self.accepted = 0
        self.skipped = 0
        self.statuses: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.done_at: list[float] = []
        self.latency_ms: list[float] = []

    def record(self, started: float, status: int, body: dict[str, Any]) -> None:
        """Count the outcome; with ``keep``, note when and how fast an accepted signal was acked."""
        now = time.perf_counter()
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        accepted = int(body.get("accepted", 0)) if status == 200 else 0
        self.accepted += accepted
        if self.keep and accepted:
            self.done_at.append(now)
            self.latency_ms.append((now - started) * 1000)

    def error(self, exc: BaseException) -> None:
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1


def _session(args: argparse.Namespace, token: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        args.url,
        headers={"Authorization": f"Bearer {token}"},
        connector=aiohttp.TCPConnector(limit=1),
        timeout=aiohttp.ClientTimeout(total=30),
    )


async def _post(session: aiohttp.ClientSession, w: Workload, args: argparse.Namespace, tally: Tally) -> None:
    body = falco_event(w, args.rule, args.priority)
    started = time.perf_counter()
    tally.sent += 1
    try:
        async with session.post(args.path, json=body) as r:
            doc = await r.json() if r.status == 200 else {}
            tally.record(started, r.status, doc)
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.error(exc)


async def run_open(args: argparse.Namespace, token: str, targets: list[Workload]) -> Tally:
    tally = Tally(keep=False)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    idle = [_session(args, token) for _ in range(args.concurrency)]
    inflight: set[asyncio.Task[None]] = set()

    async def send(session: aiohttp.ClientSession, w: Workload) -> None:
        try:
            await _post(session, w, args, tally)
        finally:
            idle.append(session)

    started = time.perf_counter()
    deadline = started + args.seconds if args.seconds else float("inf")
    n = 0
    print(json.dumps({"ready": True}), flush=True)
    while not stop.is_set() and time.perf_counter() < deadline:
        delay = started + n / args.rate - time.perf_counter()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                break
            except TimeoutError:
                pass
        if not idle:
            tally.skipped += 1  # every connection busy: the server is not keeping up
        else:
            task = asyncio.create_task(send(idle.pop(), targets[n % len(targets)]))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        n += 1
    if inflight:
        await asyncio.wait(inflight, timeout=10)
    for session in idle:
        await session.close()
    return tally


async def run_closed(args: argparse.Namespace, token: str, targets: list[Workload]) -> Tally:
    tally = Tally(keep=True)
    deadline = time.perf_counter() + args.seconds
    counter = iter(range(args.max_requests))

    async def worker(offset: int) -> None:
        async with _session(args, token) as session:
            for n in counter:
                if time.perf_counter() >= deadline:
                    return
                await _post(session, targets[(n * 7919 + offset) % len(targets)], args, tally)

    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    return tally


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    targets = _targets(args.targets)
    token = Path(args.token_file).read_text().strip()  # noqa: ASYNC240 - once, before any load
    started = time.perf_counter()
    run = run_open if args.mode == "open" else run_closed
    tally = await run(args, token, targets)
    return {
        "mode": args.mode,
        "started": started,
        "elapsed": time.perf_counter() - started,
        "sent": tally.sent,
        "accepted": tally.accepted,
        "skipped": tally.skipped,
        "statuses": tally.statuses,
        "errors": tally.errors,
        "done_at": tally.done_at,
        "latency_ms": tally.latency_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["open", "closed"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", default="/v1/signals/falco")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--targets", required=True, help="JSON list of [index, namespace, name]")
    parser.add_argument("--rule", required=True)
    parser.add_argument("--priority", default="Notice")
    parser.add_argument("--rate", type=float, default=200.0, help="open: requests/s")
    parser.add_argument("--concurrency", type=int, default=32, help="connections")
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))), flush=True)


if __name__ == "__main__":
    main()
