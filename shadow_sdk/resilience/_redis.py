"""Redis for the resilience helpers: one way to connect, to bound a command, and to seal a value.

Both users of Redis, :class:`~shadow_sdk.resilience.RedisCircuitStore` and the
second tier of :class:`~shadow_sdk.resilience.ResultCache`, talk to it through a
:class:`RedisConnection`:

* **Clients**: from a ``redis://`` or ``rediss://`` URL (usually ``REDIS_URL``),
  one client per event loop, because a ``redis.asyncio`` connection belongs to
  the loop that opened it; or a client the caller made, owns and closes.
* **Timeouts**: every command is bounded by the connection's timeout, on the
  socket and around the whole command, and never retried inside that bound: a
  caller that must not wait for Redis gets its answer, or an error, in time.
* **Errors** are raised to the caller, which decides what a failure costs (the
  breaker keeps to its local state, the cache calls the function). Messages meant
  for logs go through :meth:`RedisConnection.redact`, which hides the password.
* **Values** that may be customer data are sealed with the service's payload
  codec before they are written (:func:`seal`), and a value read back that is not
  encrypted although the codec encrypts is refused (:func:`unseal`), so that
  whoever can write to Redis cannot plant results.

Needs the ``redis`` package, the ``shadow-sdk[redis]`` extra.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

import temporalio.api.common.v1
import temporalio.converter

from shadow_sdk._exceptions import ShadowError
from shadow_sdk.codec._encryption import ENCODING as _ENCRYPTED
from shadow_sdk.codec._encryption import EncryptionCodec

if TYPE_CHECKING:
    import types

    import redis.asyncio

    from shadow_sdk._settings import ShadowSettings

REDIS_EXTRA = "shadow-sdk[redis]"

_T = TypeVar("_T")
Payload = temporalio.api.common.v1.Payload


def redis_url(settings: ShadowSettings) -> str | None:
    """The ``REDIS_URL`` of ``settings``, or ``None`` when Redis is not configured."""
    url = settings.redis_url
    return None if url is None else url.get_secret_value()


def import_redis(user: str) -> types.ModuleType:
    """The ``redis`` package with the modules used here; the error names ``user`` and the extra."""
    try:
        import redis.asyncio  # noqa: PLC0415  An optional dependency.
        import redis.asyncio.connection  # noqa: PLC0415
        import redis.asyncio.retry  # noqa: PLC0415
        import redis.backoff  # noqa: PLC0415
    except ImportError as error:
        raise ImportError(f"{user} needs the redis package: install {REDIS_EXTRA}") from error
    return redis


class RedisConnection:
    """Redis clients for one user, with a bound on every command.

    Args:
        target: A ``redis://`` or ``rediss://`` URL, or a ``redis.asyncio.Redis``
            client that the caller owns and closes.
        timeout: Bound of each command, and of connecting.
        user: Names what needs Redis in the error raised when the package is missing.

    Raises:
        ImportError: The ``redis`` package is not installed.
        ValueError: ``target`` is not a valid Redis URL.
    """

    def __init__(self, target: str | redis.asyncio.Redis, *, timeout: timedelta, user: str) -> None:
        self._module = import_redis(user)
        self.timeout = timeout
        self._seconds = timeout.total_seconds()
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = (
            weakref.WeakKeyDictionary()
        )
        self._url: str | None = None
        self._given: redis.asyncio.Redis | None = None
        self.password: str | None = None
        if isinstance(target, str):
            self._url = target
            # Parsed now, so that a malformed URL fails at start-up, not on first use.
            self.password = self._module.asyncio.connection.parse_url(target).get("password")
        else:
            self._given = target

    @property
    def owned(self) -> bool:
        """Whether the clients are made here (from a URL), and closed by :meth:`aclose`."""
        return self._given is None

    def client(self) -> redis.asyncio.Redis:
        """The given client, or the running event loop's client made from the URL."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        existing = self._clients.get(loop)
        if existing is not None:
            return existing
        module = self._module
        client: redis.asyncio.Redis = module.asyncio.Redis.from_url(
            self._url,
            socket_timeout=self._seconds,
            socket_connect_timeout=self._seconds,
            # No retries inside one command: its bound is short, and the next call retries.
            retry=module.asyncio.retry.Retry(module.backoff.NoBackoff(), 0),
        )
        self._clients[loop] = client
        return client

    async def run(self, command: Callable[[redis.asyncio.Redis], Awaitable[_T]]) -> _T:
        """``command(client)``, bounded by the timeout.

        Raises:
            TimeoutError: Redis did not answer within the timeout.
            Exception: Whatever the client raised, such as ``redis.ConnectionError``.
        """
        async with asyncio.timeout(self._seconds):
            return await command(self.client())

    def redact(self, text: str) -> str:
        """``text`` without the URL's password, for logs."""
        return text.replace(self.password, "***") if self.password else text

    async def aclose(self) -> None:
        """Close the client made for the running event loop, if any; a given client stays open."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


class UnencryptedValueError(ShadowError):
    """A Redis value was not encrypted although the codec encrypts what is written."""

    def __init__(self) -> None:
        super().__init__("the value in Redis is not encrypted; it was not written by this cache")


async def seal(payload: Payload, codec: temporalio.converter.PayloadCodec | None) -> bytes:
    """The bytes to store in Redis for ``payload``: encoded with ``codec`` first, if any."""
    if codec is not None:
        [payload] = await codec.encode([payload])
    return payload.SerializeToString()


async def unseal(stored: bytes, codec: temporalio.converter.PayloadCodec | None) -> Payload:
    """The payload that :func:`seal` stored.

    Raises:
        UnencryptedValueError: ``codec`` encrypts, and the value is not encrypted.
        Exception: The bytes are not a payload, or ``codec`` cannot decode them.
    """
    payload = Payload.FromString(stored)
    if isinstance(codec, EncryptionCodec) and payload.metadata.get("encoding") != _ENCRYPTED:
        raise UnencryptedValueError
    if codec is not None:
        [payload] = await codec.decode([payload])
    return payload
