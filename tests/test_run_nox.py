"""The README's entry point: nox and uv installed on first use, reused afterwards."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # Installs nox and uv, and runs them.

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "run_nox.py"

NOXFILE = '''
import nox

nox.options.default_venv_backend = "none"

@nox.session
def hello(session):
    """Say hello."""
    session.log("hello from nox")
'''


def test_installs_nox_once_then_reuses_it(tmp_path: Path) -> None:
    """The first run installs into .nox/_bootstrap; the second runs nox straight away."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / "run_nox.py")
    (tmp_path / "noxfile.py").write_text(NOXFILE)
    command = [sys.executable, str(tmp_path / "scripts" / "run_nox.py"), "-s", "hello"]

    first = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    second = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)

    assert first.returncode == 0, first.stdout + first.stderr
    assert "Installing nox>=2025.5.1 and uv>=0.8 into .nox/_bootstrap" in first.stdout
    assert "hello from nox" in first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Installing" not in second.stdout
    assert "hello from nox" in second.stderr
    assert (tmp_path / ".nox" / "_bootstrap" / "bin" / "uv").is_file()


def test_passes_nox_failures_on(tmp_path: Path) -> None:
    """A failing session makes the command fail, so CI sees it."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / "run_nox.py")
    (tmp_path / "noxfile.py").write_text(NOXFILE)

    result = subprocess.run(
        [sys.executable, str(tmp_path / "scripts" / "run_nox.py"), "-s", "missing"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode != 0
    assert "Sessions not found: missing" in result.stderr


LANES_NOXFILE = '''
import os
import time
from pathlib import Path

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "tests", "docs"]


def meet(mine: str, other: str) -> None:
    """Say this session started, and wait for the other to start too: proof they overlap."""
    Path(mine).touch()
    deadline = time.monotonic() + 120
    while not Path(other).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{other} never started while {mine} ran")
        time.sleep(0.1)


@nox.session
def tests(session):
    meet("tests.started", "lint.started")
    session.log("tests ran beside lint")


@nox.session
def lint(session):
    meet("lint.started", "tests.started")
    session.log("lint ran beside tests")


@nox.session
def docs(session):
    session.error("the docs do not build")


@nox.session
def demo(session):
    session.log("not a default session")
'''


def test_every_check_runs_in_two_lanes_and_any_failure_fails_the_command(
    tmp_path: Path,
) -> None:
    """Without arguments the tests session runs beside the others; a failed one fails it all."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / "run_nox.py")
    (tmp_path / "noxfile.py").write_text(LANES_NOXFILE)

    result = subprocess.run(
        [sys.executable, str(tmp_path / "scripts" / "run_nox.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("[tests ] ") and "tests ran beside lint" in line for line in lines)
    assert any(line.startswith("[checks] ") and "lint ran beside tests" in line for line in lines)
    assert any(line.startswith("[checks] ") and "the docs do not build" in line for line in lines)
    assert "not a default session" not in result.stdout
    assert lines[-2:] == ["tests: passed: tests", "checks: FAILED (exit 1): lint, docs"]
