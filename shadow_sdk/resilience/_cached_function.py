"""A cached function: the decorator, what the function knows about itself, and its keys.

A key is ``<key_prefix>:<cache>:<version>:<function>:<sha256>``; the hash covers
the call's arguments, bound to the signature with defaults applied and
serialized by the cache's payload converter, with JSON object keys sorted.

Serializing and hashing costs tens of microseconds, far more than the rest of a
memory hit, so a :class:`DigestMemo` remembers the digests of recent calls whose
arguments are plain ``str``, ``int``, ``bool`` or ``None``: of those, equal
values of the same type always serialize alike (``1`` and ``True`` are equal but
of different types; floats are left out, as ``0.0 == -0.0``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import typing
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import temporalio.activity
import temporalio.api.common.v1
import temporalio.converter

from shadow_sdk._duration import Duration, to_timedelta
from shadow_sdk.resilience._activity_type import activity_definition

if TYPE_CHECKING:
    from shadow_sdk.resilience._cache import ResultCache

Payload = temporalio.api.common.v1.Payload

ATTRIBUTE = "__shadow_result_cache__"
"""Where the decorated function keeps its :class:`CachedFunction`."""

_P = ParamSpec("_P")
_T = TypeVar("_T")
_MEMO_SIZE = 4096
_PLAIN = frozenset({str, int, bool, type(None)})


class CachedFunction:
    """A decorated function: the function, its TTL, its cache, and how to name its keys.

    Attributes:
        function: The function whose results are cached.
        cache: Returns the cache to use, looked up at each call.
        ttl: How long a result is served.
        wrapper: The decorated function that callers call.
    """

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
        # Found once @activity.defn, applied after this decorator, has named the wrapper.
        self._name = name
        self._qualified = f"{function.__module__}.{function.__qualname__}"
        self._signature = inspect.signature(function)
        parameters = list(self._signature.parameters)
        self.skip_self = bool(parameters) and parameters[0] == "self"
        self._return_type: type | None = None
        self._return_type_known = False

    def name(self) -> str:
        """The activity type if ``@activity.defn`` was applied on top, else ``module.qualname``."""
        if self._name is not None:
            return self._name
        is_activity, activity_type = activity_definition(self.wrapper)
        if activity_type is not None:
            self._name = activity_type
            return activity_type
        if is_activity and temporalio.activity.in_activity():  # A dynamic activity: many types.
            return temporalio.activity.info().activity_type
        return self._qualified

    def return_type(self) -> type | None:
        """The return annotation, to which cached payloads are decoded."""
        if not self._return_type_known:
            self._return_type = typing.get_type_hints(self.function).get("return")
            self._return_type_known = True
        return self._return_type

    def digest(
        self,
        converter: temporalio.converter.PayloadConverter,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> str:
        """The sha256 of the call's arguments as ``converter`` serializes them.

        Raises:
            TypeError: ``converter`` cannot serialize the arguments.
        """
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = list(bound.arguments.values())
        if self.skip_self:
            values = values[1:]
        try:
            payloads = converter.to_payloads(values)
        except Exception as error:
            raise TypeError(
                f"cannot cache {self.name()}: its arguments cannot be serialized by the payload "
                f"converter ({type(error).__name__}: {error})"
            ) from error
        return _digest(payloads)


def decorator(
    cache: Callable[[], ResultCache], ttl: Duration, name: str | None
) -> Callable[[Callable[_P, Awaitable[_T]]], Callable[_P, Coroutine[Any, Any, _T]]]:
    """The decorator of :meth:`ResultCache.cached` and :func:`cached`: ``cache()`` at each call."""
    lifetime = to_timedelta(ttl, "ttl", positive=True)

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
        cached_function = CachedFunction(function, cache, lifetime, name)

        @functools.wraps(function)
        async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            result: _T = await cache()._call(cached_function, args, kwargs)
            return result

        cached_function.wrapper = wrapper
        setattr(wrapper, ATTRIBUTE, cached_function)
        return wrapper

    return decorate


class DigestMemo:
    """The digests of recent calls with plain arguments, for one cache and its converter."""

    def __init__(self) -> None:
        self._digests: dict[tuple[Any, ...], str] = {}
        self._converter: temporalio.converter.PayloadConverter | None = None

    def digest(
        self,
        function: CachedFunction,
        converter: temporalio.converter.PayloadConverter,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> str:
        """``function.digest(converter, args, kwargs)``, remembered when the arguments are plain."""
        if converter is not self._converter:  # Another converter, other digests.
            self._digests.clear()
            self._converter = converter
        memo = _memo_key(function, args, kwargs)
        if memo is None:
            return function.digest(converter, args, kwargs)
        digest = self._digests.get(memo)
        if digest is None:
            digest = function.digest(converter, args, kwargs)
            if len(self._digests) >= _MEMO_SIZE:
                del self._digests[next(iter(self._digests))]
            self._digests[memo] = digest
        return digest


def _memo_key(
    function: CachedFunction, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...] | None:
    """What identifies a call whose arguments all serialize alike when equal; else ``None``."""
    if function.skip_self and args:
        args = args[1:]  # Not part of the key: instances share entries.
    types = tuple(map(type, args))
    if not _PLAIN.issuperset(types):
        return None
    if not kwargs:
        return (function, args, types)
    keyword_types = tuple(map(type, kwargs.values()))
    if not _PLAIN.issuperset(keyword_types):
        return None
    return (function, args, types, tuple(kwargs.items()), keyword_types)


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
