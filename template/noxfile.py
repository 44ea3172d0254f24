"""Checks of this service: `nox` runs them all, `nox -s tests` one of them."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.needs_version = ">=2025.5.1"
nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests", "replay"]

PYTHON = Path(__file__).with_name(".python-version").read_text().strip()
"""The Python every session runs on, as uv and the Dockerfile use it."""


def sync(session: nox.Session, *groups: str) -> None:
    """Install the service and the given dependency groups, exactly as uv.lock pins them."""
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--no-default-groups",
        *(f"--group={group}" for group in groups),
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )


def create_missing_lock(session: nox.Session) -> None:
    """Lock the dependencies once on a developer's machine; in CI only a committed lock counts.

    Every session then installs with ``uv sync --locked``, which fails while uv.lock is
    missing or no longer matches pyproject.toml, and says to run ``uv lock``.
    """
    if Path("uv.lock").is_file() or os.environ.get("CI"):
        return
    session.run_install("uv", "lock", "--quiet")
    session.warn("uv.lock was missing and is created now: commit it")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Check that no update conflict is left and uv.lock is current, then style with ruff."""
    session.run("python", "tools/preflight.py")
    create_missing_lock(session)
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--only-group=lint",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Check types with mypy --strict."""
    sync(session, "typecheck")
    session.run("mypy")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the tests on real, local Temporal servers (nothing is downloaded), with coverage."""
    sync(session, "test")
    session.run("pytest", "--cov", *session.posargs)


@nox.session(python=PYTHON)
def replay(session: nox.Session) -> None:
    """Replay the recorded histories: run it before deploying a change to a workflow."""
    sync(session, "test")
    session.run("pytest", "tests/replay", *session.posargs)


@nox.session(python=PYTHON, default=False)
def histories(session: nox.Session) -> None:
    """Record the histories that `replay` replays: ``-- NAME [--as NEW | --replace]``."""
    sync(session, "test")
    session.run("python", "tests/replay/record.py", *session.posargs)
