"""Push trust data and the Rego policy to OPA servers over their REST API.

Each target has its own loop, so one OPA being down never blocks the others or the
NetworkPolicy path. A revision marker written with every full sync is read back
periodically; when it is missing (OPA restarted empty) the target is fully re-synced.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from aitrust.render.opa import OPA_ROOT

log = logging.getLogger("aitrust.opa")

FullData = Callable[[], dict[str, Any]]


@dataclass
class OpaTarget:
    url: str
    policies: dict[str, str]  # policy id -> Rego source
    full_data: FullData
    on_error: Callable[[str], None] = lambda _url: None
    # Called after each successful full sync: the caller re-checks what it reported as not acked.
    on_synced: Callable[[str], None] = lambda _url: None
    check_interval: float = 2.0
    timeout: float = 10.0
    revision: str = ""
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    token_file: str | None = None
    # Why the last write or sync failed; None once a full sync succeeds.
    last_error: str | None = None
    _client: httpx.AsyncClient | None = None
    _task: asyncio.Task[None] | None = None
    _resync: asyncio.Event = field(default_factory=asyncio.Event)
    # Digests of the documents OPA holds since the last full sync: unchanged ones are not rewritten.
    _pushed: dict[tuple[str, ...], str | None] = field(default_factory=dict)
    # Objects known to exist in OPA's data tree, so a JSON Patch "add" never replaces one.
    _parents: set[tuple[str, ...]] = field(default_factory=set)
    _outbox: dict[tuple[str, ...], Any] = field(default_factory=dict)
    # Documents pushed while no full sync was in place, newer than the last full snapshot.
    _held: dict[tuple[str, ...], Any] = field(default_factory=dict)
    _waiters: list[asyncio.Future[bool]] = field(default_factory=list)
    _flusher: asyncio.Task[None] | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {}
            if self.token_file:
                headers["Authorization"] = "Bearer " + Path(self.token_file).read_text().strip()
            self._client = httpx.AsyncClient(base_url=self.url, timeout=self.timeout, headers=headers)
        return self._client

    def start(self) -> None:
        self._resync.set()
        self._task = asyncio.create_task(self._loop(), name=f"opa-sync {self.url}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    async def push_full(self) -> None:
        for policy_id, rego in sorted(self.policies.items()):
            r = await self.client.put(
                f"/v1/policies/{policy_id}", content=rego.encode(), headers={"Content-Type": "text/plain"}
            )
            r.raise_for_status()
        revision = uuid.uuid4().hex
        # The snapshot holds every document pushed so far; those pushed from now until the
        # sync is in place are newer, and are written right after it.
        self._held.clear()
        data = self.full_data()
        data["meta"] = {"revision": revision}
        r = await self.client.put(f"/v1/data/{OPA_ROOT}", json=data)
        r.raise_for_status()
        self._pushed.clear()
        self._parents = {(OPA_ROOT,), *_objects((OPA_ROOT,), data)}
        self.revision = revision
        self.last_error = None
        self.synced.set()
        log.info("OPA %s fully synced (revision %s)", self.url, revision[:8])
        if self._held:
            held, self._held = self._held, {}
            self._outbox.update(held)
            self._start_flush()
        self.on_synced(self.url)

    async def push_document(self, path: list[str], document: dict[str, Any] | None) -> bool:
        """Queue one small incremental write; writes queued meanwhile go out as one JSON Patch.

        OPA serialises writes, so under load one PATCH of many documents beats many PUTs. On
        failure the loop re-syncs everything."""
        key = tuple(path)
        if not self.synced.is_set():
            # Not waited for: a reconcile must not stall while an OPA is down or re-syncing.
            self._held[key] = document
            return False
        if key in self._pushed and self._pushed[key] == _digest(document):
            return True
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._outbox[key] = document
        self._waiters.append(fut)
        self._start_flush()
        return await fut

    def _start_flush(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name=f"opa-write {self.url}")

    async def _flush(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, {}
            waiters, self._waiters = self._waiters, []
            try:
                await self._write(batch)
                ok = True
            except httpx.HTTPError as exc:
                log.warning("OPA %s write failed (%r); scheduling a full re-sync", self.url, exc)
                self.last_error = _describe(exc)
                self.on_error(self.url)
                self.request_resync()
                ok = False
            for fut in waiters:
                if not fut.done():
                    fut.set_result(ok)

    async def _write(self, batch: dict[tuple[str, ...], dict[str, Any] | None]) -> None:
        ops: list[dict[str, Any]] = []
        added: set[tuple[str, ...]] = set()
        for path, document in batch.items():
            if document is None:
                continue
            for i in range(2, len(path)):
                parent = path[:i]
                if parent not in self._parents and parent not in added:
                    ops.append({"op": "add", "path": _pointer(parent), "value": {}})
                    added.add(parent)
            ops.append({"op": "add", "path": _pointer(path), "value": document})
        if ops:
            r = await self.client.patch(
                "/v1/data", json=ops, headers={"Content-Type": "application/json-patch+json"}
            )
            if r.status_code not in (200, 204):
                # Our picture of what OPA holds was wrong: plain PUTs create parents as needed.
                for path, document in batch.items():
                    if document is not None:
                        put = await self.client.put("/v1/data/" + "/".join(path), json=document)
                        put.raise_for_status()
            self._parents |= added
        for path, document in batch.items():
            if document is None:
                r = await self.client.delete("/v1/data/" + "/".join(path))
                if r.status_code not in (200, 204, 404):
                    r.raise_for_status()
        self._pushed.update((path, _digest(document)) for path, document in batch.items())

    def request_resync(self) -> None:
        self._pushed.clear()
        self.synced.clear()
        self._resync.set()

    async def _revision_matches(self) -> bool:
        r = await self.client.get(f"/v1/data/{OPA_ROOT}/meta/revision")
        r.raise_for_status()
        return bool(r.json().get("result") == self.revision)

    async def _loop(self) -> None:
        backoff = 0.2
        while True:
            try:
                if self._resync.is_set() or not await self._revision_matches():
                    self._resync.clear()
                    await self.push_full()
                backoff = 0.2
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._resync.wait(), self.check_interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure means: retry with backoff
                log.warning("OPA %s unreachable or failing (%s); retrying in %.1fs", self.url, exc, backoff)
                self.last_error = _describe(exc)
                self.on_error(self.url)
                self._pushed.clear()
                self.synced.clear()
                self._resync.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _digest(document: dict[str, Any] | None) -> str | None:
    if document is None:
        return None
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _pointer(path: tuple[str, ...]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in path)


def _objects(prefix: tuple[str, ...], data: dict[str, Any], depth: int = 2) -> set[tuple[str, ...]]:
    """Paths of the objects in ``data`` down to ``depth`` levels (namespaces under a document kind)."""
    found: set[tuple[str, ...]] = set()
    for key, value in data.items():
        if isinstance(value, dict):
            path = (*prefix, key)
            found.add(path)
            if depth > 1:
                found |= _objects(path, value, depth - 1)
    return found


def load_policies(directory: Path) -> dict[str, str]:
    """Rego modules (tests excluded) keyed by a policy id derived from their path."""
    policies = {}
    for path in sorted(directory.rglob("*.rego")):
        if path.name.endswith("_test.rego"):
            continue
        policy_id = str(path.relative_to(directory).with_suffix("")).replace("/", "_")
        policies[policy_id] = path.read_text()
    if not policies:
        raise FileNotFoundError(f"no Rego policies under {directory}")
    return policies
