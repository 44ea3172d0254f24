"""Where circuit breakers in several processes share which circuits are open, and until when."""

from __future__ import annotations

import math
import time
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from shadow_sdk._duration import Duration, to_timedelta
from shadow_sdk.resilience._redis import RedisConnection

if TYPE_CHECKING:
    import redis.asyncio


class CircuitStore(Protocol):
    """Where breakers in several processes share which circuits are open, and until when.

    Times are wall-clock epoch seconds, the only clock processes share. A store
    may raise anything: breakers log it and carry on with their local state.
    """

    async def open_until(self, name: str) -> float | None:
        """When the open circuit ``name`` half-opens, or ``None`` if none is published."""
        ...

    async def publish_open(self, name: str, until: float) -> None:
        """Publish that circuit ``name`` is open until ``until``; forget it after that."""
        ...


class RedisCircuitStore:
    """Shares open circuits through Redis, so one worker's discovery protects the fleet.

    When a breaker opens it sets ``<prefix>:<name>`` to the epoch second at
    which it half-opens, with a matching expiry (``SET ... PX``); nothing is
    ever deleted, the key simply expires. Breakers read the key at most once per
    ``sync_interval``, before an async call, and open locally until the
    published time if it is later than anything they have seen: Redis adds no
    round trip to the other calls. Half-open trials stay per process; a process
    whose trial fails opens again and publishes the new time.

    Commands are bounded by ``timeout`` and never retried, so an unreachable
    Redis delays one call per sync interval by at most that much; the breaker
    logs the first error of a streak and falls back to its local state.

    Needs the ``redis`` package (the ``shadow-sdk[redis]`` extra).

    Args:
        url_or_client: A ``redis://`` URL, or a ``redis.asyncio.Redis`` client
            that the caller owns and closes.
        prefix: Prefix of the keys, so that services sharing a Redis keep apart.
        timeout: Bound of each command, in seconds or as a timedelta.

    Attributes:
        prefix: Prefix of the keys.
        timeout: Bound of each command.
    """

    def __init__(
        self,
        url_or_client: str | redis.asyncio.Redis,
        *,
        prefix: str = "shadow:circuit",
        timeout: Duration = 1.0,
    ) -> None:
        if not prefix:
            raise ValueError("prefix must not be empty")
        self.prefix = prefix
        self.timeout = to_timedelta(timeout, "timeout", positive=True)
        self._redis = RedisConnection(url_or_client, timeout=self.timeout, user="RedisCircuitStore")

    @property
    def client(self) -> redis.asyncio.Redis:
        """The Redis client: the one given, or the running event loop's one made from the URL."""
        return self._redis.client()

    def key(self, name: str) -> str:
        """The Redis key of circuit ``name``."""
        return f"{self.prefix}:{name}"

    async def open_until(self, name: str) -> float | None:
        """See :class:`CircuitStore`."""
        value = await self._redis.run(lambda client: client.get(self.key(name)))
        return None if value is None else float(value)

    async def publish_open(self, name: str, until: float) -> None:
        """See :class:`CircuitStore`."""
        milliseconds = math.ceil((until - time.time()) * 1000)
        if milliseconds <= 0:
            return
        await self._redis.run(
            lambda client: client.set(self.key(name), repr(until), px=milliseconds)
        )

    async def aclose(self) -> None:
        """Close the client if the store made it from a URL."""
        await self._redis.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class _DefaultStore:
    """The process's default store: one per process, like the breaker registry."""

    store: CircuitStore | None = None


DEFAULT = _DefaultStore()
"""Read by breakers created without a ``store`` at each sync; set at start-up."""


def set_default_circuit_store(store: CircuitStore | None) -> None:
    """Share the open circuits of every breaker created without a ``store`` through ``store``.

    Breakers are usually created when activity modules are imported, before the
    process has read its settings; they look the default store up at each sync,
    so installing it at start-up reaches them all. ``None`` removes it.
    """
    DEFAULT.store = store
