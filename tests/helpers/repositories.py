"""Git repositories holding this checkout, for tests that tag, build or render releases."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def git(repository: Path, *args: str) -> str:
    """Run git in ``repository`` with a throwaway identity; fail on an error, return stdout."""
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
        cwd=repository,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def copy_of_checkout(destination: Path) -> Path:
    """This working tree's files as git sees them (changes and new files included), committed.

    The copy is a repository of its own: tests tag it as releases, build it or break it
    without touching this checkout.
    """
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source, copy = ROOT / name, destination / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # The link cookiecutter finds the template by.
            copy.symlink_to(source.readlink())
        elif source.is_file():  # Not deleted in the working tree.
            shutil.copy2(source, copy)
    git(destination, "init", "--quiet")
    git(destination, "add", "--all")
    git(destination, "commit", "--quiet", "--message=This checkout")
    return destination
