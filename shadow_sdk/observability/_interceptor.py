"""MetricsInterceptor: workflow outcomes and activity executions, counted once, replay or not."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import Any

import temporalio.activity
import temporalio.common
import temporalio.exceptions
import temporalio.worker
import temporalio.workflow

WORKFLOWS_STARTED = "shadow_workflows_started"
WORKFLOWS_CLOSED = "shadow_workflows_closed"
ACTIVITIES = "shadow_activities"
ACTIVITY_DURATION = "shadow_activity_duration"
ACTIVITY_SCHEDULE_TO_START = "shadow_activity_schedule_to_start"


RECENT_RUNS = 4096
"""Runs a :class:`MetricsInterceptor` remembers, so that a task retried live counts once."""
_OUTCOMES = ("completed", "failed", "cancelled", "continued_as_new")
_ACTIVITY_OUTCOMES = ("completed", "failed", "cancelled")


class MetricsInterceptor(temporalio.worker.Interceptor):
    """Counts workflows and activities through Temporal's metric meters.

    Metrics (Prometheus names; every one also carries ``namespace`` and
    ``task_queue``, and workflow metrics ``workflow_type``):

    * ``shadow_workflows_started_total``;
    * ``shadow_workflows_closed_total{outcome}``: ``completed``, ``failed``,
      ``cancelled`` or ``continued_as_new``;
    * ``shadow_activities_total{activity_type, outcome}``: ``completed``,
      ``failed`` or ``cancelled``;
    * ``shadow_activity_duration_seconds{activity_type}``, a histogram of one
      attempt's run time;
    * ``shadow_activity_schedule_to_start_seconds{activity_type}``, how long an
      attempt waited for a worker: when it rises, add workers.

    Workflow metrics use ``workflow.metric_meter()``, which records nothing
    while a history is replayed, so a worker that rebuilds a workflow after a
    restart or cache eviction does not count it again. A workflow task that
    failed to complete in time (a task timeout) left nothing in the history, so
    its retry runs the same code live, not replayed: the interceptor remembers
    what it counted for the last :data:`RECENT_RUNS` runs, so that such a run's
    start and close count once in this process. Labels stay bounded: types and
    outcomes, never ids.

    Metric handles are made once per namespace, task queue and workflow or
    activity type, with their labels bound, and reused by every run and attempt:
    making them per run would hand the metrics runtime new objects each time.
    They record into the runtime of the first worker that ran that type on that queue, so
    give workers of different runtimes on one task queue an interceptor each.
    Installed by :class:`~shadow_sdk.ShadowPlugin`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workflow_metrics: dict[tuple[str, str, str], _WorkflowMetrics] = {}
        self._activity_metrics: dict[tuple[str, str, str], _ActivityMetrics] = {}
        self._counted: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()

    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        """See base class."""
        return _ActivityInbound(next, self)

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[temporalio.worker.WorkflowInboundInterceptor]:
        """See base class."""
        # The workflow sandbox builds the interceptor from its class; a subclass per
        # interceptor carries the shared state to it.
        return type("_WorkflowInbound", (_WorkflowInbound,), {"root": self})

    def _workflow(self) -> _WorkflowMetrics:
        info = temporalio.workflow.info()
        key = (info.namespace, info.task_queue, info.workflow_type)
        metrics = self._workflow_metrics.get(key)
        if metrics is None:
            metrics = _WorkflowMetrics(temporalio.workflow.metric_meter())
            with self._lock:
                metrics = self._workflow_metrics.setdefault(key, metrics)
        return metrics

    def _activity(self) -> _ActivityMetrics:
        info = temporalio.activity.info()
        key = (info.namespace, info.task_queue, info.activity_type)
        metrics = self._activity_metrics.get(key)
        if metrics is None:
            metrics = _ActivityMetrics(temporalio.activity.metric_meter())
            with self._lock:
                metrics = self._activity_metrics.setdefault(key, metrics)
        return metrics

    def _first(self, event: str) -> bool:
        """Whether ``event`` of the current run is counted for the first time; remember it.

        Replayed code is never counted (the replay-safe meter records nothing), and
        need not be remembered either.
        """
        if temporalio.workflow.unsafe.is_replaying():
            return False
        key = (temporalio.workflow.info().run_id, event)
        with self._lock:
            if key in self._counted:
                return False
            self._counted[key] = None
            if len(self._counted) > 2 * RECENT_RUNS:
                self._counted.popitem(last=False)
            return True


class _WorkflowMetrics:
    """Handles of one workflow type's metrics, labels bound; replay-safe as the meter is."""

    def __init__(self, meter: temporalio.common.MetricMeter) -> None:
        self.started = meter.create_counter(WORKFLOWS_STARTED, "Workflow runs started")
        closed = meter.create_counter(WORKFLOWS_CLOSED, "Workflow runs closed by outcome")
        self.closed = {
            outcome: closed.with_additional_attributes({"outcome": outcome})
            for outcome in _OUTCOMES
        }


class _ActivityMetrics:
    """Handles of one activity type's metrics, labels bound."""

    def __init__(self, meter: temporalio.common.MetricMeter) -> None:
        self.schedule_to_start = meter.create_histogram_float(
            ACTIVITY_SCHEDULE_TO_START, "Time an activity attempt waited for a worker", "s"
        )
        self.duration = meter.create_histogram_float(
            ACTIVITY_DURATION, "Run time of one activity attempt", "s"
        )
        attempts = meter.create_counter(ACTIVITIES, "Activity attempts by outcome")
        self.attempts = {
            outcome: attempts.with_additional_attributes({"outcome": outcome})
            for outcome in _ACTIVITY_OUTCOMES
        }


class _ActivityInbound(temporalio.worker.ActivityInboundInterceptor):
    def __init__(
        self, next: temporalio.worker.ActivityInboundInterceptor, root: MetricsInterceptor
    ) -> None:
        super().__init__(next)
        self.root = root

    async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
        info = temporalio.activity.info()
        metrics = self.root._activity()
        waited = info.started_time - info.current_attempt_scheduled_time
        metrics.schedule_to_start.record(max(waited.total_seconds(), 0.0))
        started = time.monotonic()
        outcome = "failed"
        try:
            result = await super().execute_activity(input)
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        else:
            outcome = "completed"
            return result
        finally:
            metrics.duration.record(time.monotonic() - started)
            metrics.attempts[outcome].add(1)


class _WorkflowInbound(temporalio.worker.WorkflowInboundInterceptor):
    root: MetricsInterceptor  # Set on the subclass workflow_interceptor_class makes.

    async def execute_workflow(self, input: temporalio.worker.ExecuteWorkflowInput) -> Any:
        metrics = self.root._workflow()
        if self.root._first("started"):
            metrics.started.add(1)
        try:
            result = await super().execute_workflow(input)
        except temporalio.workflow.ContinueAsNewError:
            self._closed(metrics, "continued_as_new")
            raise
        except (asyncio.CancelledError, temporalio.exceptions.CancelledError):
            self._closed(metrics, "cancelled")
            raise
        except temporalio.exceptions.FailureError:
            self._closed(metrics, "failed")
            raise
        # Other exceptions fail the workflow task, which Temporal retries: not an outcome.
        self._closed(metrics, "completed")
        return result

    def _closed(self, metrics: _WorkflowMetrics, outcome: str) -> None:
        if self.root._first("closed"):
            metrics.closed[outcome].add(1)
