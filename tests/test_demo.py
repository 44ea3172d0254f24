"""The README's demo, run for real: render, install, start a server and a worker, stop them."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from shadow_sdk.testing import BackgroundProcess, accepts_connections, free_port

pytestmark = pytest.mark.slow

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


def examples(output: str) -> dict[str, str]:
    """What the demo printed for each example, by title: its heading and the lines under it."""
    return {
        match["title"]: match[0]
        for match in re.finditer(r"^\d\. (?P<title>[A-Z][a-z ]+): (?:.+\n)+", output, re.M)
    }


def test_runs_the_six_examples_and_stops_everything(tmp_path: Path, ports: Ports) -> None:
    """Each example runs and says what it did, with Web UI links; nothing is left running."""
    result = run_demo(tmp_path / "demo", ports)

    assert result.returncode == 0, result.stdout + result.stderr
    port, ui_port, codec_port, metrics_port = ports
    assert f"Temporal server: 127.0.0.1:{port}, namespace 'default'" in result.stdout
    assert f"Codec server: http://127.0.0.1:{codec_port}" in result.stdout
    printed = examples(result.stdout)
    assert list(printed) == [
        "Task processing", "Long running", "Scheduled", "Batch processing", "Error handling",
        "Dynamic control", "Versioned deploy",
    ], result.stdout  # fmt: skip
    for title, text in printed.items():
        assert f"http://127.0.0.1:{ui_port}/namespaces/default/workflows/" in text, title

    tasks = printed["Task processing"]
    assert "valid task: task-processing-" in tasks
    assert '"word_count": 9' in tasks
    assert "InvalidTask: task " in tasks
    assert "PermissionDenied: workflow:start denied: 'demo-viewer' (viewer)" in tasks
    assert f"http://127.0.0.1:{ui_port}/namespaces/default/workflows/task-processing-" in tasks

    # 4 chunks of 250 records, 2 per run: the first run continues as new.
    assert re.search(
        r"job: long-running-\w+ completed\n"
        r"    1000 records, total 499500, in 2 runs \(continued as new once\)\n",
        printed["Long running"],
    )

    scheduled = printed["Scheduled"]
    assert (
        "schedules sync: created schedule daily-report, created schedule hourly-report\n"
        in scheduled
    )
    assert "triggered once with temporal schedule trigger (not started by hand)" in scheduled
    # Temporal names a scheduled run after the time it was due: the end of its report.
    run = re.search(
        r"its run: daily-report-(?P<due>\S+) completed\n"
        r"    report period (?P<start>\S+) to (?P<end>\S+): 'Report of ",
        scheduled,
    )
    assert run, scheduled
    assert run["end"] == run["due"]
    period = datetime.fromisoformat(run["end"]) - datetime.fromisoformat(run["start"])
    assert period == timedelta(hours=24)

    assert re.search(
        r"batch: batch-processing-\w+ completed\n"
        r"    3 of 4 documents indexed; failed: doc-deleted "
        r"\(NotFound: document 'doc-deleted' does not exist\)\n",
        printed["Batch processing"],
    )

    orders = printed["Error handling"]
    assert re.search(r"order shipped: order-fulfilment-\w+ completed\n    payment pay-", orders)
    assert re.search(
        r"card declined: order-fulfilment-\w+ failed\n"
        r"    PaymentDeclined: card tok_declined declined for 2500 cents\n"
        r"    activities: reserve_stock, charge_payment \(failed\); compensation: release_stock\n",
        orders,
    )

    rollout = printed["Dynamic control"]
    steps = [
        r"rollout-\w+ started: version 1\.2\.3 to web-1, web-2, web-3, 600 s apart",
        r"control pause: pause sent; the rollout holds before its next step",
        r"control status: paused, [01] of 3 steps done",
        r"control resume: resume sent",
        r"control add-targets web-4: added web-4; \w+, [01] of 4 steps done",
        r"control add-targets web-1: targets not added: "
        r"InvalidInput: already in the rollout: web-1",
        r"control cancel --reason 'demo over': cancel sent",
        r"final report: rollout-\w+ completed\n"
        r"    cancelled: deployed web-1; skipped web-2, web-3, web-4 \(demo over\)",
    ]
    assert re.search(".*".join(steps), rollout, re.S), rollout

    # Build 2 became current while a pinned rollout was open on build 1: the new task ran
    # on 2, the rollout finished on 1, and build 1 then drained.
    deploy = printed["Versioned deploy"]
    steps = [
        r"rollout-\w+: paused on build 1, pinned",
        r"Starting the worker, build 2 of deployment example-worker",
        r"example-worker: new workflows now run 2",
        r"new task: task-processing-\w+ completed on build 2",
        r"control resume: resume sent",
        r"rollout, finished on build 1: rollout-\w+ completed\n    completed: deployed web-1, web-2",
        r"shadow deployment drained example-worker 1: example-worker 1: drained",
    ]
    assert re.search(".*".join(steps), deploy, re.S), deploy

    assert f"Worker ops server: http://127.0.0.1:{metrics_port}/metrics" in result.stdout
    # Build 1's worker, which ran all but the last task. The denied start never ran
    # workflow code, so it is a denial, not a workflow run. The long running job's first
    # run continued as new; the rejected task and the declined order failed; both
    # rollouts completed with their reports.
    assert (
        "status 'polling', ready True; "
        "workflow runs closed: 7 completed, 1 continued as new, 2 failed"
    ) in result.stdout
    assert "Stopped everything the demo started." in result.stdout
    for used in ports:
        assert not accepts_connections(used)
    for log in ("worker.log", "worker-2.log"):
        assert "worker stopped" in (tmp_path / "demo" / log).read_text(), log


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
def kept_demo(tmp_path: Path, ports: Ports) -> Iterator[BackgroundProcess]:
    command = demo_command(tmp_path / "demo", ports, "--keep-running")
    demo = BackgroundProcess(command, name="the demo").start()
    try:
        yield demo
    finally:
        demo.stop(timeout=60)


def test_keep_running_serves_the_web_ui_until_ctrl_c(
    kept_demo: BackgroundProcess, ports: Ports
) -> None:
    """With --keep-running the server and UI stay up; Ctrl-C then stops them all."""
    kept_demo.wait_for_output("Press Ctrl-C to stop", timeout=600)
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
    code, output = kept_demo.wait(timeout=120), kept_demo.output

    assert code == 130, output
    assert "stopped everything it had started" in output
    for used in ports:
        assert not accepts_connections(used)
