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
* **Failures of the cache never fail the call**: every Redis operation is bounded
  by ``redis_timeout``; an unreachable, slow or failing Redis, or a value that
  does not decode, is counted and logged (logger ``shadow_sdk.resilience``,
  one warning per streak of errors), and the function is simply called. After a
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

Metrics, through a Temporal :class:`~temporalio.common.MetricMeter` (the
activity's when called inside an activity, which adds the activity's
``namespace``, ``task_queue`` and ``activity_type``, else the default runtime's;
or the ``metric_meter`` given):

* ``shadow_cache_requests_total{cache, tier, outcome}``: each call counts once
  at ``tier="memory"`` (``hit`` when served from memory or by joining an
  identical call in flight, else ``miss``), and each memory miss that Redis
  answers once at ``tier="redis"`` (a value that does not decode is a ``miss``;
  a failed lookup counts as an error only). Calls that did not run the function
  = memory hits + Redis hits.
* ``shadow_cache_errors_total{cache, error}``: Redis and decoding failures, by
  exception class name.

Labels are bounded: never a key or an argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import inspect
import json
import logging
import time
import typing
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final, ParamSpec, TypeVar

import pydantic
import temporalio.activity
import temporalio.api.common.v1
import temporalio.common
import temporalio.contrib.pydantic
import temporalio.converter
import temporalio.runtime

from shadow_sdk._exceptions import ShadowError
from shadow_sdk.codec._encryption import ENCODING as _ENCRYPTED
from shadow_sdk.codec._encryption import EncryptionCodec

if TYPE_CHECKING:
    import types

    import redis.asyncio

    from shadow_sdk._settings import ShadowSettings

__all__ = ["ResultCache", "cached"]

CACHE_REQUESTS: Final = "shadow_cache_requests"
"""Counter of calls by ``cache``, ``tier`` and ``outcome`` (``shadow_cache_requests_total``)."""
CACHE_ERRORS: Final = "shadow_cache_errors"
"""Counter of cache failures by ``cache`` and ``error`` (``shadow_cache_errors_total``)."""

_P = ParamSpec("_P")
_T = TypeVar("_T")
Payload = temporalio.api.common.v1.Payload

logger = logging.getLogger("shadow_sdk.resilience")

