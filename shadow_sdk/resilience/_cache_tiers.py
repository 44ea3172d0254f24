"""The two tiers of a result cache: an in-process LRU, and Redis shared by the workers.

Both hold serialized results (payloads), never the objects callers get: each
hit decodes a fresh object, so that no two callers share a mutable result.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import temporalio.api.common.v1
import temporalio.converter

from shadow_sdk.resilience import _redis

if TYPE_CHECKING:
    import redis.asyncio

Payload = temporalio.api.common.v1.Payload
_T = TypeVar("_T")


class _Entry(NamedTuple):
    payload: Payload
    expires_at: float


class MemoryTier:
    """At most ``max_entries`` payloads, the least recently used going first, each with its expiry.

    Args:
        max_entries: Most entries kept; ``0`` keeps nothing.
        clock: Monotonic seconds.
    """

    def __init__(self, max_entries: int, clock: Callable[[], float]) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, key: str) -> Payload | None:
        """The payload of ``key`` unless it expired; a hit becomes the most recently used."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.payload

    def set(self, key: str, payload: Payload, ttl: float) -> None:
        """Keep ``payload`` under ``key`` for ``ttl`` seconds, evicting beyond ``max_entries``."""
        if self.max_entries == 0:
            return
        self._entries[key] = _Entry(payload, self._clock() + ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def pop(self, key: str) -> None:
        """Forget ``key``."""
        self._entries.pop(key, None)


class RedisTier:
    """Redis as a cache tier: sealed values, keys that expire, and a rest after each error.

    A failed command is reported to ``on_error`` and answers ``None``; the tier
    then rests for ``cooldown``, so that an outage costs one timeout per cooldown
    rather than one per call.

    Args:
        connection: The Redis connection.
        codec: Seals values written and unseals those read (see :mod:`._redis`).
        cooldown: How long the tier rests after an error.
        clock: Monotonic seconds.
        on_error: Called with each error.
        on_success: Called after each command that succeeded.
    """

    def __init__(
        self,
        connection: _redis.RedisConnection,
        *,
        codec: temporalio.converter.PayloadCodec | None,
        cooldown: timedelta,
        clock: Callable[[], float],
        on_error: Callable[[Exception], None],
        on_success: Callable[[], None],
    ) -> None:
        self.connection = connection
        self._codec = codec
        self._cooldown = cooldown.total_seconds()
        self._clock = clock
        self._on_error = on_error
        self._on_success = on_success
        self._resumes_at = float("-inf")

    def available(self) -> bool:
        """Whether the tier is not resting after an error."""
        return self._clock() >= self._resumes_at

    async def get(self, key: str) -> tuple[bytes | None, float] | None:
        """The stored value of ``key`` and its remaining life in seconds; ``None`` on error."""
        return await self._run(lambda client: _get_with_ttl(client, key))

    async def set(self, key: str, payload: Payload, ttl: timedelta) -> None:
        """Seal ``payload`` and store it under ``key`` for ``ttl``.

        Raises:
            Exception: The codec failed; Redis errors are reported, not raised.
        """
        stored = await _redis.seal(payload, self._codec)
        milliseconds = max(1, round(ttl / timedelta(milliseconds=1)))
        await self._run(lambda client: client.set(key, stored, px=milliseconds))

    async def delete(self, key: str) -> bool:
        """Delete ``key``, resting or not; whether Redis answered."""
        return await self._run(lambda client: client.delete(key)) is not None

    async def unseal(self, stored: bytes) -> Payload:
        """The payload of a stored value (see :func:`._redis.unseal`)."""
        return await _redis.unseal(stored, self._codec)

    async def _run(self, command: Callable[[redis.asyncio.Redis], Awaitable[_T]]) -> _T | None:
        try:
            result = await self.connection.run(command)
        except Exception as error:
            self._resumes_at = self._clock() + self._cooldown
            self._on_error(error)
            return None
        self._on_success()
        return result


async def _get_with_ttl(client: redis.asyncio.Redis, key: str) -> tuple[bytes | None, float]:
    """The value of ``key`` and its remaining life in seconds, in one round trip."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.pttl(key)
        stored, pttl = await pipe.execute()
    return stored, int(pttl) / 1000
