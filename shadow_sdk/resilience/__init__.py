"""Resilience helpers: saga compensation, circuit breakers, activity presets, result caching.

* :class:`Saga`, workflow code: undo completed steps when a workflow fails or is
  cancelled.
* Activity presets (:data:`QUICK`, :data:`EXTERNAL_API`, :data:`LONG_RUNNING`):
  timeouts and retry policies to spread into ``workflow.execute_activity``.

Import what workflow code uses through ``workflow.unsafe.imports_passed_through()``.
"""

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

__all__ = [
    "COMPENSATION_FAILED",
    "EXTERNAL_API",
    "LONG_RUNNING",
    "NON_RETRYABLE_ERROR_TYPES",
    "QUICK",
    "ActivityOptions",
    "CompensationOutcome",
    "Saga",
    "SagaResult",
]
