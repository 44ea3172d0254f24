"""Rendering the copier template of this checkout into a folder."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import copier

from helpers.repositories import git

ROOT = Path(__file__).resolve().parents[2]
SDK_FROM_CHECKOUT = {"sdk_source": "checkout", "sdk_checkout": str(ROOT)}
"""Answers that install shadow-sdk from this checkout, editable, as kit development does."""


def render(destination: Path, template: Path = ROOT, **answers: Any) -> Path:
    """Render ``template`` (the working tree by default) with defaults plus ``answers``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copier warns about uncommitted changes.
        copier.run_copy(
            str(template),
            str(destination),
            data=answers,
            defaults=True,
            vcs_ref="HEAD",
            quiet=True,
        )
    return destination


def template_repository(destination: Path) -> Path:
    """This template (the working tree's) as a git repository of its own, committed once.

    Tests tag it as releases, or break it, without touching this checkout.
    """
    destination.mkdir()
    shutil.copy(ROOT / "copier.yml", destination / "copier.yml")
    shutil.copytree(ROOT / "template", destination / "template")
    git(destination, "init", "--quiet")
    git(destination, "add", "--all")
    git(destination, "commit", "--quiet", "--message=template")
    return destination
