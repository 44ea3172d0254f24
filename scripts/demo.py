"""The demo: render a service from this checkout and run it on a local Temporal server.

Run it with ``nox -s demo`` (arguments after ``--`` are passed on):

1. render the template with its default answers into ``build/demo/``;
2. install the generated service into its own ``.venv`` with uv, against this
   checkout's ``shadow_sdk``;
3. make a local encryption key and token secret with the service's ``shadow``
   command, and start its codec server, so that the Web UI can decrypt payloads;
4. start the Temporal dev server (``temporal server start-dev``, Web UI on,
   pointed at the codec server);
5. start the service's worker, then start the example workflows through the
   service's own command line: one that succeeds, one that is rejected, and one
   from a caller whose role may not start workflows;
6. print what happened, with links into the Web UI and what the worker's ops
   server reports, and stop every process it started (also on Ctrl-C or
   failure) unless ``--keep-running`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import copier
import uv
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / "build" / "demo"
STARTUP_TIMEOUT = 60.0
WORKER_DRAIN_SECONDS = 10  # The demo worker's WORKER_GRACEFUL_SHUTDOWN_TIMEOUT.
STOP_TIMEOUT = 30.0  # Longer than the drain, so a draining worker is not killed.


class DemoError(Exception):
    """The demo cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Service:
    """A rendered, installed service."""

    path: Path
    slug: str
    namespace: str
    task_queue: str
    encryption: bool
    authorization: bool

    @property
    def bin(self) -> Path:
        """Where the service's virtual environment keeps its commands."""
        return self.path / ".venv" / "bin"


@dataclass(frozen=True)
class Run:
    """One workflow started through the service's command line."""

    label: str
    report: dict[str, Any]


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the process's exit status."""
    args = _parse(argv)
    ports = (
        (args.port, "Temporal frontend"),
        (args.ui_port, "Temporal Web UI"),
        (args.codec_port, "codec server"),
        (args.metrics_port, "worker ops server"),
    )
    try:
        for port, role in ports:
            _check_port_free(args.host, port, role)
        service = _render_and_install(args.build_dir)
        with _stop_on_exit() as processes:
            server_address = f"{args.host}:{args.port}"
            ui_url = f"http://{args.host}:{args.ui_port}"
            codec_url = f"http://{args.host}:{args.codec_port}" if service.encryption else None
            ops_url = f"http://{args.host}:{args.metrics_port}"
            env = {
                **_without_virtualenv(os.environ),
                "TEMPORAL_ADDRESS": server_address,
                "TEMPORAL_NAMESPACE": service.namespace,
                "TEMPORAL_TASK_QUEUE": service.task_queue,
                "WORKER_GRACEFUL_SHUTDOWN_TIMEOUT": str(WORKER_DRAIN_SECONDS),
                "METRICS_HOST": args.host,
                "METRICS_PORT": str(args.metrics_port),
                **_security_settings(service),
            }
            tokens = _tokens(service, env)
            if codec_url is not None:
                _start_codec_server(processes, service, env, args, ui_url)
            _start_server(processes, service, args, server_address, codec_url)
            _start_worker(processes, service, env)
            runs = _run_examples(service, env, tokens)
            _print_summary(service, server_address, ui_url, codec_url, runs)
            _print_operations(ops_url)
            ok = _as_expected(runs)
            if args.keep_running:
                print(f"\nEverything keeps running; open {ui_url}. Press Ctrl-C to stop.")
                _wait_for_interrupt(processes)
    except DemoError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted; stopped everything it had started", file=sys.stderr)
        return 130
    print("\nStopped everything the demo started.")
    return 0 if ok else 1


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="nox -s demo --", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=_port, default=7233, help="Temporal frontend port (7233)")
    parser.add_argument("--ui-port", type=_port, default=8233, help="Temporal Web UI port (8233)")
    parser.add_argument("--codec-port", type=_port, default=8081, help="codec server port (8081)")
    parser.add_argument(
        "--metrics-port", type=_port, default=9464, help="the worker's ops server port (9464)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument(
        "--keep-running", action="store_true", help="keep server and worker up until Ctrl-C"
    )
    parser.add_argument(
        "--build-dir", type=Path, default=DEMO_DIR, help=f"where to render ({_relative(DEMO_DIR)})"
    )
    return parser.parse_args(argv)


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (1-65535)")
    return port


