"""Commands run in a generated service as its developers run them, from its own environment.

The kit's tests run inside a virtual environment of their own (nox's, often), whose
variables would otherwise leak into the service: ``VIRTUAL_ENV``, nox's
``UV_PROJECT_ENVIRONMENT`` and ``UV_PYTHON`` (uv would install the service into the
kit's test environment), ``PYENV_VERSION`` (pyenv's shims would ignore the service's
``.python-version``) and ``CI`` (a developer's machine is not CI unless a test says so).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers.tools import tool

__all__ = ["developer_environment", "run", "tool"]

UV_CACHE = os.environ.get("UV_CACHE_DIR") or str(
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "uv"
)
"""The usual uv cache, read at import, before any test hides HOME."""
TOOLS = Path(sys.executable).parent
"""Where the kit's test environment has uv and nox."""
NOT_THE_SERVICES = frozenset(
    {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON", "PYENV_VERSION", "CI"}
)


def developer_environment(**env: str) -> dict[str, str]:
    """This process's environment as a developer's shell has it, uv and nox on PATH."""
    return {
        **{name: value for name, value in os.environ.items() if name not in NOT_THE_SERVICES},
        "UV_CACHE_DIR": UV_CACHE,
        "PATH": f"{TOOLS}{os.pathsep}{os.environ['PATH']}",
        **env,
    }


def run(
    service: Path, *command: str, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    """``command`` in ``service``, with :func:`developer_environment` and ``env``."""
    return subprocess.run(
        command,
        cwd=service,
        env=developer_environment(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
