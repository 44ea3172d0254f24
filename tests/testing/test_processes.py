"""The harness of processes: a dev server, a service's worker and command line, for real."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import prometheus_client
import pytest
from aiohttp import web
from helpers.workflows import SquaresWorkflow
from temporalio.client import Client

from shadow_sdk.observability import OpsServer
from shadow_sdk.testing import (
    BackgroundProcess,
    Credentials,
    DevServer,
    FakeClock,
    OpsClient,
    ProcessExited,
    RedisServer,
    WorkerProcess,
    accepts_connections,
    free_port,
    run_command,
)

pytestmark = pytest.mark.slow

WORKER = [sys.executable, str(Path(__file__).parents[1] / "helpers" / "worker_process.py")]


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    with DevServer() as server:
        yield server


def worker_env(server: DevServer, task_queue: str, **env: str) -> dict[str, str]:
    return {"TEMPORAL_ADDRESS": server.address, "TEMPORAL_TASK_QUEUE": task_queue, **env}


async def test_a_worker_process_polls_serves_its_probes_and_drains(
    server: DevServer, task_queue: str
) -> None:
    """start() returns once it polls; its ops port answers; SIGTERM drains it to exit 0."""
    with WorkerProcess(WORKER, worker_env(server, task_queue)) as worker:
        client = await Client.connect(server.address)
        async with asyncio.timeout(60):
            squares = await client.execute_workflow(
                SquaresWorkflow.run,
                args=[3, 0.0, False],
                id=f"squares-{uuid.uuid4()}",
                task_queue=task_queue,
            )
        ready = worker.get("/ready")
        completed = worker.scrape().value(
            "shadow_workflows_closed_total", workflow_type="SquaresWorkflow", outcome="completed"
        )
        async with asyncio.timeout(30):
            waited = await worker.wait_for_ready()
            ready_from_the_loop = await worker.ops.get("/ready")
            scraped_from_the_loop = await worker.ops.scrape()

    assert squares == [0, 1, 4]
    assert ready == ready_from_the_loop == (200, "ready\n")
    assert waited == "ready\n"
    assert completed == 1
    assert (
        scraped_from_the_loop.value(
            "shadow_workflows_closed_total", workflow_type="SquaresWorkflow", outcome="completed"
        )
        == 1
    )
    assert worker.returncode == 0
    assert "worker polling" in worker.output
    assert "worker stopped" in worker.output


def test_a_worker_that_exits_at_start_fails_with_its_output(server: DevServer) -> None:
    """Bad settings: start() does not wait out its timeout, it says what the worker said."""
    env = worker_env(server, "queue", TEMPORAL_ADDRESS="no-port")

    with pytest.raises(ProcessExited, match="worker exited with 1") as info:
        WorkerProcess(WORKER, env).start(timeout=60)

    assert "TEMPORAL_ADDRESS='no-port': expected host:port" in str(info.value)


async def test_waiting_for_ready_fails_with_the_output_of_a_worker_that_exited(
    server: DevServer,
) -> None:
    """Bad settings: the wait ends when the worker does, and says what it said."""
    env = worker_env(server, "queue", TEMPORAL_ADDRESS="no-port")
    worker = WorkerProcess(WORKER, env).start(until=None)

    with pytest.raises(ProcessExited, match="worker exited with 1") as info:
        async with asyncio.timeout(60):
            await worker.wait_for_ready()

    assert "TEMPORAL_ADDRESS='no-port': expected host:port" in str(info.value)


def test_a_worker_killed_is_gone_at_once(server: DevServer, task_queue: str) -> None:
    """kill() is SIGKILL: no drain, the status says so."""
    worker = WorkerProcess(WORKER, worker_env(server, task_queue)).start()

    assert worker.kill() == -signal.SIGKILL
    assert "worker stopped" not in worker.output


def test_a_restart_waits_for_its_port_while_another_process_holds_it(tmp_path: Path) -> None:
    """Between stop() and start() something else may listen on the port for a moment."""
    server = DevServer(database=tmp_path / "temporal.db")
    with server:
        server.stop()
        squatter = socket.create_server((server.host, server.port))
        threading.Timer(3, squatter.close).start()
        server.start()

        assert server.returncode is None
        assert squatter.fileno() == -1  # It answered only once the port was free again.


def test_a_first_start_on_a_taken_port_fails_at_once() -> None:
    """Only a restart waits for its port: a port taken from the start is a mistake."""
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        server = DevServer(port=squatter.getsockname()[1])
        with pytest.raises(ProcessExited, match="address already in use"):
            server.start(timeout=60)

    assert server.returncode is not None


def test_a_dev_server_on_a_file_keeps_its_state_across_a_restart(tmp_path: Path) -> None:
    """stop() and start() on the same port and SQLite file: the namespace answers again."""
    database = tmp_path / "temporal.db"
    server = DevServer(database=database)
    with server:
        port = server.port
        server.stop()
        server.start()

        assert server.port == port
        assert database.stat().st_size > 0
        assert server.returncode is None
    assert server.returncode is not None


async def test_run_command_gives_the_status_and_both_streams() -> None:
    """A command's exit status, stdout and stderr, as a named tuple."""
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"

    result = await run_command([sys.executable, "-c", script])

    assert result == (3, "out\n", "err\n")
    assert result.returncode == 3