def _check_port_free(host: str, port: int, role: str) -> None:
    with socket.socket() as sock:
        # As the server will: a port in TIME_WAIT after a previous run is free to use.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            raise DemoError(
                f"port {port} on {host} ({role}) is not free: {error.strerror}; "
                f"stop what uses it or pick another port, e.g. "
                f"'nox -s demo -- --port 7300 --ui-port 8300'"
            ) from None


def _render_and_install(build_dir: Path) -> Service:
    marker = build_dir / ".shadow-demo"
    if build_dir.exists() and any(build_dir.iterdir()) and not marker.exists():
        raise DemoError(
            f"{build_dir} holds files the demo did not make; choose another --build-dir"
        )
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    marker.touch()
    print(f"Rendering the template with its default answers into {_relative(build_dir)} ...")
    with _quiet_warnings():
        worker = copier.run_copy(
            str(ROOT),
            str(build_dir / "service"),
            data={"shadow_sdk_requirement": f"shadow-sdk @ {ROOT.as_uri()}"},
            defaults=True,
            vcs_ref="HEAD",
            quiet=True,
        )
    answers = yaml.safe_load((Path(worker.dst_path) / ".copier-answers.yml").read_text())
    path = Path(worker.dst_path).rename(build_dir / answers["project_slug"])
    service = Service(
        path=path,
        slug=answers["project_slug"],
        namespace=answers["temporal_namespace"],
        task_queue=answers["task_queue"],
        encryption=answers["encryption"],
        authorization=answers["authorization"],
    )
    print(f"Installing {service.slug} and this checkout's shadow_sdk into its .venv (uv sync) ...")
    result = subprocess.run(
        [uv.find_uv_bin(), "sync", "--quiet", "--project", str(service.path)],
        # nox points UV_PROJECT_ENVIRONMENT at its own session; the service gets its own.
        env={
            **_without_virtualenv(os.environ),
            "UV_PROJECT_ENVIRONMENT": str(service.path / ".venv"),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DemoError(f"'uv sync' failed for {service.path}:\n{result.stderr}")
    return service


def _without_virtualenv(env: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The environment minus nox's virtual environment, so that the service uses its own."""
    return {
        name: value
        for name, value in env.items()
        if name not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }


@contextlib.contextmanager
def _quiet_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copier warns that the checkout has local changes.
        yield


class _Processes:
    """The processes the demo started, stopped in reverse order however the demo ends."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen[str]]] = []

    def start(self, name: str, command: list[str], env: dict[str, str], log: Path) -> _Output:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops them in order.
        )
        self.started.append((name, process))
        return _Output(process, log)

    def stop_all(self) -> None:
        for name, process in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    print(f"demo: {name} did not stop in {STOP_TIMEOUT:g} s; killing it")
                    process.kill()
                    process.wait()


class _Output:
    """A child's output, copied to a log file and watched for a line."""

    def __init__(self, process: subprocess.Popen[str], log: Path) -> None:
        self.process = process
        self.log = log
        self._lines: list[str] = []
        self._seen = threading.Condition()
        if process.stdout is None:
            raise ValueError("process must be started with stdout=PIPE")
        threading.Thread(target=self._copy, args=(process.stdout,), daemon=True).start()

    def _copy(self, stream: IO[str]) -> None:
        with self.log.open("w") as log:
            for line in stream:
                log.write(line)
                log.flush()
                with self._seen:
                    self._lines.append(line)
                    self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_for(self, text: str, what: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with self._seen:
            while not any(text in line for line in self._lines):
                if self.process.poll() is not None:
                    raise DemoError(f"{what} exited with {self.process.returncode}:\n{self.tail()}")
                if time.monotonic() > deadline:
                    raise DemoError(f"{what} not ready after {STARTUP_TIMEOUT:g} s:\n{self.tail()}")
                self._seen.wait(timeout=0.2)

    def tail(self) -> str:
        return "".join(self._lines[-20:]) or f"(no output; see {self.log})"


@contextlib.contextmanager
def _stop_on_exit() -> Iterator[_Processes]:
    processes = _Processes()

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    # Even when started with SIGINT ignored (a background job), Ctrl-C must stop the demo.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield processes
    finally:
        # Finish stopping even on a second Ctrl-C, or when nox loses patience and sends SIGTERM.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        processes.stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)


def _shadow(service: Service, env: dict[str, str], *args: str) -> str:
    """Run the service's `shadow` command and return what it printed."""
    result = subprocess.run(
        [str(service.bin / "shadow"), *args], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise DemoError(f"'shadow {' '.join(args)}' failed:\n{result.stderr}")
    return result.stdout.strip()


def _security_settings(service: Service) -> dict[str, str]:
    """A throwaway key and token secret for this demo run, as variables."""
    settings = {}
    if service.encryption:
        print("Making an encryption key: shadow keygen ...")
        settings["CODEC_KEYS"] = _shadow(service, dict(os.environ), "keygen", "--id", "demo")
    if service.authorization:
        settings["AUTH_HS256_SECRET"] = secrets.token_urlsafe(32)
    return settings


def _tokens(service: Service, env: dict[str, str]) -> dict[str, str]:
    """Tokens for an operator and a viewer, also saved next to the service for the CLI."""
    if not service.authorization:
        return {}
    print("Issuing tokens for an operator and a viewer: shadow token ...")
    tokens = {}
    for role in ("operator", "viewer"):
        token = _shadow(service, env, "token", "--subject", f"demo-{role}", "--role", role)
        path = service.path.parent / f"{role}.token"
        path.write_text(token + "\n")
        path.chmod(0o600)
        tokens[role] = token
    return tokens


def _start_codec_server(
    processes: _Processes,
    service: Service,
    env: dict[str, str],
    args: argparse.Namespace,
    ui_url: str,
) -> None:
    print(f"Starting the codec server on port {args.codec_port} (shadow codec-server) ...")
    output = processes.start(
        "the codec server",
        [str(service.bin / "shadow"), "codec-server", "--host", args.host,
         "--port", str(args.codec_port)],
        env={
            **env,
            "CODEC_SERVER_CORS_ORIGINS": ui_url,
            # The dev server's Web UI sends no token; on loopback it may read payloads.
            "CODEC_SERVER_ANONYMOUS_ROLE": "viewer",
        },
        log=service.path.parent / "codec-server.log",
    )  # fmt: skip
    output.wait_for("codec server on", "the codec server")


def _start_server(
    processes: _Processes,
    service: Service,
    args: argparse.Namespace,
    address: str,
    codec_url: str | None,
) -> None:
    print(f"Starting the Temporal dev server on {address} (Web UI on port {args.ui_port}) ...")
    temporal = str(service.bin / "temporal")
    codec = ["--ui-codec-endpoint", codec_url] if codec_url else []
    output = processes.start(
        "the Temporal dev server",
        [
            temporal, "server", "start-dev",
            "--ip", args.host,
            "--port", str(args.port),
            "--ui-port", str(args.ui_port),
            "--namespace", service.namespace,
            "--log-level", "warn",
            *codec,
        ],
        env=dict(os.environ),
        log=service.path.parent / "server.log",
    )  # fmt: skip
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        ready = subprocess.run(
            [temporal, "operator", "namespace", "describe", "--address", address,
             "--namespace", service.namespace],
            capture_output=True,
            check=False,
        )  # fmt: skip
        if ready.returncode == 0:
            return
        if output.process.poll() is not None or time.monotonic() > deadline:
            raise DemoError(f"the Temporal dev server did not start:\n{output.tail()}")
        time.sleep(0.2)


def _start_worker(processes: _Processes, service: Service, env: dict[str, str]) -> None:
    print(f"Starting the worker: {service.slug} worker ...")
    output = processes.start(
        "the worker",
        [str(service.bin / service.slug), "worker"],
        env=env,
        log=service.path.parent / "worker.log",
    )
    output.wait_for("worker polling", "the worker")


def _run_examples(service: Service, env: dict[str, str], tokens: dict[str, str]) -> list[Run]:
    operator = {"AUTH_TOKEN": tokens["operator"]} if "operator" in tokens else {}
    text = "The quick brown fox jumps over the lazy dog"
    examples = [
        ("valid task", [text, "--notify=demo@example.com"], operator),
        ("empty task, rejected", ["   ", "--notify=demo@example.com"], operator),
    ]
    if "viewer" in tokens:
        viewer = {"AUTH_TOKEN": tokens["viewer"]}
        examples.append(
            ("valid task from a viewer, denied", [text, "--notify=v@example.com"], viewer)
        )
    runs = []
    for label, arguments, token in examples:
        command = [str(service.bin / service.slug), "start", "task-processing", *arguments]
        print(f"Running: {service.slug} start task-processing {' '.join(map(repr, arguments))}")
        result = subprocess.run(
            [*command, "--json"],
            env={**env, **token},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        try:
            report = json.loads(result.stdout)
        except json.JSONDecodeError:
            raise DemoError(
                f"the command line failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            ) from None
        runs.append(Run(label, report))
    return runs


def _print_summary(
    service: Service, address: str, ui_url: str, codec_url: str | None, runs: list[Run]
) -> None:
    print(
        f"\n{service.slug}: rendered from this checkout into {_relative(service.path)}\n"
        f"Temporal server: {address}, namespace {service.namespace!r}, "
        f"task queue {service.task_queue!r}\n"
        f"Web UI: {ui_url}/namespaces/{service.namespace}/workflows"
    )
    if codec_url is not None:
        print(
            f"Codec server: {codec_url} (payloads are encrypted; the Web UI decrypts them "
            "through it)"
        )
    logs = ", ".join(
        _relative(service.path.parent / f"{name}.log")
        for name in ("server", "worker", "codec-server")
        if (service.path.parent / f"{name}.log").exists()
    )
    print(f"Logs: {logs}\n")
    for run in runs:
        report = run.report
        outcome = (
            json.dumps(report["result"]) if report["status"] == "completed" else report.get("error")
        )
        print(f"  {run.label}: {report['workflow_id']} {report['status']}")
        print(f"    {outcome}")
        print(
            f"    {ui_url}/namespaces/{service.namespace}/workflows/"
            f"{report['workflow_id']}/{report['run_id']}/history"
        )
    if codec_url is not None and runs:
        token = service.path.parent / "operator.token"
        auth = f' --codec-auth "Bearer $(cat {_relative(token)})"' if token.exists() else ""
        print(
            f"\nWhile it runs (--keep-running), read a history decrypted by the codec server:\n"
            f"  {_relative(service.bin / 'temporal')} workflow show --address {address} "
            f"-w {runs[0].report['workflow_id']} --codec-endpoint '{codec_url}/{{namespace}}'{auth}"
        )


def _print_operations(ops_url: str) -> None:
    """Show what the worker's ops server says about the runs: probes and workflow counts."""
    with urllib.request.urlopen(f"{ops_url}/health", timeout=10) as response:  # noqa: S310
        health = json.load(response)
    with urllib.request.urlopen(f"{ops_url}/metrics", timeout=10) as response:  # noqa: S310
        metrics = response.read().decode()
    closed: dict[str, float] = {}
    for match in re.finditer(r"^shadow_workflows_closed_total\{(.*)\} (\S+)$", metrics, re.M):
        outcome = re.search(r'outcome="(\w+)"', match[1])
        if outcome:
            closed[outcome[1]] = closed.get(outcome[1], 0.0) + float(match[2])
    counts = ", ".join(f"{count:g} {outcome}" for outcome, count in sorted(closed.items()))
    print(
        f"\nWorker ops server: {ops_url}/metrics, /live, /ready, /health\n"
        f"  status {health['status']!r}, ready {health['ready']}; "
        f"workflow runs closed: {counts or 'none yet'}"
    )


def _as_expected(runs: list[Run]) -> bool:
    statuses = [run.report["status"] for run in runs]
    expected = ["completed", "failed", "failed"][: len(runs)]
    denied = [run.report.get("error", "") for run in runs[2:]]
    if statuses == expected and all(error.startswith("PermissionDenied") for error in denied):
        return True
    print(f"demo: expected {expected} (the third denied), got {statuses}")
    return False


def _wait_for_interrupt(processes: _Processes) -> None:
    while all(process.poll() is None for _, process in processes.started):
        time.sleep(0.5)
    stopped = [name for name, process in processes.started if process.poll() is not None]
    raise DemoError(f"{', '.join(stopped)} stopped unexpectedly; see the logs next to the service")


def _relative(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


if __name__ == "__main__":
    sys.exit(main())
