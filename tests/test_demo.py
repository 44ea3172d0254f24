"""The README's demo, run for real: render, install, start a server and a worker, stop them."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from network import accepts_connections, free_port

DEMO = Path(__file__).resolve().parent.parent / "scripts" / "demo.py"


Ports = tuple[int, int, int, int]


@pytest.fixture
def ports() -> Ports:
    return free_port(), free_port(), free_port(), free_port()


def demo_command(build_dir: Path, ports: Ports, *extra: str) -> list[str]:
    port, ui_port, codec_port, metrics_port = ports
    return [
        sys.executable,
        str(DEMO),
        f"--port={port}",
        f"--ui-port={ui_port}",
        f"--codec-port={codec_port}",
        f"--metrics-port={metrics_port}",
        f"--build-dir={build_dir}",
        *extra,
    ]


def run_demo(build_dir: Path, ports: Ports) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        demo_command(build_dir, ports), capture_output=True, text=True, timeout=600, check=False
    )


def test_runs_the_example_workflows_and_stops_everything(tmp_path: Path, ports: Ports) -> None:
    """One completed and one rejected workflow, with Web UI links; nothing is left running."""
    result = run_demo(tmp_path / "demo", ports)

    assert result.returncode == 0, result.stdout + result.stderr
    port, ui_port, codec_port, metrics_port = ports
    assert f"Temporal server: 127.0.0.1:{port}, namespace 'default'" in result.stdout
    assert f"Codec server: http://127.0.0.1:{codec_port}" in result.stdout
    assert "valid task: task-processing-" in result.stdout
    assert '"word_count": 9' in result.stdout
    assert "InvalidTask: task " in result.stdout
    assert "PermissionDenied: workflow:start denied: 'demo-viewer' (viewer)" in result.stdout
    assert f"http://127.0.0.1:{ui_port}/namespaces/default/workflows/task-processing-" in (
        result.stdout
    )
    assert f"Worker ops server: http://127.0.0.1:{metrics_port}/metrics" in result.stdout
    # The denied start never ran workflow code, so it is a denial, not a workflow run.
    assert "status 'polling', ready True; workflow runs closed: 1 completed, 1 failed" in (
        result.stdout
    )
    assert "Stopped everything the demo started." in result.stdout
    for used in ports:
        assert not accepts_connections(used)
    assert "worker stopped" in (tmp_path / "demo" / "worker.log").read_text()


def test_a_taken_port_is_named(tmp_path: Path, ports: Ports) -> None:
    """The demo refuses to start on a busy port and says which one."""
    port = ports[0]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()

        result = run_demo(tmp_path / "demo", ports)

    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 (Temporal frontend) is not free" in result.stderr
    assert not (tmp_path / "demo").exists()


def test_refuses_to_clear_a_directory_it_did_not_make(tmp_path: Path, ports: Ports) -> None:
    """--build-dir pointing at someone's files is an error, not a deletion."""
    (tmp_path / "precious.txt").write_text("keep me")

    result = run_demo(tmp_path, ports)

    assert result.returncode == 1
    assert "holds files the demo did not make" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"


@pytest.fixture
def kept_demo(tmp_path: Path, ports: Ports) -> Iterator[subprocess.Popen[str]]:
    demo = subprocess.Popen(
        demo_command(tmp_path / "demo", ports, "--keep-running"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield demo
    finally:
        if demo.poll() is None:
            demo.terminate()
            demo.wait(timeout=60)


def test_keep_running_serves_the_web_ui_until_ctrl_c(
    kept_demo: subprocess.Popen[str], ports: Ports
) -> None:
    """With --keep-running the server and UI stay up; Ctrl-C then stops them all."""
    assert kept_demo.stdout is not None
    deadline = time.monotonic() + 600
    for line in kept_demo.stdout:
        if "Press Ctrl-C to stop" in line:
            break
        assert time.monotonic() < deadline
    _, ui_port, codec_port, metrics_port = ports
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/ready") as ready:
        assert ready.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/namespaces/default/workflows") as page:
        assert page.status == 200
    # What the Web UI sends the codec server: its own origin, a namespace, no token.
    ui_request = urllib.request.Request(
        f"http://127.0.0.1:{codec_port}/decode?preserveStorageRefs=true",
        data=b'{"payloads": []}',
        headers={"Origin": f"http://127.0.0.1:{ui_port}", "X-Namespace": "default",
                 "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(ui_request) as decoded:  # noqa: S310  A fixed http URL.
        assert decoded.status == 200
        assert decoded.headers["Access-Control-Allow-Origin"] == f"http://127.0.0.1:{ui_port}"

    kept_demo.send_signal(signal.SIGINT)
    output, _ = kept_demo.communicate(timeout=120)

    assert kept_demo.returncode == 130, output
    assert "stopped everything it had started" in output
    for used in ports:
        assert not accepts_connections(used)
