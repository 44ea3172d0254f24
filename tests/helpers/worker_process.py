"""A worker process as a service runs it: settings from the environment, run_worker()."""

from __future__ import annotations

from workflows import (
    SlowStepWorkflow,
    SquaresWorkflow,
    StubbornWorkflow,
    shared_square_step,
    slow_step,
    square_step,
    stubborn_step,
)

from shadow_sdk import ShadowSettings, run_and_exit, run_worker

if __name__ == "__main__":
    run_and_exit(
        run_worker(
            ShadowSettings(),
            workflows=[SlowStepWorkflow, StubbornWorkflow, SquaresWorkflow],
            activities=[slow_step, stubborn_step, square_step, shared_square_step],
        )
    )
