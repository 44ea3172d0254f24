"""Loopback ports for tests that start servers."""

from __future__ import annotations

import socket
import subprocess
import time

from shadow_sdk.testing import free_port

__all__ = ["accepts_connections", "free_port", "wait_until_listening"]


def accepts_connections(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until_listening(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    """Wait up to 30 s for ``process`` to listen on ``port``; fail if it exits first."""
    deadline = time.monotonic() + 30
    while not accepts_connections(port):
        assert process.poll() is None, f"{what} exited with {process.returncode}"
        assert time.monotonic() < deadline, f"{what} did not listen on {port} within 30 s"
        time.sleep(0.05)
