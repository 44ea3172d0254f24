"""What the demo's parts share: the rendered service, the demo's error, running commands."""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

COMMAND_TIMEOUT = 120.0  # One command of the service's or Temporal's command line.
POLL_TIMEOUT = 60.0  # Until a schedule's run starts, a rollout acts on a signal, a version drains.
FIRST_BUILD, NEXT_BUILD = "1", "2"  # The build ids of the versioned deploy.

T = TypeVar("T")


class DemoError(Exception):
    """The demo cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Service:
    """A rendered, installed service."""

    path: Path
    slug: str
    namespace: str
    task_queue: str
    encryption: bool
    authorization: bool

    @property
    def bin(self) -> Path:
        """Where the service's virtual environment keeps its commands."""
        return self.path / ".venv" / "bin"


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a command to its end, or raise `DemoError` after `COMMAND_TIMEOUT`."""
    try:
        return subprocess.run(
            command, env=env, capture_output=True, text=True, check=False, timeout=COMMAND_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        name = Path(command[0]).name
        raise DemoError(
            f"'{name} {shlex.join(command[1:3])} ...' did not finish in {COMMAND_TIMEOUT:g} s"
        ) from None


def poll(failure: str, check: Callable[[], T | None]) -> T:
    """Call ``check`` until it returns something, or raise `DemoError` after `POLL_TIMEOUT`."""
    deadline = time.monotonic() + POLL_TIMEOUT
    while (value := check()) is None:
        if time.monotonic() > deadline:
            raise DemoError(f"{failure} within {POLL_TIMEOUT:g} s")
        time.sleep(0.2)
    return value


def make_current(service: Service, env: dict[str, str], build_id: str) -> str:
    """``shadow deployment set-current``, once the version's workers registered it."""
    command = ["deployment", "set-current", service.slug, build_id]
    print(f"Sending new workflows to build {build_id}: shadow {shlex.join(command)} ...")

    def accepted() -> str | None:
        result = run([str(service.bin / "shadow"), *command], env)
        return result.stdout.strip() if result.returncode == 0 else None

    # A version exists once the server has seen its first poll, a moment after it starts.
    return poll(f"build {build_id} could not be made current", accepted)


def relative(path: Path) -> str:
    """``path`` relative to the working directory where it is inside it, as people type it."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)
