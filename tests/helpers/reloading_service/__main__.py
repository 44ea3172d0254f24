"""``worker`` as a generated service runs it, and ``--reload`` as its ``worker --reload`` does."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from shadow_sdk import ShadowSettings, run_and_exit, run_with_reload, run_worker

from .activities import greet, linger
from .workflows import GreetWorkflow, LingerWorkflow

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = ShadowSettings()
    if "--reload" in sys.argv:
        run_and_exit(
            run_with_reload(
                [sys.executable, "-m", "reloading_service"],
                settings=settings,
                watch=[Path(__file__).parent],
            )
        )
    run_and_exit(
        run_worker(settings, workflows=[GreetWorkflow, LingerWorkflow], activities=[greet, linger])
    )
