"""The demo: render a service from this checkout and run it on a local Temporal server.

Run it with ``nox -s demo`` (arguments after ``--`` are passed on):

1. render the template with its default answers into ``build/demo/``;
2. install the generated service into its own ``.venv`` with uv, against this
   checkout's ``shadow_sdk``;
3. make a local encryption key and token secret with the service's ``shadow``
   command, and start its codec server, so that the Web UI can decrypt payloads;
4. start the Temporal dev server (``temporal server start-dev``, Web UI on,
   pointed at the codec server);
5. start the service's worker as version 1 of its Worker Deployment and make that
   version current, then run its six examples through the service's
   own command line (and the Temporal CLI where the service has no command):
   tasks that complete, are rejected or are denied; a long job that continues as
   new; the daily report's schedule, synced and triggered once; a batch with a
   missing document; an order that ships and one whose card is declined; a
   rollout that is paused, resumed, extended (and refused) and cancelled;
   then a versioned deploy: a pinned rollout is held on version 1 while version 2
   starts and becomes current; a new task runs on 2, the rollout finishes on 1,
   and version 1 reports drained;
6. print what each did, with links into the Web UI, and what the worker's ops
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
import time
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import copier
import uv
import yaml
from demo_examples import Examples
from demo_service import FIRST_BUILD, NEXT_BUILD, DemoError, Service, make_current, relative

from shadow_sdk.testing import (
    BackgroundProcess,
    DevServer,
    ProcessExited,
    WorkerProcess,
    free_port,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / "build" / "demo"
STARTUP_TIMEOUT = 60.0
WORKER_DRAIN_SECONDS = 10  # The demo worker's WORKER_GRACEFUL_SHUTDOWN_TIMEOUT.
STOP_TIMEOUT = 30.0  # Longer than the drain, so a draining worker is not killed.
# The dev server checks whether a version drained every second, instead of every few minutes.
QUICK_DRAINAGE = [
    "--dynamic-config-value", 'matching.wv.VersionDrainageStatusRefreshInterval="1s"',
    "--dynamic-config-value", 'matching.wv.VersionDrainageStatusVisibilityGracePeriod="1s"',
]  # fmt: skip

P = TypeVar("P", bound=BackgroundProcess)


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
            _start_worker(processes, service, env, FIRST_BUILD)
            make_current(service, env, FIRST_BUILD)
            _print_summary(service, server_address, ui_url, codec_url)
            examples = Examples(
                service,
                env,
                tokens=tokens,
                address=server_address,
                ui_url=ui_url,
                codec_url=codec_url,
            )
            examples.run_all()

            def start_next_build() -> None:
                worker_env = {**env, "METRICS_PORT": str(free_port(args.host))}
                _start_worker(processes, service, worker_env, NEXT_BUILD)

            examples.versioned_deploy(start_next_build)
            _print_operations(ops_url)
            ok = examples.as_expected()
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
        "--build-dir", type=Path, default=DEMO_DIR, help=f"where to render ({relative(DEMO_DIR)})"
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
    print(f"Rendering the template with its default answers into {relative(build_dir)} ...")
    with _quiet_warnings():
        worker = copier.run_copy(
            str(ROOT),
            str(build_dir / "service"),
            # The SDK of this checkout, as kit development installs it.
            data={"sdk_source": "checkout", "sdk_checkout": str(ROOT)},
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
        self.started: list[BackgroundProcess] = []

    def start(self, process: P, *, until: str | None = None) -> P:
        """Start ``process`` (waiting for ``until`` in its output) and stop it at the end."""
        self.started.append(process)
        try:
            if until is None:
                process.start(STARTUP_TIMEOUT)  # Each kind's own readiness.
            else:
                process.start(STARTUP_TIMEOUT, until=until)
        except (ProcessExited, TimeoutError) as error:
            raise DemoError(f"{process.name} did not start:\n{_tail(str(error))}") from None
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop(STOP_TIMEOUT)


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.splitlines()[-lines:])


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
    codec_server = BackgroundProcess(
        [str(service.bin / "shadow"), "codec-server", "--host", args.host,
         "--port", str(args.codec_port)],
        {
            **env,
            "CODEC_SERVER_CORS_ORIGINS": ui_url,
            # The dev server's Web UI sends no token; on loopback it may read payloads.
            "CODEC_SERVER_ANONYMOUS_ROLE": "viewer",
        },
        log=service.path.parent / "codec-server.log",
        name="the codec server",
    )  # fmt: skip
    processes.start(codec_server, until="codec server on")


def _start_server(
    processes: _Processes,
    service: Service,
    args: argparse.Namespace,
    address: str,
    codec_url: str | None,
) -> None:
    print(f"Starting the Temporal dev server on {address} (Web UI on port {args.ui_port}) ...")
    ui = ["--ui-port", str(args.ui_port)]
    codec = ["--ui-codec-endpoint", codec_url] if codec_url else []
    server = DevServer(
        host=args.host,
        port=args.port,
        namespace=service.namespace,
        arguments=[*ui, *codec, *QUICK_DRAINAGE],
        log=service.path.parent / "server.log",
    )
    processes.start(server)


def _start_worker(
    processes: _Processes, service: Service, env: dict[str, str], build_id: str
) -> None:
    """Start the worker as version ``build_id`` of the service's Worker Deployment."""
    print(
        f"Starting the worker, build {build_id} of deployment {service.slug}: "
        f"TEMPORAL_WORKER_BUILD_ID={build_id} {service.slug} worker ..."
    )
    versioned = {"TEMPORAL_DEPLOYMENT_NAME": service.slug, "TEMPORAL_WORKER_BUILD_ID": build_id}
    log = "worker.log" if build_id == FIRST_BUILD else f"worker-{build_id}.log"
    worker = WorkerProcess(
        [str(service.bin / service.slug), "worker"],
        {**env, **versioned},
        log=service.path.parent / log,
        name=f"the worker (build {build_id})",
    )
    processes.start(worker)  # Until it polls.


def _print_summary(service: Service, address: str, ui_url: str, codec_url: str | None) -> None:
    print(
        f"\n{service.slug}: rendered from this checkout into {relative(service.path)}\n"
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
        relative(service.path.parent / f"{name}.log")
        for name in ("server", "worker", "codec-server")
        if (service.path.parent / f"{name}.log").exists()
    )
    print(f"Logs: {logs}")


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
    counts = ", ".join(
        f"{count:g} {outcome.replace('_', ' ')}" for outcome, count in sorted(closed.items())
    )
    print(
        f"\nWorker ops server: {ops_url}/metrics, /live, /ready, /health\n"
        f"  status {health['status']!r}, ready {health['ready']}; "
        f"workflow runs closed: {counts or 'none yet'}"
    )


def _wait_for_interrupt(processes: _Processes) -> None:
    while all(process.returncode is None for process in processes.started):
        time.sleep(0.5)
    stopped = [process.name for process in processes.started if process.returncode is not None]
    raise DemoError(f"{', '.join(stopped)} stopped unexpectedly; see the logs next to the service")


if __name__ == "__main__":
    sys.exit(main())
