"""A real PostgreSQL server for tests, on a free loopback port, in a throwaway directory."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from shadow_sdk.testing._processes import BackgroundProcess, ProcessExited, free_port

POSTGRESQL_PACKAGE = "postgresql"
"""The Debian (and Ubuntu) package that installs the server."""
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0
_UNPRIVILEGED_USER = "nobody"


def find_postgres_bindir() -> Path:
    """Find the directory of PostgreSQL's ``initdb`` and ``postgres``.

    On ``PATH`` first (a source build, Homebrew), else Debian's versioned
    ``/usr/lib/postgresql/<version>/bin``, newest version first.

    Raises:
        FileNotFoundError: No PostgreSQL server is installed; the message says how.
    """
    found = shutil.which("initdb")
    # Resolved: a symlink on PATH points into the installation's own bin directory.
    if found is not None and Path(found).resolve().with_name("pg_isready").is_file():
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.parent.name)],
        reverse=True,
    )
    if versions:
        return versions[0].parent
    raise FileNotFoundError(
        "PostgreSQL's initdb was not found (searched: PATH, /usr/lib/postgresql/*/bin); "
        f"install the system package {POSTGRESQL_PACKAGE!r}, for example with "
        f"'apt-get install --no-install-recommends {POSTGRESQL_PACKAGE}'"
    )


class PostgresServer:
    """A ``postgres`` process on 127.0.0.1 for one test or session.

    ``initdb`` makes a cluster in a temporary directory, with a ``postgres``
    superuser that needs no password (trust, on loopback only) and durability
    switched off (no fsync): fast, and gone afterwards. PostgreSQL refuses to run
    as root, so under root both run as the ``nobody`` user. Use it as a context
    manager, which starts it and always stops it, also when a test fails.

    Args:
        port: The port to listen on; a free one by default.
        bindir: Where ``initdb`` and ``postgres`` are; :func:`find_postgres_bindir`
            by default.
    """

    def __init__(self, *, port: int | None = None, bindir: Path | None = None) -> None:
        self.port = port or free_port()
        self.bindir = bindir or find_postgres_bindir()
        self._process: BackgroundProcess | None = None
        self._directory: Path | None = None

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/postgres``, for any driver."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def running(self) -> bool:
        """Whether the process runs."""
        return self._process is not None and self._process.returncode is None

    def url_of(self, database: str) -> str:
        """The URL of another database of this server."""
        return self.url.rsplit("/", 1)[0] + f"/{database}"

    def _as_user(self) -> list[str]:
        """The prefix that runs a command unprivileged when this process is root."""
        if os.geteuid() != 0:
            return []
        return ["setpriv", f"--reuid={_UNPRIVILEGED_USER}", "--regid=nogroup",
                "--clear-groups", "--"]  # fmt: skip

    def _make_directory(self) -> Path:
        directory = Path(tempfile.mkdtemp(prefix="postgres-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam(_UNPRIVILEGED_USER)
            os.chown(directory, user.pw_uid, user.pw_gid)
        return directory

    def start(self) -> None:
        """Create the cluster, start the server and wait until it answers (60 s at most).

        Raises:
            RuntimeError: ``initdb`` failed, or the server exited or did not answer in time.
        """
        if self.running:
            return
        if self._directory is None:
            self._directory = self._make_directory()
            data = str(self._directory / "data")
            initdb = subprocess.run(
                [
                    *self._as_user(),
                    str(self.bindir / "initdb"),
                    f"--pgdata={data}",
                    "--username=postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if initdb.returncode != 0:
                self._close()
                raise RuntimeError(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
        self._process = BackgroundProcess(
            [*self._as_user(), str(self.bindir / "postgres"),
             "-D", str(self._directory / "data"), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self._directory),
             "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off"],
            name="postgres",
        ).start()  # fmt: skip
        try:
            self._process.wait_until_listening(self.port, _START_TIMEOUT)
            self._wait_until_ready()
        except (ProcessExited, TimeoutError, RuntimeError) as error:
            self._close()  # Also as a context manager, whose exit never comes.
            raise RuntimeError(str(error)) from error

    def _wait_until_ready(self) -> None:
        """Wait until the server accepts queries, not only connections (it may still start)."""
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            command = [str(self.bindir / "pg_isready"), "--host=127.0.0.1",
                       f"--port={self.port}", "--username=postgres", "--quiet"]  # fmt: skip
            ready = subprocess.run(command, check=False)
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                output = self._process.output if self._process else ""
                raise RuntimeError(f"postgres did not accept queries in time:\n{output}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server: a fast shutdown (SIGINT) that ends open sessions, then wait."""
        process, self._process = self._process, None
        if process is not None:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
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
        """Stop the server and remove its cluster."""
        self.stop()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __repr__(self) -> str:
        return f"PostgresServer(port={self.port}, running={self.running})"
