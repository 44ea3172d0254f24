"""MetricsInterceptor: workflow outcomes and activity executions, counted once, replay or not."""

from __future__ import annotations

import asyncio
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
    restart or cache eviction does not count it again. Labels stay bounded:
    types and outcomes, never ids. Installed by :class:`~shadow_sdk.ShadowPlugin`.
    """

    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        """See base class."""
        return _ActivityInbound(next)

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[temporalio.worker.WorkflowInboundInterceptor]:
        """See base class."""
        return _WorkflowInbound


class _ActivityInbound(temporalio.worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
        info = temporalio.activity.info()
        meter = temporalio.activity.metric_meter()
        waited = info.started_time - info.current_attempt_scheduled_time
        meter.create_histogram_float(
            ACTIVITY_SCHEDULE_TO_START, "Time an activity attempt waited for a worker", "s"
        ).record(max(waited.total_seconds(), 0.0))
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
            meter.create_histogram_float(
                ACTIVITY_DURATION, "Run time of one activity attempt", "s"
            ).record(time.monotonic() - started)
            meter.create_counter(ACTIVITIES, "Activity attempts by outcome").add(
                1, {"outcome": outcome}
            )


class _WorkflowInbound(temporalio.worker.WorkflowInboundInterceptor):
    async def execute_workflow(self, input: temporalio.worker.ExecuteWorkflowInput) -> Any:
        meter = temporalio.workflow.metric_meter()
        meter.create_counter(WORKFLOWS_STARTED, "Workflow runs started").add(1)
        try:
            result = await super().execute_workflow(input)
        except temporalio.workflow.ContinueAsNewError:
            _closed(meter, "continued_as_new")
            raise
        except (asyncio.CancelledError, temporalio.exceptions.CancelledError):
            _closed(meter, "cancelled")
            raise
        except temporalio.exceptions.FailureError:
            _closed(meter, "failed")
            raise
        # Other exceptions fail the workflow task, which Temporal retries: not an outcome.
        _closed(meter, "completed")
        return result


def _closed(meter: temporalio.common.MetricMeter, outcome: str) -> None:
    meter.create_counter(WORKFLOWS_CLOSED, "Workflow runs closed by outcome").add(
        1, {"outcome": outcome}
    )
