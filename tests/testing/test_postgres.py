"""PostgresServer: a real PostgreSQL on a free loopback port, always stopped and removed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from shadow_sdk.testing import PostgresServer, accepts_connections, find_postgres_bindir


@pytest.fixture(scope="module")
def bindir() -> Path:
    """PostgreSQL's binaries; the kit's CI installs the package, so there it must be found."""
    try:
        return find_postgres_bindir()
    except FileNotFoundError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(error))


def psql(bindir: Path, url: str, sql: str) -> str:
    """Run one statement with psql and return what it printed, unaligned."""
    return subprocess.run(
        [str(bindir / "psql"), url, "--no-psqlrc", "--tuples-only", "--no-align", "-c", sql],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_the_server_answers_queries_and_is_gone_afterwards(bindir: Path) -> None:
    """A started server runs SQL on 127.0.0.1; after the block nothing listens, no files stay."""
    with PostgresServer(bindir=bindir) as server:
        directory = server._directory
        version = psql(bindir, server.url, "SHOW server_version")
        psql(bindir, server.url, "CREATE DATABASE app")
        in_app = psql(bindir, server.url_of("app"), "SELECT current_database()")

    assert version.split(".")[0].isdigit()
    assert in_app == "app"
    assert not accepts_connections(server.port)
    assert directory is not None
    assert not directory.exists()


def test_the_server_stops_when_the_block_fails(bindir: Path) -> None:
    """An exception inside the block still stops the server and removes its cluster."""
    server = PostgresServer(bindir=bindir)

    running = []

    def fail_inside() -> None:
        with server:
            running.append(server.running)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail_inside()

    assert running == [True]
    assert not server.running
    assert not accepts_connections(server.port)


def test_a_missing_installation_says_what_to_install(tmp_path: Path) -> None:
    """A bindir without a postgres binary fails to start, naming what failed."""
    server = PostgresServer(bindir=tmp_path)

    with pytest.raises((RuntimeError, FileNotFoundError)):
        server.start()

    assert not server.running


def test_the_fixture_skips_without_postgresql_and_fails_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no PostgreSQL on PATH or under /usr/lib, the fixture skips; with CI set, it fails."""
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_inner="def test_db(postgres_server):\n    pass\n")
    monkeypatch.setattr(
        "shadow_sdk.testing.pytest_plugin.find_postgres_bindir",
        lambda: (_ for _ in ()).throw(FileNotFoundError("install the system package")),
    )
    monkeypatch.delenv("CI", raising=False)
    skipped = pytester.runpytest_inprocess("-rs")
    monkeypatch.setenv("CI", "true")
    failed = pytester.runpytest_inprocess()

    skipped.assert_outcomes(skipped=1)
    skipped.stdout.fnmatch_lines(["*install the system package*"])
    failed.assert_outcomes(errors=1)
    failed.stdout.fnmatch_lines(["*CI is set, so PostgreSQL must be installed*"])
