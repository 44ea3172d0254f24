"""End-to-end tests of the worker process on a dev server: probes, SIGTERM, bad settings."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Awaitable, Callable

Cli = Callable[..., Awaitable[tuple[int, str, str]]]
Ops = Callable[[str], Awaitable[tuple[int, str]]]


async def test_the_worker_serves_probes_health_and_metrics(
    worker: asyncio.subprocess.Process, ops: Ops, service_env: dict[str, str]
) -> None:
    """/ready answers 200 while the worker polls; /health says so; /metrics is Prometheus'."""
    ready = await ops("/ready")
    health = json.loads((await ops("/health"))[1])
    metrics = await ops("/metrics")

    assert ready[0] == 200
    assert health["status"] == "polling"
    assert health["task_queue"] == service_env["TEMPORAL_TASK_QUEUE"]
    assert metrics[0] == 200
    assert "# TYPE process_cpu_seconds_total counter" in metrics[1]


async def test_sigterm_stops_the_worker_cleanly(worker: asyncio.subprocess.Process) -> None:
    """The worker drains and exits 0 on SIGTERM, as Kubernetes stops it."""
    worker.send_signal(signal.SIGTERM)
    output, _ = await asyncio.wait_for(worker.communicate(), timeout=60)

    assert worker.returncode == 0, output.decode()
    assert b"worker stopped" in output


async def test_invalid_settings_stop_the_command_with_their_names(
    cli: Cli, settings_env: dict[str, str]
) -> None:
    """A bad variable is named at start-up, before anything connects."""
    env = {**os.environ, **settings_env, "TEMPORAL_ADDRESS": "no-port"}

    code, _, stderr = await cli("worker", env=env)

    assert code == 2
    assert "TEMPORAL_ADDRESS='no-port': expected host:port" in stderr
