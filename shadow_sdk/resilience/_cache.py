"""ResultCache: a two-tier cache of the results of idempotent activities.

Some activities are pure lookups: the same arguments give the same result for a
while (a customer's profile, an exchange rate, a feature flag). When many
workflows call one with the same arguments, each call costs a round trip to the
system behind it. :class:`ResultCache` serves repeated calls from memory and,
with Redis configured, from Redis, which all workers of a service share::

    customers = ResultCache("customers")

    @activity.defn
    @customers.cached(ttl=timedelta(minutes=5))
    async def lookup_customer(customer_id: str) -> Customer: ...

The decorator goes under ``@activity.defn``: the activity keeps its name,
signature and type hints, and Temporal still schedules, retries and times out
every call; only the function's body is skipped on a hit.

Only cache activities that are idempotent and whose result depends on their
arguments alone: a cached call returns a result computed up to ``ttl`` earlier,
so the TTL is the bound on staleness, and it is the only one (nothing is told
when the underlying data changes; :meth:`ResultCache.invalidate` drops an entry
when the code knows).

How it works:

* **First tier**: an in-process LRU of at most ``max_entries`` entries, each
  expiring ``ttl`` after it was computed.
* **Second tier** (optional): Redis, where each entry is a key that expires
  after ``ttl`` (``SET ... PX``). A miss in memory looks in Redis; a Redis hit
  fills memory for the key's remaining time; a miss in both calls the function
  and writes both tiers.
* **Keys** are ``<key_prefix>:<cache name>:<version>:<function>:<sha256>``. The
  function is named by its activity type when ``@activity.defn`` was applied to
  it (the name the Temporal UI shows, stable across module moves), otherwise by
  ``module.qualname``; the name is that of the decorated function itself, never
  that of the activity running, so that cached helpers called inside one
  activity do not share keys. The hash covers the arguments (bound to the
  signature with defaults applied, so ``f(1)`` and ``f(x=1)`` are one entry)
  serialized by the payload converter the SDK uses,
  :class:`temporalio.contrib.pydantic.PydanticPayloadConverter`, with JSON
  object keys sorted. Bump ``version`` to drop every entry at once.
* **Values** are the converter's serialized ``Payload`` of the result, decoded
  to the function's return annotation on every hit, so a cached result has the
  type of a fresh one (pydantic models come back as models) and callers never
  share a mutable object.
* **Encryption**: results may be customer data. With a payload ``codec`` (the
  :class:`~shadow_sdk.codec.EncryptionCodec` of the settings), every value
  written to Redis is encoded with it, and with an ``EncryptionCodec`` a value
  read back that is not encrypted is refused, so that whoever can write to
  Redis cannot plant results. Memory holds plaintext: it is the process's own.
  Keys hold a sha256 of the arguments, not the arguments (though a guessable
  argument, such as a small numeric id, can be confirmed by hashing guesses).
* **Single flight**: concurrent calls with the same key share one call of the
  function; if it raises, every caller gets the exception. Exceptions are never
  cached.
* **Cost of a hit**: a few microseconds, mostly decoding the stored payload (the
  digest of plain ``str``, ``int``, ``bool`` or ``None`` arguments is remembered).
* **Failures of the cache never fail the call**: every Redis operation is bounded
  by ``redis_timeout`` and never retried within it; an unreachable, slow or
  failing Redis, or a value that does not decode, is counted and logged (logger
  ``shadow_sdk.resilience``, one warning per streak of errors), and the function
  is simply called. After a
  Redis error the Redis tier rests for ``redis_cooldown``, so that an outage
  costs one timeout per cooldown rather than one per call.

Why this API: the cache is an object because its configuration (size, Redis,
codec, metrics, key version) is shared by the activities of a service, and a
metric label needs a name; each decorated function only adds its TTL. Services
define activities at import time but read their settings at start-up, so the
module-level :func:`cached` binds a function to the process's default cache,
:meth:`ResultCache.default`, looked up on every call, and start-up installs the
configured one (the same pattern as :meth:`temporalio.runtime.Runtime.default`)::

    @activity.defn
    @cached(ttl=timedelta(minutes=5))
    async def lookup_customer(customer_id: str) -> Customer: ...

    ResultCache.set_default(ResultCache.from_settings(settings, name="orders"))

Only ``async def`` functions can be cached: single flight and the Redis client
run on the event loop, which the threads of synchronous activities do not have;
run blocking code with :func:`asyncio.to_thread` inside an async activity.
An activity that is a method may be cached too: ``self`` is left out of the key,
so all instances share entries.

Its requests and errors are counted as ``shadow_cache_requests_total{cache, tier,
outcome}`` and ``shadow_cache_errors_total{cache, error}`` (see
:mod:`._cache_reports`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, ParamSpec, TypeVar

import temporalio.api.common.v1
import temporalio.common
import temporalio.contrib.pydantic
import temporalio.converter

from shadow_sdk._duration import Duration, to_timedelta
from shadow_sdk.resilience import _redis
from shadow_sdk.resilience._cache_reports import CacheReports
from shadow_sdk.resilience._cache_tiers import MemoryTier, RedisTier
from shadow_sdk.resilience._cached_function import ATTRIBUTE, CachedFunction, DigestMemo, decorator

if TYPE_CHECKING:
    import redis.asyncio

    from shadow_sdk._settings import ShadowSettings

__all__ = ["ResultCache", "cached"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
Payload = temporalio.api.common.v1.Payload


class ResultCache:
    """A two-tier cache of activity results: in-process LRU, then optionally Redis.

    Decorate functions with :meth:`cached`. Only for idempotent activities whose
    result depends on their arguments alone: a hit returns a result computed up
    to ``ttl`` earlier. See the module documentation for keys, encryption and
    metrics.

    It is not thread-safe: use it from the event loop of one thread (in a worker,
    the loop that runs the activities). With a Redis URL, close it with
    :meth:`aclose` (or ``async with``) before the loop ends.

    Args:
        name: Names the cache in metrics and keys; services sharing a Redis
            database need distinct names (or key prefixes).
        max_entries: Most entries kept in memory; the least recently used goes
            first. ``0`` keeps nothing in memory.
        redis: A ``redis://`` or ``rediss://`` URL, or a
            :class:`redis.asyncio.Redis` client (which the caller closes);
            ``None``: memory only. Needs the ``shadow-sdk[redis]`` extra.
        codec: Encodes values written to Redis and decodes those read, usually
            :meth:`ShadowSettings.payload_codec() <shadow_sdk.ShadowSettings.payload_codec>`.
            Memory is not encoded.
        version: Part of every key; change it to drop every entry, for example
            when a result's type changes incompatibly.
        key_prefix: First part of every Redis key.
        redis_timeout: Bound on each Redis operation, in seconds or as a timedelta.
        redis_cooldown: How long the Redis tier rests after a Redis error.
        metric_meter: Where to count; ``None``: the activity's meter inside an
            activity, else the default runtime's.
        payload_converter: Serializes arguments and results; the SDK's pydantic
            converter by default.
        clock: Monotonic seconds, for memory expiry and the cooldown.

    Attributes:
        redis_timeout: Bound on each Redis operation, as a timedelta.
        redis_cooldown: How long the Redis tier rests after an error, as a timedelta.

    Raises:
        ValueError: An option is out of range.
        ImportError: ``redis`` is a URL but the ``redis`` package is missing.
    """

    _default: ClassVar[ResultCache | None] = None

    def __init__(
        self,
        name: str = "default",
        *,
        max_entries: int = 1024,
        redis: str | redis.asyncio.Redis | None = None,
        codec: temporalio.converter.PayloadCodec | None = None,
        version: str = "1",
        key_prefix: str = "shadow-cache",
        redis_timeout: Duration = timedelta(milliseconds=500),
        redis_cooldown: Duration = timedelta(seconds=5),
        metric_meter: temporalio.common.MetricMeter | None = None,
        payload_converter: temporalio.converter.PayloadConverter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not name:
            raise ValueError("name must not be empty")
        if max_entries < 0:
            raise ValueError(f"max_entries must be 0 or more, not {max_entries}")
        self.name = name
        self.codec = codec
        self.version = version
        self.key_prefix = key_prefix
        self.redis_timeout = to_timedelta(redis_timeout, "redis_timeout", positive=True)
        self.redis_cooldown = to_timedelta(redis_cooldown, "redis_cooldown", non_negative=True)
        self.metric_meter = metric_meter
        self.payload_converter = (
            payload_converter or temporalio.contrib.pydantic.PydanticPayloadConverter()
        )
        self._memory = MemoryTier(max_entries, clock)
        self._digests = DigestMemo()
        self._in_flight: dict[str, asyncio.Future[_Outcome]] = {}
        connection = (
            None
            if redis is None
            else _redis.RedisConnection(
                redis, timeout=self.redis_timeout, user="the Redis tier of ResultCache"
            )
        )
        self._reports = CacheReports(connection)
        self._redis = (
            None
            if connection is None
            else RedisTier(
                connection,
                codec=codec,
                cooldown=self.redis_cooldown,
                clock=clock,
                on_error=lambda error: self._error("redis", error, None),
                on_success=lambda: self._reports.recovered(self.name, "redis"),
            )
        )

    @property
    def max_entries(self) -> int:
        """Most entries kept in memory."""
        return self._memory.max_entries

    @classmethod
    def from_settings(
        cls,
        settings: ShadowSettings,
        *,
        name: str,
        max_entries: int = 1024,
        version: str = "1",
        key_prefix: str = "shadow-cache",
        redis_timeout: Duration = timedelta(milliseconds=500),
        redis_cooldown: Duration = timedelta(seconds=5),
        metric_meter: temporalio.common.MetricMeter | None = None,
    ) -> ResultCache:
        """The cache that ``settings`` describe: Redis from ``REDIS_URL``, encryption keys.

        Values written to Redis are encrypted with the settings' payload codec
        when encryption keys are configured. Without ``REDIS_URL`` the cache is
        in memory only. The other arguments are those of the constructor.

        Args:
            settings: Gives ``redis_url`` and :meth:`~shadow_sdk.ShadowSettings.payload_codec`.
            name: Names the cache in metrics and keys; required, because services
                that share a Redis database must not share names.
            max_entries: See the constructor.
            version: See the constructor.
            key_prefix: See the constructor.
            redis_timeout: See the constructor.
            redis_cooldown: See the constructor.
            metric_meter: See the constructor.
        """
        return cls(
            name,
            max_entries=max_entries,
            redis=_redis.redis_url(settings),
            codec=settings.payload_codec(),
            version=version,
            key_prefix=key_prefix,
            redis_timeout=redis_timeout,
            redis_cooldown=redis_cooldown,
            metric_meter=metric_meter,
        )

    @classmethod
    def default(cls) -> ResultCache:
        """The process's default cache, which :func:`cached` uses; memory only until replaced."""
        if cls._default is None:
            cls._default = cls()
        return cls._default

    @classmethod
    def set_default(cls, cache: ResultCache | None) -> None:
        """Make ``cache`` the default; ``None`` restores a memory-only one on next use.

        Functions decorated with :func:`cached` use it from their next call on.
        The cache replaced is not closed.
        """
        cls._default = cache

    def cached(
        self, *, ttl: Duration, name: str | None = None
    ) -> Callable[[Callable[_P, Awaitable[_T]]], Callable[_P, Coroutine[Any, Any, _T]]]:
        """Decorate an idempotent async function so that its results are cached for ``ttl``.

        Apply it under ``@activity.defn``. The function must be ``async def``
        and annotate its return type, to which cached values are decoded.

        Args:
            ttl: How long a result is served, in seconds or as a timedelta; the
                bound on its staleness.
            name: Names the function in keys instead of its activity type or
                ``module.qualname``.

        Raises:
            TypeError: The function is not ``async def`` or has no return annotation.
            ValueError: ``ttl`` is not positive.
        """
        return decorator(lambda: self, ttl, name)

    async def invalidate(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> bool:
        """Drop the entry of ``function(*args, **kwargs)`` from memory and Redis.

        Redis is asked even while it rests after an error. Redis errors are
        counted and logged, not raised, as for lookups.

        Returns:
            Whether the entry is gone from every tier: ``False`` if Redis failed.

        Raises:
            ValueError: ``function`` was not decorated by this cache.
        """
        cached_function = getattr(function, ATTRIBUTE, None)
        if not isinstance(cached_function, CachedFunction) or cached_function.cache() is not self:
            raise ValueError(f"{function!r} is not cached by {self!r}")
        key = self._key(cached_function, args, kwargs)
        self._memory.pop(key)
        return self._redis is None or await self._redis.delete(key)

    async def aclose(self) -> None:
        """Close the Redis connections this cache opened on the running loop."""
        if self._redis is not None:
            await self._redis.connection.aclose()

    async def __aenter__(self) -> ResultCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        tiers = "memory+redis" if self._redis is not None else "memory"
        return f"ResultCache({self.name!r}, {tiers}, version={self.version!r})"

    # The call path.

    def _key(self, function: CachedFunction, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The key of a call: prefix, cache, version, function, sha256 of the arguments."""
        digest = self._digests.digest(function, self.payload_converter, args, kwargs)
        return f"{self.key_prefix}:{self.name}:{self.version}:{function.name()}:{digest}"

    async def _call(
        self, function: CachedFunction, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        key = self._key(function, args, kwargs)
        while True:
            payload = self._memory.get(key)
            if payload is not None:
                try:
                    value = self._decode(payload, function)
                except Exception as error:
                    self._error("value", error, function)
                    self._memory.pop(key)
                else:
                    self._reports.counters(self.name, self.metric_meter).memory_hit.add(1)
                    return value
            loop = asyncio.get_running_loop()
            flight = self._in_flight.get(key)
            if flight is not None and flight.get_loop() is loop:
                self._reports.counters(self.name, self.metric_meter).memory_hit.add(1)
                # Shielded: a joiner's cancellation must not cancel the shared future.
                outcome = await asyncio.shield(flight)
                if outcome.retry:
                    continue  # The leader was cancelled; lead or join anew.
                return outcome.value_for(self, function)
            self._reports.counters(self.name, self.metric_meter).memory_miss.add(1)
            return await self._lead(key, function, args, kwargs, loop.create_future())

    async def _lead(
        self,
        key: str,
        function: CachedFunction,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        flight: asyncio.Future[_Outcome],
    ) -> Any:
        self._in_flight[key] = flight
        try:
            value, payload = await self._compute(key, function, args, kwargs)
        except Exception as error:
            flight.set_exception(error)
            flight.exception()  # Retrieved: no "never retrieved" log when nobody joined.
            raise
        except BaseException:
            flight.set_result(_Outcome(retry=True))
            raise
        else:
            flight.set_result(_Outcome(value=value, payload=payload))
            return value
        finally:
            if self._in_flight.get(key) is flight:
                del self._in_flight[key]

    async def _compute(
        self,
        key: str,
        function: CachedFunction,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[Any, Payload | None]:
        ttl = function.ttl.total_seconds()
        redis = self._redis
        if redis is not None and redis.available():
            found = await redis.get(key)
            if found is not None:
                stored, remaining = found
                hit = await self._from_redis(stored, function) if stored is not None else None
                counters = self._reports.counters(self.name, self.metric_meter)
                if hit is not None:
                    value, payload = hit
                    counters.requests("redis", "hit").add(1)
                    # The key's remaining life, so that memory does not extend staleness.
                    self._memory.set(key, payload, min(ttl, remaining) if remaining > 0 else ttl)
                    return value, payload
                counters.requests("redis", "miss").add(1)
        value = await function.function(*args, **kwargs)
        try:
            payload = self.payload_converter.to_payload(value)
        except Exception as error:
            self._error("value", error, function)
            return value, None
        self._memory.set(key, payload, ttl)
        if redis is not None and redis.available():
            try:
                await redis.set(key, payload, function.ttl)
            except Exception as error:  # A failing codec leaves the value out of Redis.
                self._error("value", error, function)
        return value, payload

    def _decode(self, payload: Payload, function: CachedFunction) -> Any:
        return_type: Any = function.return_type()
        return self.payload_converter.from_payload(payload, return_type)

    async def _from_redis(
        self, stored: bytes, function: CachedFunction
    ) -> tuple[Any, Payload] | None:
        """Decode a Redis value; ``None``, counted and logged, if it is not a valid one."""
        assert self._redis is not None  # noqa: S101  Only Redis values come here.
        try:
            payload = await self._redis.unseal(stored)
            value = self._decode(payload, function)
        except Exception as error:
            self._error("value", error, function)
            return None
        self._reports.recovered(self.name, "value")
        return value, payload

    def _error(self, kind: str, error: Exception, function: CachedFunction | None) -> None:
        subject = function.name() if function is not None else None
        self._reports.error(self.name, self.metric_meter, kind, error, subject)


def cached(
    *, ttl: Duration, cache: ResultCache | None = None, name: str | None = None
) -> Callable[[Callable[_P, Awaitable[_T]]], Callable[_P, Coroutine[Any, Any, _T]]]:
    """Cache an idempotent async function's results for ``ttl``, in ``cache`` or the default.

    Apply it under ``@activity.defn``. Without ``cache``, each call uses
    :meth:`ResultCache.default` as it is at that moment, so that start-up can
    install a cache built from settings after the activities were defined. Only
    for functions whose result depends on their arguments alone; see
    :meth:`ResultCache.cached`.

    Args:
        ttl: How long a result is served, in seconds or as a timedelta; the bound
            on its staleness.
        cache: The cache to use; ``None``: the default cache at each call.
        name: Names the function in keys instead of its activity type or
            ``module.qualname``.

    Raises:
        TypeError: The function is not ``async def`` or has no return annotation.
        ValueError: ``ttl`` is not positive.
    """
    if cache is not None:
        return cache.cached(ttl=ttl, name=name)
    return decorator(ResultCache.default, ttl, name)


@dataclasses.dataclass(frozen=True)
class _Outcome:
    """What the leader of a single flight hands its joiners."""

    value: Any = None
    payload: Payload | None = None
    retry: bool = False

    def value_for(self, cache: ResultCache, function: CachedFunction) -> Any:
        """A fresh copy for each joiner, so that none shares a mutable result."""
        if self.payload is None:
            return self.value
        try:
            return cache._decode(self.payload, function)
        except Exception as error:
            cache._error("value", error, function)
            return self.value
