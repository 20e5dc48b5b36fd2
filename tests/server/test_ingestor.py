"""Group commit, in a unit test with a fake API: a burst on one workload becomes one write."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any

from aitrust.api.v1alpha1 import Severity
from aitrust.controller.reconciler import Reconciler
from aitrust.controller.store import Store
from aitrust.core.signal import Signal, WorkloadHint
from aitrust.server.auth import RateLimiter, TokenStore
from aitrust.server.ingestor import Ingestor

NOW = datetime(2026, 11, 1, tzinfo=UTC)


class FakeKube:
    """Records status patches and applies them, with resourceVersion checks like the API server."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.patches = 0

    def patch_status(
        self, kind: str, ns: str, name: str, status: dict[str, Any], rv: str | None = None
    ) -> Any:
        assert rv == self.body["metadata"]["resourceVersion"]
        self.patches += 1
        self.body = copy.deepcopy(self.body)
        self.body["status"] = status
        self.body["metadata"]["resourceVersion"] = str(int(rv) + 1)
        return self.body

    def get_custom(self, kind: str, ns: str, name: str) -> dict[str, Any]:
        return self.body


def signal(i: int) -> Signal:
    return Signal(
        id=f"evt-{i}",
        source="falco",
        time=NOW,
        severity=Severity.LOW,
        rule="Read sensitive file untrusted",
        target=WorkloadHint(namespace="ml", pod="agent-0"),
    )


def test_a_burst_of_signals_is_one_status_write() -> None:
    body = {
        "apiVersion": "aitrust.dev/v1alpha1",
        "kind": "AIWorkload",
        "metadata": {"name": "agent", "namespace": "ml", "resourceVersion": "1", "generation": 1},
        "spec": {"kind": "agent", "selector": {"matchLabels": {"app": "agent"}}},
    }
    store = Store()
    store.upsert("AIWorkload", body)
    kube = FakeKube(body)

    async def run() -> tuple[int, int]:
        reconciler = Reconciler(kube, store, clock=lambda: NOW)  # type: ignore[arg-type]
        ingestor = Ingestor(reconciler, window=0.2)  # wide enough that the whole burst queues first
        ingestor.start()
        results = await asyncio.gather(
            *(ingestor.submit(("ml", "agent"), [signal(i % 1000)]) for i in range(1000))
        )
        again = await ingestor.submit(("ml", "agent"), [signal(1)])
        await ingestor.stop()
        return sum(r.added for r in results), again.duplicates

    added, duplicates = asyncio.run(run())
    assert added == 1000
    assert kube.patches == 1  # group commit: one write for the burst
    assert duplicates == 1
    assert len(kube.body["status"]["signals"]) == 100  # bounded, most recent/severe kept


def test_rate_limiter_and_tokens() -> None:
    limiter = RateLimiter(rate=10, burst=2)
    assert limiter.acquire("a", now=0.0) == 0.0
    assert limiter.acquire("a", now=0.0) == 0.0
    wait = limiter.acquire("a", now=0.0)
    assert 0 < wait <= 0.1
    assert limiter.acquire("b", now=0.0) == 0.0  # per caller
    assert limiter.acquire("a", now=1.0) == 0.0  # refilled

    tokens = TokenStore(lambda: {"sidekick": "a-token-of-sixteen+", "short": "tooshort"})
    tokens.refresh()
    assert tokens.authenticate("Bearer a-token-of-sixteen+") == "sidekick"
    assert tokens.authenticate("Bearer tooshort") is None  # weak tokens are not accepted at all
    assert tokens.authenticate("Basic a-token-of-sixteen+") is None
    assert tokens.authenticate(None) is None
