"""Checks of this service: `nox` runs them all, `nox -s tests` one of them."""

from __future__ import annotations

import nox

nox.needs_version = ">=2025.5.1"
nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests", "replay"]


def sync(session: nox.Session, *groups: str) -> None:
    """Install the service and the given dependency groups, as locked in uv.lock."""
    session.run_install(
        "uv",
        "sync",
        "--no-default-groups",
        *(f"--group={group}" for group in groups),
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.run_install(
        "uv",
        "sync",
        "--only-group=lint",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Check types with mypy --strict."""
    sync(session, "typecheck")
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the tests on real, local Temporal servers (nothing is downloaded)."""
    sync(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def replay(session: nox.Session) -> None:
    """Replay the recorded histories: run it before deploying a change to a workflow."""
    sync(session, "test")
    session.run("pytest", "tests/replay", *session.posargs)


@nox.session(default=False)
def histories(session: nox.Session) -> None:
    """Record the histories that `replay` replays, from a run of each example."""
    sync(session, "test")
    session.run("python", "tests/replay/record.py")
