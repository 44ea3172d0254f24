"""Shared state of a worker process's resilience helpers, set up from its settings."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from shadow_sdk.resilience._cache import ResultCache
from shadow_sdk.resilience._circuit_store import RedisCircuitStore, set_default_circuit_store
from shadow_sdk.resilience._redis import redis_url

if TYPE_CHECKING:
    from shadow_sdk._settings import ShadowSettings


@contextlib.asynccontextmanager
async def shared_state(settings: ShadowSettings, *, name: str) -> AsyncIterator[None]:
    """While the block runs, share breakers' open circuits and cached results via ``REDIS_URL``.

    With ``REDIS_URL`` set, every circuit breaker created without a store
    publishes and reads open circuits in Redis, and :func:`~shadow_sdk.resilience.cached`
    functions use a :class:`ResultCache` whose second tier is Redis (values
    encrypted with the settings' keys). Without it, nothing changes: breakers and
    caches stay per process. :func:`~shadow_sdk.run_worker` wraps the worker in
    it; both defaults are removed, and their connections closed, on exit.

    Args:
        settings: Gives ``redis_url`` and the encryption keys.
        name: Names the cache in metrics and Redis keys, usually the task queue.
    """
    url = redis_url(settings)
    if url is None:
        yield
        return
    store = RedisCircuitStore(url)
    cache = ResultCache.from_settings(settings, name=name)
    set_default_circuit_store(store)
    ResultCache.set_default(cache)
    try:
        yield
    finally:
        set_default_circuit_store(None)
        ResultCache.set_default(None)
        await cache.aclose()
        await store.aclose()