async def test_run_command_is_killed_when_its_wait_is_cancelled() -> None:
    """Bounded with asyncio.timeout, a command that hangs does not outlive the test."""
    marker = f"hangs-{uuid.uuid4().hex}"
    script = f"import time; time.sleep(600)  # {marker}"

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1):
            await run_command([sys.executable, "-c", script])

    still = await run_command(["pgrep", "-f", marker])
    assert still.returncode == 1, still.stdout


def test_credentials_sign_tokens_their_secret_verifies() -> None:
    """Keys and a token secret for one session; the token verifies with that secret."""
    from shadow_sdk.auth import TokenVerifier  # noqa: PLC0415

    credentials = Credentials.generate()
    claims = TokenVerifier(hs256_secret=credentials.hs256_secret).verify(
        credentials.token("ada", "operator")
    )

    assert (claims.subject, claims.roles) == ("ada", frozenset({"operator"}))
    assert len(credentials.codec_keys) == 1
    assert Credentials.generate().hs256_secret != credentials.hs256_secret


def test_a_fake_clock_moves_only_when_told() -> None:
    """Seconds or a timedelta forward; never back."""
    clock = FakeClock(start=10)
    clock.advance(2.5)

    assert clock() == 12.5
    with pytest.raises(ValueError, match="by"):
        clock.advance(-1)


SERVICE = textwrap.dedent(
    """
    from shadow_sdk import ShadowSettings, run_and_exit, run_worker
    import sys

    from workflows import SquaresWorkflow, square_step

    if sys.argv[1] == "worker":
        run_and_exit(run_worker(ShadowSettings(), workflows=[SquaresWorkflow], activities=[square_step]))
    print("hello from", ShadowSettings().temporal_task_queue)
    """
)


@pytest.mark.parametrize("fork", ["true", "false"])
def test_the_service_fixtures_run_a_service_as_processes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fork: str
) -> None:
    """A suite naming its service gets a shared worker, workers of its own, and its command.

    Forked from a server that imported the service, or each started with ``python -m``.
    """
    helpers = Path(__file__).parents[1] / "helpers"
    monkeypatch.setenv("PYTHONPATH", str(helpers))  # The service imports the test workflows.
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nasyncio_mode = auto\n"
        f"shadow_service = toyservice\nshadow_service_fork = {fork}\n"
    )
    package = pytester.mkpydir("toyservice")
    (package / "__main__.py").write_text(SERVICE)
    pytester.makepyfile(
        test_service="""
        import uuid

        from temporalio.client import Client
        from workflows import SquaresWorkflow

        async def start(env, service_client):
            return await service_client.execute_workflow(
                SquaresWorkflow.run,
                args=[4, 0.0, False],
                id=str(uuid.uuid4()),
                task_queue=env["TEMPORAL_TASK_QUEUE"],
            )

        async def test_shared(worker, cli, service_env, service_client, service_fork_server):
            assert (service_fork_server is not None) == FORK
            assert await start(service_env, service_client) == [0, 1, 4, 9]
            code, stdout, _ = await cli("hello")
            assert (code, stdout) == (0, f"hello from {service_env['TEMPORAL_TASK_QUEUE']}\\n")

        async def test_own(start_worker, service_client, task_queue):
            worker = await start_worker()
            assert worker.env["TEMPORAL_TASK_QUEUE"] == task_queue
            assert await start(worker.env, service_client) == [0, 1, 4, 9]
            assert worker.get("/ready")[0] == 200
        """.replace("FORK", fork.title())
    )

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--timeout=300")

    result.assert_outcomes(passed=2)


