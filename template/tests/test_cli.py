"""End-to-end tests of the worker process on a dev server: probes, SIGTERM, bad settings."""

from __future__ import annotations

import json

from shadow_sdk.testing import Cli, StartWorker, WorkerProcess


async def test_the_worker_serves_probes_health_and_metrics(worker: WorkerProcess) -> None:
    """/ready answers 200 while the worker polls; /health says so; /metrics is Prometheus'."""
    ready = worker.get("/ready")
    health = json.loads(worker.get("/health")[1])
    metrics = worker.get("/metrics")

    assert ready[0] == 200
    assert health["status"] == "polling"
    assert health["task_queue"] == worker.env["TEMPORAL_TASK_QUEUE"]
    assert metrics[0] == 200
    assert "# TYPE process_cpu_seconds_total counter" in metrics[1]


async def test_sigterm_stops_the_worker_cleanly(start_worker: StartWorker) -> None:
    """The worker drains and exits 0 on SIGTERM, as Kubernetes stops it."""
    worker = await start_worker()

    code = worker.stop()

    assert code == 0, worker.output
    assert "worker stopped" in worker.output


async def test_invalid_settings_stop_the_command_with_their_names(
    cli: Cli, service_env: dict[str, str]
) -> None:
    """A bad variable is named at start-up, before anything connects."""
    code, _, stderr = await cli("worker", env={**service_env, "TEMPORAL_ADDRESS": "no-port"})

    assert code == 2
    assert "TEMPORAL_ADDRESS='no-port': expected host:port" in stderr
