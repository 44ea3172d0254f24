"""Rendering the copier template of this checkout into a folder."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import copier

ROOT = Path(__file__).resolve().parents[2]
SDK_FROM_CHECKOUT = f"shadow-sdk @ {ROOT.as_uri()}"


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
