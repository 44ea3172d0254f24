"""Checks of this service: `nox` runs them all, `nox -s tests` one of them."""

from __future__ import annotations

import os
from pathlib import Path

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


CONFLICT_MARKERS = (b"<" * 7, b">" * 7)
"""How the lines around a conflict that `copier update` (or git) left begin."""
NOT_OURS = {".git", ".nox", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
"""Folders of tools and environments, which hold no file of the service's own."""


def unresolved_conflicts() -> list[str]:
    """Each file with conflict markers, and each ``.rej`` file, that an update left behind."""
    found = []
    for folder, folders, files in os.walk("."):
        folders[:] = sorted(name for name in folders if name not in NOT_OURS)
        for name in sorted(files):
            path = Path(folder, name)
            if name.endswith(".rej"):
                found.append(f"{path}: changes the update could not apply; merge them by hand")
                continue
            for number, line in enumerate(path.read_bytes().splitlines(), start=1):
                if line.startswith(CONFLICT_MARKERS) and line[7:8] in (b"", b" "):
                    found.append(f"{path}:{number}: conflict markers")
                    break
    return found


@nox.session
def lint(session: nox.Session) -> None:
    """Check that no update conflict is left, then style and formatting with ruff."""
    if conflicts := unresolved_conflicts():
        session.error(
            "copier update left conflicts: keep what you need between the markers, delete"
            " the markers and the .rej files, then commit\n  " + "\n  ".join(conflicts)
        )
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
