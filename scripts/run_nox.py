#!/usr/bin/env python3
"""Run nox with nothing installed but Python: install nox and uv on first use, then run nox.

    python3 scripts/run_nox.py -s demo     # the demo
    python3 scripts/run_nox.py             # every check

The tools go into a virtual environment of their own, ``.nox/_bootstrap``, made
once with ``python -m venv`` and pip; later runs reuse it. Every argument is
passed on to nox.

Without arguments every default session runs, in two lanes side by side: the
``tests`` session in one, the others one after another in the second. The kit's
tests spend much of their time waiting on servers and processes; the other
sessions fill that time. Each line is printed as it comes, after its lane's name,
and the command fails if any session does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import venv
from collections.abc import Iterable
from pathlib import Path
from typing import IO, NoReturn

REQUIREMENTS = ("nox>=2025.5.1", "uv>=0.8")
MINIMUM_PYTHON = (3, 11)
OWN_LANE = ("tests",)
"""Default sessions that run in a lane of their own, beside the rest."""

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
    nox = str(scripts / "nox")
    os.chdir(ROOT)
    if not sys.argv[1:]:
        sys.exit(run_in_lanes(nox))
    if os.name == "nt":
        sys.exit(subprocess.call([nox, *sys.argv[1:]]))
    os.execv(nox, [nox, *sys.argv[1:]])  # noqa: S606  nox takes over this process.


def run_in_lanes(nox: str) -> int:
    """Run the default sessions in two lanes at once; the worst exit status of the two."""
    listing = subprocess.run(
        [nox, "--list", "--json"], stdout=subprocess.PIPE, text=True, check=True
    )
    sessions = [entry["session"] for entry in json.loads(listing.stdout)]
    own = [name for name in sessions if name in OWN_LANE]
    rest = [name for name in sessions if name not in OWN_LANE]
    lanes = {label: names for label, names in (("tests", own), ("checks", rest)) if names}
    width = max(map(len, lanes))
    print_lock = threading.Lock()
    processes: dict[str, subprocess.Popen[str]] = {}
    copiers = []
    try:
        for label, names in lanes.items():
            process = subprocess.Popen(
                [nox, "--sessions", *names],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,  # Stopped as a group, with every server it started.
            )
            processes[label] = process
            assert process.stdout is not None  # noqa: S101  Popen with stdout=PIPE.
            prefix = f"[{label:<{width}}] "
            copier = threading.Thread(
                target=_copy_lines, args=(process.stdout, prefix, print_lock), daemon=True
            )
            copier.start()
            copiers.append(copier)
        statuses = {label: process.wait() for label, process in processes.items()}
    finally:
        _stop(processes.values())
    for copier in copiers:
        copier.join()
    for label, names in lanes.items():
        verdict = "passed" if statuses[label] == 0 else f"FAILED (exit {statuses[label]})"
        print(f"{label}: {verdict}: {', '.join(names)}")
    failed = [status for status in statuses.values() if status != 0]
    return 0 if not failed else failed[0] if failed[0] > 0 else 1


def _copy_lines(stream: IO[str], prefix: str, lock: threading.Lock) -> None:
    for line in stream:
        with lock:
            sys.stdout.write(prefix + line)
            sys.stdout.flush()


def _stop(processes: Iterable[subprocess.Popen[str]]) -> None:
    """Stop the lanes still running (after Ctrl-C or an error here), group and all."""
    for process in processes:
        if process.poll() is None:
            if os.name == "nt":
                process.terminate()
            else:
                os.killpg(process.pid, signal.SIGTERM)
            process.wait()


if __name__ == "__main__":
    main()