_ATTRIBUTE = "__shadow_result_cache__"
_REDIS_EXTRA = "shadow-sdk[redis]"


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
        redis_timeout: Bound on each Redis operation.
        redis_cooldown: How long the Redis tier rests after a Redis error.
        metric_meter: Where to count; ``None``: the activity's meter inside an
            activity, else the default runtime's.
        payload_converter: Serializes arguments and results; the SDK's pydantic
            converter by default.
        clock: Monotonic seconds, for memory expiry and the cooldown.

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
        redis_timeout: timedelta = timedelta(milliseconds=500),
        redis_cooldown: timedelta = timedelta(seconds=5),
        metric_meter: temporalio.common.MetricMeter | None = None,
        payload_converter: temporalio.converter.PayloadConverter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not name:
            raise ValueError("name must not be empty")
        if max_entries < 0:
            raise ValueError(f"max_entries must be 0 or more, not {max_entries}")
        if redis_timeout <= timedelta(0):
            raise ValueError(f"redis_timeout must be positive, not {redis_timeout}")
        if redis_cooldown < timedelta(0):
            raise ValueError(f"redis_cooldown must not be negative, not {redis_cooldown}")
        self.name = name
        self.max_entries = max_entries
        self.codec = codec
        self.version = version
        self.key_prefix = key_prefix
        self.redis_timeout = redis_timeout
        self.redis_cooldown = redis_cooldown
        self.metric_meter = metric_meter
        self.payload_converter = (
            payload_converter or temporalio.contrib.pydantic.PydanticPayloadConverter()
        )
        self._clock = clock
        self._memory: OrderedDict[str, _Entry] = OrderedDict()
        self._in_flight: dict[str, asyncio.Future[_Outcome]] = {}
        self._redis = _RedisTier(redis, redis_timeout) if redis is not None else None
        self._redis_resumes_at = float("-inf")
        self._streaks: dict[str, int] = {}

    @classmethod
    def from_settings(
        cls,
        settings: ShadowSettings,
        *,
        name: str,
        max_entries: int = 1024,
        version: str = "1",
        key_prefix: str = "shadow-cache",
        redis_timeout: timedelta = timedelta(milliseconds=500),
        redis_cooldown: timedelta = timedelta(seconds=5),
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
        redis_url = settings.redis_url
        return cls(
            name,
            max_entries=max_entries,
            redis=None if redis_url is None else redis_url.get_secret_value(),
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
        self, *, ttl: timedelta, name: str | None = None
    ) -> Callable[[Callable[_P, Awaitable[_T]]], Callable[_P, Coroutine[Any, Any, _T]]]:
        """Decorate an idempotent async function so that its results are cached for ``ttl``.

        Apply it under ``@activity.defn``. The function must be ``async def``
        and annotate its return type, to which cached values are decoded.

        Args:
            ttl: How long a result is served; the bound on its staleness.
            name: Names the function in keys instead of its activity type or
                ``module.qualname``.

        Raises:
            TypeError: The function is not ``async def`` or has no return annotation.
            ValueError: ``ttl`` is not positive.
        """
        return _decorator(lambda: self, ttl, name)

    async def invalidate(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> bool:
        """Drop the entry of ``function(*args, **kwargs)`` from memory and Redis.

        Redis is asked even while it rests after an error. Redis errors are
        counted and logged, not raised, as for lookups.

        Returns:
            Whether the entry is gone from every tier: ``False`` if Redis failed.

        Raises:
            ValueError: ``function`` was not decorated by this cache.
        """
        cached_function = getattr(function, _ATTRIBUTE, None)
        if not isinstance(cached_function, _CachedFunction) or cached_function.cache() is not self:
            raise ValueError(f"{function!r} is not cached by {self!r}")
        key = cached_function.key(self, args, kwargs)
        self._memory.pop(key, None)
        if self._redis is None:
            return True
        return await self._redis_call(self._redis_delete, key) is not None

    async def aclose(self) -> None:
        """Close the Redis connections this cache opened on the running loop."""
        if self._redis is not None:
            await self._redis.aclose()

    async def __aenter__(self) -> ResultCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        tiers = "memory+redis" if self._redis is not None else "memory"
        return f"ResultCache({self.name!r}, {tiers}, version={self.version!r})"

    # The call path.

    async def _call(
        self, function: _CachedFunction, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        key = function.key(self, args, kwargs)
        loop = asyncio.get_running_loop()
        while True:
            payload = self._memory_get(key)
            if payload is not None:
                try:
                    value = self._decode(payload, function)
                except Exception as error:
                    self._error("value", error, function)
                    self._memory.pop(key, None)
                else:
                    self._count_request("memory", "hit")
                    return value
            flight = self._in_flight.get(key)
            if flight is not None and flight.get_loop() is loop:
                self._count_request("memory", "hit")
                # Shielded: a joiner's cancellation must not cancel the shared future.
                outcome = await asyncio.shield(flight)
                if outcome.retry:
                    continue  # The leader was cancelled; lead or join anew.
                return outcome.value_for(self, function)
            self._count_request("memory", "miss")
            return await self._lead(key, function, args, kwargs, loop.create_future())

    async def _lead(
        self,
        key: str,
        function: _CachedFunction,
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
        function: _CachedFunction,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[Any, Payload | None]:
        ttl = function.ttl.total_seconds()
        if self._redis_available():
            found = await self._redis_call(self._redis_get, key)
            if found is not None:
                stored, remaining = found
                hit = await self._from_redis(stored, function) if stored is not None else None
                if hit is not None:
                    value, payload = hit
                    self._count_request("redis", "hit")
                    # The key's remaining life, so that memory does not extend staleness.
                    self._memory_set(key, payload, min(ttl, remaining) if remaining > 0 else ttl)
                    return value, payload
                self._count_request("redis", "miss")
        value = await function.function(*args, **kwargs)
        try:
            payload = self.payload_converter.to_payload(value)
        except Exception as error:
            self._error("value", error, function)
            return value, None
        self._memory_set(key, payload, ttl)
        if self._redis_available():
            try:
                stored = await self._to_redis(payload)
            except Exception as error:  # A failing codec leaves the value out of Redis.
                self._error("value", error, function)
            else:
                await self._redis_call(self._redis_set, key, stored, function.ttl)
        return value, payload

    def _decode(self, payload: Payload, function: _CachedFunction) -> Any:
        return_type: Any = function.return_type()
        return self.payload_converter.from_payload(payload, return_type)

    # Memory.

    def _memory_get(self, key: str) -> Payload | None:
        entry = self._memory.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            del self._memory[key]
            return None
        self._memory.move_to_end(key)
        return entry.payload

    def _memory_set(self, key: str, payload: Payload, ttl: float) -> None:
        if self.max_entries == 0:
            return
        self._memory[key] = _Entry(payload, self._clock() + ttl)
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_entries:
            self._memory.popitem(last=False)

    # Redis.

    def _redis_available(self) -> bool:
        return self._redis is not None and self._clock() >= self._redis_resumes_at

    async def _redis_call(self, operation: Callable[..., Awaitable[_T]], *args: Any) -> _T | None:
        """Run one Redis operation within the timeout; on error, count, log, rest, return None."""
        try:
            async with asyncio.timeout(self.redis_timeout.total_seconds()):
                result = await operation(*args)
        except Exception as error:
            self._redis_resumes_at = self._clock() + self.redis_cooldown.total_seconds()
            self._error("redis", error, None)
            return None
        self._recovered("redis")
        return result

    async def _redis_get(self, key: str) -> tuple[bytes | None, float]:
        assert self._redis is not None  # noqa: S101  Checked by _redis_available.
        async with self._redis.client().pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            stored, pttl = await pipe.execute()
        return stored, int(pttl) / 1000

    async def _redis_set(self, key: str, value: bytes, ttl: timedelta) -> None:
        assert self._redis is not None  # noqa: S101  Checked by _redis_available.
        milliseconds = max(1, round(ttl / timedelta(milliseconds=1)))
        await self._redis.client().set(key, value, px=milliseconds)

    async def _redis_delete(self, key: str) -> int:
        assert self._redis is not None  # noqa: S101  Checked by the caller.
        return int(await self._redis.client().delete(key))

    async def _to_redis(self, payload: Payload) -> bytes:
        if self.codec is not None:
            [payload] = await self.codec.encode([payload])
        return payload.SerializeToString()

    async def _from_redis(
        self, stored: bytes, function: _CachedFunction
    ) -> tuple[Any, Payload] | None:
        """Decode a Redis value; ``None``, counted and logged, if it is not a valid one."""
        try:
            payload = Payload.FromString(stored)
            if isinstance(self.codec, EncryptionCodec) and (
                payload.metadata.get("encoding") != _ENCRYPTED
            ):
                raise _UnencryptedValueError
            if self.codec is not None:
                [payload] = await self.codec.decode([payload])
            value = self._decode(payload, function)
        except Exception as error:
            self._error("value", error, function)
            return None
        self._recovered("value")
        return value, payload

    # Observability.

    def _count_request(self, tier: str, outcome: str) -> None:
        self._meter().create_counter(
            CACHE_REQUESTS, "Calls of cached functions by tier and outcome"
        ).add(1, {"cache": self.name, "tier": tier, "outcome": outcome})

    def _error(self, kind: str, error: Exception, function: _CachedFunction | None) -> None:
        label = type(error).__name__.lstrip("_")
        self._meter().create_counter(CACHE_ERRORS, "Result cache failures by error").add(
            1, {"cache": self.name, "error": label}
        )
        streak = self._streaks.get(kind, 0) + 1
        self._streaks[kind] = streak
        subject = f" of {function.name()}" if function is not None else ""
        what = "Redis failed" if kind == "redis" else f"a value{subject} is unusable"
        # One warning per streak: an outage must not write one line per call.
        level = logging.WARNING if streak == 1 else logging.DEBUG
        logger.log(
            level,
            "result cache %r: %s (%s: %s); calls go on without the cache",
            self.name,
            what,
            label,
            self._describe(error),
        )

    def _recovered(self, kind: str) -> None:
        streak = self._streaks.pop(kind, 0)
        if streak:
            what = "Redis" if kind == "redis" else "cached values"
            logger.info("result cache %r: %s usable again after %d errors", self.name, what, streak)

    def _describe(self, error: Exception) -> str:
        """The error's message, without what may be customer data or the Redis password."""
        if isinstance(error, pydantic.ValidationError):
            # Its message quotes the invalid input, which is a cached result.
            problems = error.errors(include_url=False, include_input=False, include_context=False)
            text = "; ".join(
                f"{'.'.join(map(str, problem['loc'])) or 'value'}: {problem['msg']}"
                for problem in problems
            )
        else:
            text = str(error) or "no details"
        secret = self._redis.password if self._redis is not None else None
        return text.replace(secret, "***") if secret else text

    def _meter(self) -> temporalio.common.MetricMeter:
        if self.metric_meter is not None:
            return self.metric_meter
        if temporalio.activity.in_activity():
            return temporalio.activity.metric_meter()
        return temporalio.runtime.Runtime.default().metric_meter


class _UnencryptedValueError(ShadowError):
    """A Redis value was not encrypted although the cache encrypts what it writes."""

    def __init__(self) -> None:
        super().__init__("the value in Redis is not encrypted; it was not written by this cache")


def cached(
    *, ttl: timedelta, cache: ResultCache | None = None, name: str | None = None
) -> Callable[[Callable[_P, Awaitable[_T]]], Callable[_P, Coroutine[Any, Any, _T]]]:
    """Cache an idempotent async function's results for ``ttl``, in ``cache`` or the default.

    Apply it under ``@activity.defn``. Without ``cache``, each call uses
    :meth:`ResultCache.default` as it is at that moment, so that start-up can
    install a cache built from settings after the activities were defined. Only
    for functions whose result depends on their arguments alone; see
    :meth:`ResultCache.cached`.

    Args:
        ttl: How long a result is served; the bound on its staleness.
        cache: The cache to use; ``None``: the default cache at each call.
        name: Names the function in keys instead of its activity type or
            ``module.qualname``.

    Raises:
        TypeError: The function is not ``async def`` or has no return annotation.
        ValueError: ``ttl`` is not positive.
    """
    if cache is not None:
        return cache.cached(ttl=ttl, name=name)
    return _decorator(ResultCache.default, ttl, name)


def _decorator(
    cache: Callable[[], ResultCache], ttl: timedelta, name: str | None
) -> Callable[[Callable[_P, Awaitable[_T]]], Callable[_P, Coroutine[Any, Any, _T]]]:
    if ttl <= timedelta(0):
        raise ValueError(f"ttl must be positive, not {ttl}")

    def decorate(function: Callable[_P, Awaitable[_T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
        label = getattr(function, "__qualname__", repr(function))
        if not inspect.iscoroutinefunction(function):
            raise TypeError(
                f"cannot cache {label}: only async functions can be cached; "
                "run blocking code with asyncio.to_thread inside an async function"
            )
        if "return" not in getattr(function, "__annotations__", {}):
            raise TypeError(
                f"cannot cache {label}: annotate its return type, to which cached results "
                "are decoded"
            )
        cached_function = _CachedFunction(function, cache, ttl, name)

        @functools.wraps(function)
        async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            resolved = cache()
            result: _T = await resolved._call(cached_function, args, kwargs)
            return result

        cached_function.wrapper = wrapper
        setattr(wrapper, _ATTRIBUTE, cached_function)
        return wrapper

    return decorate


class _CachedFunction:
    """What a decorated function knows: the function, its TTL, and how to name its keys."""

    def __init__(
        self,
        function: Callable[..., Awaitable[Any]],
        cache: Callable[[], ResultCache],
        ttl: timedelta,
        name: str | None,
    ) -> None:
        self.function = function
        self.cache = cache
        self.ttl = ttl
        self.wrapper: Callable[..., Any] = function
        self._name = name
        self._signature = inspect.signature(function)
        parameters = list(self._signature.parameters)
        self._skip_self = bool(parameters) and parameters[0] == "self"
        self._return_type: type | None = None
        self._return_type_known = False

    def name(self) -> str:
        """The activity type if ``@activity.defn`` was applied on top, else ``module.qualname``.

        Looked up on each call: the definition is attached after this decorator runs.
        """
        if self._name is not None:
            return self._name
        definition = temporalio.activity._Definition.from_callable(self.wrapper)
        if definition is not None:
            if definition.name is not None:
                return definition.name
            if temporalio.activity.in_activity():  # A dynamic activity serves many types.
                return temporalio.activity.info().activity_type
        return f"{self.function.__module__}.{self.function.__qualname__}"

    def return_type(self) -> type | None:
        if not self._return_type_known:
            self._return_type = typing.get_type_hints(self.function).get("return")
            self._return_type_known = True
        return self._return_type

    def key(self, cache: ResultCache, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The key of a call: prefix, cache, version, function, sha256 of the arguments."""
        name = self.name()
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = list(bound.arguments.values())
        if self._skip_self:
            values = values[1:]
        try:
            payloads = cache.payload_converter.to_payloads(values)
        except Exception as error:
            raise TypeError(
                f"cannot cache {name}: its arguments cannot be serialized by the payload "
                f"converter ({type(error).__name__}: {error})"
            ) from error
        return f"{cache.key_prefix}:{cache.name}:{cache.version}:{name}:{_digest(payloads)}"


def _digest(payloads: Sequence[Payload]) -> str:
    """A sha256 of payloads that does not depend on the order of JSON object keys."""
    digest = hashlib.sha256()

    def add(part: bytes) -> None:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)

    add(len(payloads).to_bytes(8, "big"))
    for payload in payloads:
        data = payload.data
        if payload.metadata.get("encoding") == b"json/plain":
            with contextlib.suppress(ValueError):  # Not JSON after all: hashed as it is.
                canonical = json.loads(data)
                data = json.dumps(
                    canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False
                ).encode()
        metadata = sorted(payload.metadata.items())
        add(len(metadata).to_bytes(8, "big"))
        for meta_key, meta_value in metadata:
            add(meta_key.encode())
            add(meta_value)
        add(data)
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class _Entry:
    payload: Payload
    expires_at: float


@dataclasses.dataclass(frozen=True)
class _Outcome:
    """What the leader of a single flight hands its joiners."""

    value: Any = None
    payload: Payload | None = None
    retry: bool = False

    def value_for(self, cache: ResultCache, function: _CachedFunction) -> Any:
        """A fresh copy for each joiner, so that none shares a mutable result."""
        if self.payload is None:
            return self.value
        try:
            return cache._decode(self.payload, function)
        except Exception as error:
            cache._error("value", error, function)
            return self.value


class _RedisTier:
    """The Redis client of a cache: one per event loop when built from a URL."""

    def __init__(self, target: str | redis.asyncio.Redis, timeout: timedelta) -> None:
        module = _import_redis()
        self._module = module
        self._timeout = timeout.total_seconds()
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = (
            weakref.WeakKeyDictionary()
        )
        self._url: str | None = None
        self._given: redis.asyncio.Redis | None = None
        self.password: str | None = None
        if isinstance(target, str):
            self._url = target
            # Parsed now, so that a malformed URL fails at start-up, not on first use.
            self.password = module.asyncio.connection.parse_url(target).get("password")
        else:
            self._given = target

    def client(self) -> redis.asyncio.Redis:
        if self._given is not None:
            return self._given
        # A redis.asyncio connection belongs to the loop that opened it.
        loop = asyncio.get_running_loop()
        existing = self._clients.get(loop)
        if existing is not None:
            return existing
        assert self._url is not None  # noqa: S101  Either a URL or a client was given.
        client: redis.asyncio.Redis = self._module.asyncio.Redis.from_url(
            self._url,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            # No retries inside one operation: its timeout is short, and the next call retries.
            retry=self._module.asyncio.retry.Retry(self._module.backoff.NoBackoff(), 0),
        )
        self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


def _import_redis() -> types.ModuleType:
    """The ``redis`` package with the modules the Redis tier uses; the error names the extra."""
    try:
        import redis.asyncio  # noqa: PLC0415  Optional dependency.
        import redis.asyncio.connection  # noqa: PLC0415
        import redis.asyncio.retry  # noqa: PLC0415
        import redis.backoff  # noqa: PLC0415
    except ImportError as error:
        raise ImportError(
            f"the Redis tier of ResultCache needs the redis package: install {_REDIS_EXTRA}"
        ) from error
    return redis
