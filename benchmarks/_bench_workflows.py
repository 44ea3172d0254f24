"""The workflow that ``worker.py`` and ``soak.py`` run, in a module of their own.

The workflow sandbox executes a workflow's module again for every workflow run.
Were it defined in ``worker.py``, each run would also compile and execute the
benchmark's harness, which would weigh on both variants alike and hide part of
what the plugin costs; here the sandbox loads only what a service's workflow
module holds, and takes its type and activity from ``_bench_activities.py``
through ``imports_passed_through()``, as a service's workflows do. Running this
file does nothing.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from _bench_activities import Order, confirm_order

__all__ = ["Order", "OrderWorkflow", "confirm_order"]


@workflow.defn
class OrderWorkflow:
    """Runs one activity and returns its result."""

    @workflow.run
    async def run(self, order: Order) -> Order:
        """Confirm ``order``."""
        return await workflow.execute_activity(
            confirm_order, order, start_to_close_timeout=timedelta(seconds=60)
        )
