#!/usr/bin/env python3
"""Run nox with nothing installed but Python: install nox and uv on first use, then run nox.

    python3 scripts/run_nox.py -s demo     # the demo
    python3 scripts/run_nox.py             # every check

The tools go into a virtual environment of their own, ``.nox/_bootstrap``, made
once with ``python -m venv`` and pip; later runs reuse it. Every argument is
passed on to nox.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import NoReturn

REQUIREMENTS = ("nox>=2025.5.1", "uv>=0.8")
MINIMUM_PYTHON = (3, 11)

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = ROOT / ".nox" / "_bootstrap"
STAMP = BOOTSTRAP / "requirements.txt"


def main() -> NoReturn:
    """Make sure nox and uv are installed, then hand over to nox."""
    if sys.version_info < MINIMUM_PYTHON:
        wanted = ".".join(map(str, MINIMUM_PYTHON))
        sys.exit(f"Python {wanted} or newer is needed, this is {sys.version.split()[0]}")
    scripts = BOOTSTRAP / ("Scripts" if os.name == "nt" else "bin")
    wanted = "\n".join(REQUIREMENTS) + f"\n# python {sys.version_info[:3]}\n"
    if not STAMP.is_file() or STAMP.read_text() != wanted:
        print(f"Installing {' and '.join(REQUIREMENTS)} into {BOOTSTRAP.relative_to(ROOT)} ...")
        venv.create(BOOTSTRAP, with_pip=True, clear=True)
        subprocess.run(
            [scripts / "python", "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True
        )
        STAMP.write_text(wanted)
    nox = scripts / "nox"
    os.chdir(ROOT)
    if os.name == "nt":
        sys.exit(subprocess.call([nox, *sys.argv[1:]]))
    os.execv(nox, [str(nox), *sys.argv[1:]])  # noqa: S606  nox takes over this process.


if __name__ == "__main__":
    main()
