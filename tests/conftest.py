from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# Variables ShadowSettings reads; tests start from none of them set.
_SETTINGS_PREFIXES = ("TEMPORAL_", "WORKER_")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Hide the developer's TEMPORAL_* variables and Temporal profile from every test."""
    for name in list(os.environ):
        if name.startswith(_SETTINGS_PREFIXES):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
