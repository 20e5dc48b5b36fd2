"""Bearer tokens from a Kubernetes Secret (or a mounted directory), re-read so rotation needs no restart."""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("aitrust.auth")

TokenLoader = Callable[[], dict[str, str]]


def secret_loader(read_secret: Callable[[], dict[str, str] | None]) -> TokenLoader:
    """Every key of the Secret is a caller name; its value is that caller's token."""

    def load() -> dict[str, str]:
        data = read_secret() or {}
        return {k: base64.b64decode(v).decode().strip() for k, v in data.items()}

    return load


def directory_loader(directory: Path) -> TokenLoader:
    """A Secret mounted as a volume: the kubelet swaps the files on rotation."""

    def load() -> dict[str, str]:
        return {
            p.name: p.read_text().strip()
            for p in sorted(directory.iterdir())
            if p.is_file() and not p.name.startswith(".")
        }

    return load


@dataclass
class TokenStore:
    loader: TokenLoader
    ttl: float = 2.0
    _tokens: dict[str, bytes] = field(default_factory=dict)
    _loaded_at: float = float("-inf")

    def refresh(self) -> None:
        try:
            tokens = self.loader()
        except Exception as exc:  # keep the last good set: an outage must not open or lock the door
            log.warning("could not reload signal tokens: %s", type(exc).__name__)
            return
        self._tokens = {name: token.encode() for name, token in tokens.items() if len(token) >= 16}
        self._loaded_at = time.monotonic()

    async def keep_fresh(self) -> None:
        """Re-read every ``ttl`` seconds off the event loop: requests never wait for the API."""
        while True:
            await asyncio.sleep(self.ttl)
            await asyncio.to_thread(self.refresh)

    def authenticate(self, header: str | None) -> str | None:
        """The caller's name for a valid ``Bearer`` header, else None. Constant-time per token."""
        if not header or not header.startswith("Bearer "):
            return None
        presented = header[len("Bearer ") :].strip().encode()
        caller = None
        for name, token in self._tokens.items():
            if hmac.compare_digest(presented, token):
                caller = name
        return caller

    @property
    def configured(self) -> bool:
        return bool(self._tokens)


@dataclass
class RateLimiter:
    """A token bucket per caller; answers how long to wait when empty."""

    rate: float = 200.0
    burst: float = 400.0
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def acquire(self, caller: str, now: float | None = None) -> float:
        if self.rate <= 0:  # --signals-rate-limit=0 turns the limit off
            return 0.0
        now = time.monotonic() if now is None else now
        level, last = self._buckets.get(caller, (self.burst, now))
        level = min(self.burst, level + (now - last) * self.rate)
        if level < 1.0:
            self._buckets[caller] = (level, now)
            return (1.0 - level) / self.rate
        self._buckets[caller] = (level - 1.0, now)
        return 0.0


def file_loader(path: Path) -> TokenLoader:
    """One token per line ('#' comments allowed); callers are named by position."""

    def load() -> dict[str, str]:
        lines = [ln.strip() for ln in path.read_text().splitlines()]
        tokens = [ln for ln in lines if ln and not ln.startswith("#")]
        return {f"token-{i}": t for i, t in enumerate(tokens)}

    return load
