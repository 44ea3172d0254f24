"""The fork server: each run a process of its own, without the program's import time."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from shadow_sdk.testing import BackgroundProcess, ForkServer, ProcessExited

pytestmark = pytest.mark.skipif(not ForkServer.supported(), reason="needs fork and Unix sockets")

PROGRAM = textwrap.dedent(
    """
    import atexit, json, os, signal, sys, time

    from program import helper

    command = sys.argv[1]
    if command == "describe":
        print(json.dumps({
            "pid": os.getpid(), "session": os.getsid(0), "argv": sys.argv[1:],
            "cwd": os.getcwd(), "value": os.environ.get("VALUE"),
            "helper": helper.LOADED_IN, "main": __name__,
        }))
        print("to stderr", file=sys.stderr)
    elif command == "exit":
        sys.exit(int(sys.argv[2]))
    elif command == "raise":
        raise RuntimeError("boom")
    elif command == "atexit":
        atexit.register(lambda: print("atexit ran"))
    elif command == "serve":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(print("stopping", flush=True)))
        print("up", flush=True)
        time.sleep(60)
    else:
        # No __name__ guard: the server must import what this file imports, never run it.
        sys.exit(f"unknown command {command!r}")
    """
)


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package run as ``python -m program``; its helper notes each process that imports it."""
    root = tmp_path_factory.mktemp("program")
    package = root / "program"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text(
        "import os\n"
        "LOADED_IN = os.getpid()\n"
        "with open(os.environ['IMPORTS'], 'a') as imports:\n"
        "    imports.write(f'{LOADED_IN}\\n')\n"
    )
    (package / "__main__.py").write_text(PROGRAM)
    return root


@pytest.fixture(scope="module")
def base_env(program: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(program), "IMPORTS": str(program / "imports.log")}


@pytest.fixture(scope="module")
def server(base_env: dict[str, str]) -> Iterator[ForkServer]:
    with ForkServer("program", base_env) as server:
        yield server


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "program", *args]


async def test_each_run_is_a_process_of_its_own_that_starts_imported(
    server: ForkServer, base_env: dict[str, str], program: Path, tmp_path: Path
) -> None:
    """Own pid, session, argv, environment and cwd; the program was imported once, before."""
    os.chdir(tmp_path)
    runs = await asyncio.gather(
        *(server.run(command("describe", str(n)), {**base_env, "VALUE": str(n)}) for n in range(3))
    )

    described = [json.loads(stdout) for _, stdout, _ in runs]
    assert [(code, stderr) for code, _, stderr in runs] == [(0, "to stderr\n")] * 3
    assert [(d["argv"], d["value"]) for d in described] == [
        (["describe", str(n)], str(n)) for n in range(3)
    ]
    assert len({d["pid"] for d in described} | {os.getpid()}) == 4
    assert all(d["session"] == d["pid"] for d in described)
    assert {d["cwd"] for d in described} == {str(tmp_path)}
    assert {d["main"] for d in described} == {"__main__"}
    # helper was imported by the server alone, which every run forked from.
    imported_in = (program / "imports.log").read_text().split()
    assert imported_in == [str(described[0]["helper"])]
    assert described[0]["helper"] not in {d["pid"] for d in described}


async def test_exit_status_errors_and_atexit_are_those_of_python_m(
    server: ForkServer, base_env: dict[str, str]
) -> None:
    """sys.exit's status, an uncaught exception's traceback and status 1, atexit at the end."""
    exited = await server.run(command("exit", "3"), base_env)
    raised = await server.run(command("raise"), base_env)
    at_exit = await server.run(command("atexit"), base_env)

    assert exited == (3, "", "")
    assert raised[0] == 1
    assert "RuntimeError: boom" in raised[2]
    assert at_exit == (0, "atexit ran\n", "")


def test_a_forked_background_process_is_driven_like_a_started_one(
    server: ForkServer, base_env: dict[str, str]
) -> None:
    """Its output is awaited, SIGTERM reaches its handler, SIGKILL ends it at once."""
    gentle = BackgroundProcess(command("serve"), base_env, fork_server=server).start(until="up")
    forced = BackgroundProcess(command("serve"), base_env, fork_server=server).start(until="up")

    assert gentle.stop() == 0
    assert gentle.output == "up\nstopping\n"
    assert forced.kill() == -signal.SIGKILL


async def test_a_cancelled_run_is_killed(server: ForkServer, base_env: dict[str, str]) -> None:
    """Bounding run() with a timeout leaves no process behind."""
    with server.spawn(command("serve"), base_env) as process:
        assert process.stdout.readline() == b"up\n"
        process.kill()
        assert process.wait(10) == -signal.SIGKILL

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await server.run(command("serve"), base_env)


def test_another_program_is_refused(server: ForkServer, base_env: dict[str, str]) -> None:
    """A command that is not ``python -m <its module>`` is not forked from it."""
    other = [sys.executable, "-c", "print()"]

    assert not server.serves(other)
    with pytest.raises(ValueError, match="does not run"):
        server.spawn(other, base_env)
    process = BackgroundProcess(other, base_env, fork_server=server).start()
    assert process.wait() == 0


def test_a_program_that_cannot_be_imported_fails_the_start_with_why(
    base_env: dict[str, str],
) -> None:
    """The server's traceback is the error, and nothing of it is left behind."""
    server = ForkServer("no_such_program", base_env)

    with pytest.raises(ProcessExited, match="No module named 'no_such_program'"):
        server.start()
    assert not Path(server.socket).parent.exists()


def _parent_of(pid: int) -> int:
    # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, not ")".
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def _children_of(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if _parent_of(int(entry.name)) == parent:
                    children.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue  # Ended while listed.
    return children


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc")
async def test_thousands_of_runs_leave_the_server_as_it_was(
    server: ForkServer, base_env: dict[str, str]
) -> None:
    """1,000 runs, 16 at a time, some cancelled: every status right, no descriptor or child kept."""
    with server.spawn(command("serve"), base_env) as probe:
        assert probe.stdout.readline() == b"up\n"
        server_pid = _parent_of(probe.pid)
        probe.kill()
        probe.wait(timeout=10)
    descriptors_before = len(os.listdir(f"/proc/{server_pid}/fd"))
    slots = asyncio.Semaphore(16)

    async def one(index: int) -> int:
        async with slots:
            if index % 100 == 99:  # A caller that gives up: the run is killed.
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(server.run(command("serve"), base_env), 0.05)
                return -1
            code, _, _ = await server.run(command("exit", str(index % 7)), base_env)
            return code

    codes = await asyncio.gather(*(one(index) for index in range(1000)))

    assert codes == [-1 if index % 100 == 99 else index % 7 for index in range(1000)]
    # The server closes a run's connection once it has reaped that child, which may come
    # just after the run's answer: give the last ones a moment before counting. At most
    # as many as before, since the first count may still have held such a connection;
    # a leak adds one per run.
    for _ in range(50):
        settled = len(os.listdir(f"/proc/{server_pid}/fd")) <= descriptors_before
        if settled and not _children_of(server_pid):
            break
        await asyncio.sleep(0.1)
    assert len(os.listdir(f"/proc/{server_pid}/fd")) <= descriptors_before
    assert _children_of(server_pid) == []
