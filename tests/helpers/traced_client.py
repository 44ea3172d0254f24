"""A client process as a service's CLI runs it: settings from the environment, traced.

Runs one SlowStepWorkflow with the workflow id given as its argument, prints the result,
and exports its spans on the way out, as a process with ``OTEL_EXPORTER_OTLP_ENDPOINT`` does.
"""

from __future__ import annotations

import sys

from workflows import SlowStepWorkflow

from shadow_sdk import ShadowSettings, connect, run_and_exit
from shadow_sdk.observability import Observability


async def main(workflow_id: str) -> None:
    settings = ShadowSettings()
    async with Observability.install(settings) as observability:
        client = await connect(settings, runtime=observability.runtime)
        result = await client.execute_workflow(
            SlowStepWorkflow.run, 0.1, id=workflow_id, task_queue=str(settings.temporal_task_queue)
        )
        print(result)


if __name__ == "__main__":
    run_and_exit(main(sys.argv[1]))
