"""A fork server: a program's processes without its import time.

A service's command line imports temporalio, pydantic and the SDK: about 1.5 s of CPU
per process on a small machine, before it does anything. An end-to-end suite runs it
dozens of times. :class:`ForkServer` imports the program once, in a process of its own,
and forks a child per run: each child is still a process of its own (own pid, session,
environment, standard streams and exit status, ``atexit`` handlers run at its end), it
only starts with the modules already imported. The server never starts a thread or an
event loop, so the children fork from a clean state.

POSIX only (``fork`` and Unix sockets): :meth:`ForkServer.supported` says whether it
runs here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self, cast

from shadow_sdk._duration import Duration, to_timedelta
from shadow_sdk.testing._fork_server_main import ANSWER, HEADER
from shadow_sdk.testing._processes import BackgroundProcess

_SERVER_SOURCE = Path(__file__).with_name("_fork_server_main.py")
_READY = "fork server ready"


class ForkedProcess:
    """A child of the fork server, driven as :class:`subprocess.Popen` drives a process.

    ``stdout`` is the read end of its standard output (with its standard error when
    they were merged), ``stderr`` that of its standard error otherwise.
    """

    def __init__(
        self,
        args: Sequence[str],
        connection: socket.socket,
        stdout: IO[bytes],
        stderr: IO[bytes] | None,
    ) -> None:
        self.args = list(args)
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self._connection = connection
        self._lock = threading.Lock()
        self.pid = self._read_answer(None)

    def _read_answer(self, timeout: float | None) -> int:
        self._connection.settimeout(timeout)
        data = b""
        while len(data) < ANSWER.size:
            chunk = self._connection.recv(ANSWER.size - len(data))
            if not chunk:
                raise ConnectionError(f"the fork server stopped before {self.args} ended")
            data += chunk
        (value,) = ANSWER.unpack(data)
        return int(value)

    def _exited(self, code: int) -> int:
        self.returncode = code
        self._connection.close()
        return code

    def poll(self) -> int | None:
        """Its exit status if it ended, else ``None``."""
        if self.returncode is not None or not self._lock.acquire(blocking=False):
            return self.returncode
        try:
            if self.returncode is None:
                with contextlib.suppress(TimeoutError, BlockingIOError):
                    return self._exited(self._read_answer(0))
            return self.returncode
        finally:
            self._lock.release()

    def wait(self, timeout: Duration | None = None) -> int:
        """Wait up to ``timeout`` (seconds or a ``timedelta``) for it to end; its exit status.

        Raises:
            subprocess.TimeoutExpired: It still runs after ``timeout``.
        """
        if timeout is not None:
            timeout = to_timedelta(timeout, "timeout", non_negative=True).total_seconds()
        with self._lock:
            if self.returncode is not None:
                return self.returncode
            try:
                return self._exited(self._read_answer(timeout))
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout or 0) from None

    async def wait_async(self) -> int:
        """Wait for it to end from an event loop, without blocking it; its exit status."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.returncode is not None:
                return self.returncode
            self._connection.setblocking(False)
            data = b""
            while len(data) < ANSWER.size:
                chunk = await loop.sock_recv(self._connection, ANSWER.size - len(data))
                if not chunk:
                    raise ConnectionError(f"the fork server stopped before {self.args} ended")
                data += chunk
            return self._exited(ANSWER.unpack(data)[0])

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to it, unless it already ended."""
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close its pipes and wait for it, as :class:`subprocess.Popen` does."""
        self.stdout.close()
        if self.stderr is not None:
            self.stderr.close()
        self.wait()


class ForkServer:
    """A process that imported ``python -m <module>``'s program and forks a run per request.

    ``spawn(command, env)`` takes the same ``command`` as
    :class:`subprocess.Popen` would (``[sys.executable, "-m", module, *args]``). As a
    context manager it is started and stopped.

    Args:
        module: The program's package, run as ``python -m <module>``.
        env: The server's own environment (the children get the one of their request).
    """

    def __init__(self, module: str, env: Mapping[str, str] | None = None) -> None:
        self.module = module
        self.prefix = [sys.executable, "-m", module]
        self._directory = tempfile.TemporaryDirectory(prefix="shadow-fork-")
        self.socket = str(Path(self._directory.name) / "socket")
        """The Unix socket it listens on, in a directory of its own removed by ``stop()``."""
        command = [sys.executable, "-c", _SERVER_SOURCE.read_text(), self.socket, module]
        self._server = BackgroundProcess(command, env, name=f"fork server of {module}")

    @staticmethod
    def supported() -> bool:
        """Whether this platform can fork and pass descriptors over Unix sockets."""
        return hasattr(os, "fork") and hasattr(socket, "AF_UNIX") and hasattr(socket, "send_fds")

    def start(self, timeout: Duration = 60) -> Self:
        """Start the server and wait until it imported the program; stopped if it fails."""
        try:
            self._server.start(timeout, until=_READY)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server; children still running go on, in their own sessions."""
        self._server.stop()
        self._directory.cleanup()

    def serves(self, command: Sequence[str]) -> bool:
        """Whether ``command`` runs this server's program."""
        return list(command[: len(self.prefix)]) == self.prefix

    def spawn(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        *,
        merge_stderr: bool = True,
    ) -> ForkedProcess:
        """Run ``command`` in a forked child; stdin is ``/dev/null``.

        Args:
            command: ``[sys.executable, "-m", module, *args]``.
            env: The child's whole environment.
            merge_stderr: Whether its stderr goes to ``stdout`` (else to ``stderr``).

        Raises:
            ValueError: ``command`` runs another program.
        """
        if not self.serves(command):
            raise ValueError(f"{command} does not run {' '.join(self.prefix)}")
        request = json.dumps(
            {"args": list(command[len(self.prefix) :]), "env": dict(env), "cwd": os.getcwd()}
        ).encode()
        out_read, out_write = os.pipe()
        err_read, err_write = (None, None) if merge_stderr else os.pipe()
        stdout = open(out_read, "rb")  # noqa: SIM115
        stderr = None if err_read is None else open(err_read, "rb")  # noqa: SIM115
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with open(os.devnull, "rb") as devnull:
                connection.connect(self.socket)
                fds = [devnull.fileno(), out_write, out_write if err_write is None else err_write]
                socket.send_fds(connection, [HEADER.pack(len(request))], fds)
                connection.sendall(request)
            return ForkedProcess(command, connection, stdout, stderr)
        except BaseException:
            connection.close()
            stdout.close()
            if stderr is not None:
                stderr.close()
            raise
        finally:
            # The child holds the write ends now: its end is the pipes' end.
            os.close(out_write)
            if err_write is not None:
                os.close(err_write)

    async def run(self, command: Sequence[str], env: Mapping[str, str]) -> tuple[int, str, str]:
        """Run ``command`` to its end: exit status, stdout, stderr; killed if cancelled."""
        process = self.spawn(command, env, merge_stderr=False)
        try:
            stdout, stderr = await asyncio.gather(
                _read_all(process.stdout), _read_all(cast("IO[bytes]", process.stderr))
            )
            code = await process.wait_async()
        except asyncio.CancelledError:
            process.kill()
            await asyncio.to_thread(process.wait)
            raise
        return code, stdout.decode(errors="replace"), stderr.decode(errors="replace")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


async def _read_all(stream: IO[bytes]) -> bytes:
    """Everything a pipe delivers until its end, read from the event loop."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), stream
    )
    try:
        return await reader.read()
    finally:
        transport.close()
