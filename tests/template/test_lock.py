"""uv.lock is the truth of a generated service: its nox sessions install exactly it.

Each test runs the service's own ``nox -s lint``, which syncs only ruff, so it is quick.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.rendering import SDK_FROM_CHECKOUT, render
from helpers.services import run, tool

pytestmark = pytest.mark.slow

OWN_DEPENDENCY = '  "pydantic>=2.11",\n  "httpx>=0.27",\n'


@pytest.fixture
def service(tmp_path: Path) -> Path:
    """A default service against this checkout's SDK, locked and committed on day one."""
    service = render(tmp_path / "service", examples=["task_processing"], **SDK_FROM_CHECKOUT)
    assert run(service, tool("uv"), "lock").returncode == 0
    return service


def test_a_current_lock_passes_lint(service: Path) -> None:
    """The lock made on day one is what every session installs."""
    result = run(service, tool("nox"), "-s", "lint")

    assert result.returncode == 0, result.stdout + result.stderr


def test_a_stale_lock_fails_lint_saying_to_lock(service: Path) -> None:
    """A dependency added without `uv lock`: lint fails before anything is installed."""
    pyproject = service / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('  "pydantic>=2.11",\n', OWN_DEPENDENCY))

    result = run(service, tool("nox"), "-s", "lint")

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "The lockfile at `uv.lock` needs to be updated" in output
    assert "To update the lockfile, run `uv lock`" in output


def test_the_documented_command_refuses_a_stale_lock_without_rewriting_it(service: Path) -> None:
    """`uv run --locked nox`, as the guide says: a plain `uv run` would relock first."""
    pyproject = service / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('  "pydantic>=2.11",\n', OWN_DEPENDENCY))
    lock = (service / "uv.lock").read_text()

    result = run(service, tool("uv"), "run", "--locked", "nox", "-s", "lint")

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "To update the lockfile, run `uv lock`" in output
    assert (service / "uv.lock").read_text() == lock


def test_ci_refuses_a_missing_lock(service: Path) -> None:
    """In CI only a committed lock counts: without one, lint fails and says how to make it."""
    (service / "uv.lock").unlink()

    result = run(service, tool("nox"), "-s", "lint", CI="true")

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Unable to find lockfile at `uv.lock`" in output
    assert "run `uv lock`" in output
    assert not (service / "uv.lock").exists()


def test_a_developer_gets_a_missing_lock_made(service: Path) -> None:
    """On a laptop the first nox makes the lock, and asks for it to be committed."""
    (service / "uv.lock").unlink()

    result = run(service, tool("nox"), "-s", "lint")

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "uv.lock was missing and is created now: commit it" in output
    assert (service / "uv.lock").is_file()
