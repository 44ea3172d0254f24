"""Resilience helpers: saga compensation, circuit breakers, activity presets, result caching.

* :class:`Saga`, workflow code: undo completed steps when a workflow fails or is
  cancelled.
* :class:`CircuitBreaker` and :func:`circuit_breaker`: stop calling a dependency
  that keeps failing; inside an activity, an open circuit tells Temporal's retry
  how long to wait.
* Activity presets (:data:`QUICK`, :data:`EXTERNAL_API`, :data:`LONG_RUNNING`):
  timeouts and retry policies to spread into ``workflow.execute_activity``.
* :class:`ResultCache` and :func:`cached`: serve repeated calls of idempotent
  activities from memory and Redis.
* :func:`shared_state`: share open circuits and cached results between the
  workers of a service through ``REDIS_URL``.

:class:`Saga` and the presets are workflow code; a workflow module imports them
inside ``workflow.unsafe.imports_passed_through()``. Breakers and the cache belong
in activities.
"""

from shadow_sdk.resilience._cache import ResultCache, cached
from shadow_sdk.resilience._circuit_breaker import CircuitBreaker
from shadow_sdk.resilience._circuit_config import CircuitBreakerConfig, CircuitBreakerOptions
from shadow_sdk.resilience._circuit_registry import circuit_breaker
from shadow_sdk.resilience._circuit_state import CircuitOpenError, CircuitState, CircuitStats
from shadow_sdk.resilience._circuit_store import (
    CircuitStore,
    RedisCircuitStore,
    set_default_circuit_store,
)
from shadow_sdk.resilience._retry import (
    EXTERNAL_API,
    LONG_RUNNING,
    NON_RETRYABLE_ERROR_TYPES,
    QUICK,
    ActivityOptions,
)
from shadow_sdk.resilience._saga import (
    COMPENSATION_FAILED,
    CompensationOutcome,
    Saga,
    SagaResult,
)
from shadow_sdk.resilience._shared import shared_state

__all__ = [
    "COMPENSATION_FAILED",
    "EXTERNAL_API",
    "LONG_RUNNING",
    "NON_RETRYABLE_ERROR_TYPES",
    "QUICK",
    "ActivityOptions",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerOptions",
    "CircuitOpenError",
    "CircuitState",
    "CircuitStats",
    "CircuitStore",
    "CompensationOutcome",
    "RedisCircuitStore",
    "ResultCache",
    "Saga",
    "SagaResult",
    "cached",
    "circuit_breaker",
    "set_default_circuit_store",
    "shared_state",
]
