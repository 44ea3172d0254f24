"""A worker process as a service runs it: settings from the environment, run_worker()."""

from __future__ import annotations

import logging

from workflows import SlowStepWorkflow, slow_step

from shadow_sdk import ShadowSettings, run_and_exit, run_worker

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
    run_and_exit(run_worker(ShadowSettings(), workflows=[SlowStepWorkflow], activities=[slow_step]))