def test_a_process_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    """stop() waits out its timeout, then SIGKILL; the log holds what it printed."""
    stubborn = textwrap.dedent(
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("up", flush=True)
        time.sleep(60)
        """
    )
    log = tmp_path / "stubborn.log"
    process = BackgroundProcess([sys.executable, "-c", stubborn], log=log, name="stubborn")
    process.start(until="up")

    assert process.stop(timeout=0.5) == -signal.SIGKILL
    assert log.read_text() == "up\n"


LISTENS_LATE = textwrap.dedent(
    """
    import socket, sys, time
    print("starting", flush=True)
    time.sleep(float(sys.argv[2]))
    server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    time.sleep(60)
    """
)


def test_a_server_that_says_nothing_is_waited_for_until_it_listens() -> None:
    """wait_until_listening returns once the port accepts connections, not before."""
    port = free_port()
    with BackgroundProcess([sys.executable, "-c", LISTENS_LATE, str(port), "0.5"]) as server:
        server.start(until="starting")
        assert not accepts_connections(port)

        server.wait_until_listening(port, timeout=30)

        assert accepts_connections(port)
    assert not accepts_connections(port)


def test_a_server_that_exits_before_it_listens_fails_with_its_output() -> None:
    """No waiting out the timeout: the process is gone, and what it printed says why."""
    port = free_port()
    script = "import sys; print('no such port', flush=True); sys.exit(4)"
    server = BackgroundProcess([sys.executable, "-c", script], name="server").start()

    with pytest.raises(ProcessExited, match="server exited with 4:\nno such port"):
        server.wait_until_listening(port, timeout=60)


def test_a_redis_server_that_exits_at_start_says_so_and_is_not_running() -> None:
    """start() fails at once, naming the executable and its status."""
    server = RedisServer(executable=Path(sys.executable))  # Python refuses redis' arguments.

    with pytest.raises(RuntimeError, match=r"python\S* exited with 2"):
        server.start()

    assert not server.running


async def test_an_ops_client_reads_a_server_on_its_own_event_loop() -> None:
    """A worker of the test's own process: its ops server answers the loop that awaits it."""
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("jobs", "Jobs done.", registry=registry).inc(3)
    async with OpsServer(registry=registry, host="127.0.0.1", port=0) as server:
        ops = OpsClient(f"http://127.0.0.1:{server.port}")
        live = await ops.get("/live")
        ready = await ops.get("/ready")
        metrics = await ops.scrape()

    assert live == (200, "live\n")
    assert ready == (503, "not ready: starting\n")
    assert metrics.types["jobs"] == "counter"
    assert metrics.value("jobs_total") == 3


@pytest.mark.parametrize(
    ("status", "content_type", "refusal"),
    [(200, "text/html", "answered text/html, not text/plain"), (503, "text/plain", "answered 503")],
)
async def test_a_metrics_page_prometheus_would_not_take_is_refused(
    status: int, content_type: str, refusal: str
) -> None:
    """A page that is not a 200 in Prometheus' text format is no scrape, read either way."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(status=status, text="up 1\n", content_type=content_type)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        with pytest.raises(ValueError, match=refusal):
            await OpsClient(f"http://127.0.0.1:{port}").scrape()
        worker = WorkerProcess(["true"], {"METRICS_PORT": str(port)})
        with pytest.raises(ValueError, match=refusal):
            await asyncio.to_thread(worker.scrape)
    finally:
        await runner.cleanup()
