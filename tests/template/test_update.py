"""Updating a generated service with `copier update`: merges, conflicts, a move, answers.

A throwaway git repository of this checkout's template is tagged v0.1.0, then v0.2.0 after
a change typical of a fix release: a hardened Dockerfile line, a section of the service
guide, a new question and the file it renders, a new nox session, a file moved to a new
folder with the migration that carries the service's edits along, and new lines in the
two files a service owns (README.md and registry.py), which the update must leave alone.
A service rendered at v0.1.0, with the edits its owners typically make committed on top,
is updated to v0.2.0 as `copier update --defaults --trust --vcs-ref=v0.2.0` would,
through copier's API; so are services whose examples change by answer on the way.

The updated service's own `nox -s lint typecheck` runs here; its full `nox` (tests and
replay too, about two minutes) runs only with SHADOW_UPDATE_FULL_NOX=1, which
`nox -s update` sets, so that `pytest tests` does not run it as well.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from helpers.rendering import ROOT, SDK_FROM_CHECKOUT
from helpers.repositories import git
from helpers.services import run, tool

pytestmark = pytest.mark.slow  # Renders the template and runs its services' checks.

FULL_NOX = os.environ.get("SHADOW_UPDATE_FULL_NOX") == "1"
PACKAGE = "src/example_worker"
OLD_ALERTS = "deploy/observability/alerts.yml"
NEW_ALERTS = "deploy/observability/rules/alerts.yml"
OWNED = ("README.md", f"{PACKAGE}/registry.py")
"""The service's own files: written once (`_skip_if_exists`), never touched by an update."""
MARKERS = ("<" * 7, "=" * 7, ">" * 7)
"""The lines of an inline conflict: the service's version, then the template's."""


# --- Building the template's releases --------------------------------------------------


def commit(repository: Path, message: str) -> None:
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "--no-verify", f"--message={message}")


def edit(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of ``old`` in ``path``: a missing anchor fails loudly."""
    text = path.read_text()
    assert text.count(old) == 1, f"{path} should hold {old!r} once: update test_update.py"
    path.write_text(text.replace(old, new))


OBSERVABILITY = "template/deploy/{% if metrics %}observability{% endif %}"
HARDENED_BEFORE = "--gid worker --no-create-home \\\n"
HARDENED_AFTER = "--gid worker --no-create-home --no-log-init \\\n"
PROBES = (
    "\n## Probes\n\n"
    "`GET /live` and `GET /ready` on `METRICS_PORT` are the worker's liveness and readiness\n"
    "probes: the Dockerfile's health check and the Kubernetes Deployment call them.\n"
)
RULES_NOTE = (
    "# thresholds are starting points to tune per service. Prometheus loads every file of\n"
    "# rules/: put rules of your own in a file of their own beside this one.\n"
)
ON_CALL = (
    "\n## On call\n\nName the team that answers this service's alerts, and where to reach it.\n"
)
REGISTRY_BEFORE = "through ``examples.py``.\n"
REGISTRY_AFTER = (
    "through ``examples.py``.\nList one part per line, each imported above ``PARTS``.\n"
)
FMT_SESSION = '''

@nox.session(default=False)
def fmt(session: nox.Session) -> None:
    """Fix what ruff can fix and format the code: run it before committing."""
    session.run_install(
        "uv",
        "sync",
        "--only-group=lint",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )
    session.run("ruff", "check", "--fix", ".")
    session.run("ruff", "format", ".")
'''
CODE_OWNERS_QUESTION = {
    "type": "str",
    "help": "Who reviews changes to the service (a GitHub team or user)",
    "default": "@{{ project_slug }}-maintainers",
}
MOVE_ALERTS = {
    "version": "v0.2.0",
    "when": "{{ _stage == 'after' }}",
    "command": [
        "{{ _copier_python }}",
        "{{ _copier_conf.src_path }}/migrations/move_file.py",
        OLD_ALERTS,
        NEW_ALERTS,
        "{{ _copier_conf.answers_file }}",
    ],
}


def copy_working_tree(repository: Path) -> None:
    """The template as this checkout has it, uncommitted and untracked files included."""
    listed = git(
        ROOT,
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
        "copier.yml",
        "template",
    )
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():  # A tracked file deleted in the working tree is gone.
            (repository / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repository / name)


def release_a_fix(repository: Path, *, migration: bool = True) -> None:
    """Change the template as a fix release does (see the module docstring)."""
    template = repository / "template"
    edit(template / "Dockerfile.jinja", HARDENED_BEFORE, HARDENED_AFTER)
    guide = template / "docs" / "guide.md.jinja"
    guide.write_text(guide.read_text() + PROBES)
    # The service's own files change too: services generated from now on get the change,
    # services being updated keep theirs.
    service_readme = template / "README.md.jinja"
    service_readme.write_text(service_readme.read_text() + ON_CALL)
    registry = template / "src" / "{{ package_name }}" / "registry.py.jinja"
    edit(registry, REGISTRY_BEFORE, REGISTRY_AFTER)
    (template / "noxfile.py").write_text((template / "noxfile.py").read_text() + FMT_SESSION)
    (template / "CODEOWNERS.jinja").write_text(
        "# Who reviews changes to {{ project_name }}: GitHub asks them on every pull request.\n"
        "* {{ code_owners }}\n"
    )
    # deploy/observability/alerts.yml moves into rules/, and changes on the way.
    observability = repository / OBSERVABILITY
    (observability / "rules").mkdir()
    git(repository, "mv", f"{OBSERVABILITY}/alerts.yml.jinja", f"{OBSERVABILITY}/rules/")
    edit(
        observability / "rules" / "alerts.yml.jinja",
        "# thresholds are starting points to tune per service.\n",
        RULES_NOTE,
    )
    edit(observability / "prometheus.yml.jinja", "  - alerts.yml\n", "  - rules/*.yml\n")
    readme = observability / "README.md.jinja"
    readme.write_text(
        readme.read_text()
        .replace("`alerts.yml`", "`rules/alerts.yml`")
        .replace("check rules alerts.yml", "check rules rules/alerts.yml")
    )
    edit(
        template / "{% if 'compose' in deployment %}compose.yaml{% endif %}.jinja",
        f"./{OLD_ALERTS}:",
        f"./{NEW_ALERTS}:",
    )
    config = yaml.safe_load((repository / "copier.yml").read_text())
    config["code_owners"] = CODE_OWNERS_QUESTION
    if migration:
        config.setdefault("_migrations", []).append(MOVE_ALERTS)
        (repository / "migrations").mkdir()
        shutil.copy(
            ROOT / "migrations" / "move_file.py", repository / "migrations" / "move_file.py"
        )
    (repository / "copier.yml").write_text(yaml.safe_dump(config, sort_keys=False, width=100))


@pytest.fixture(scope="module")
def template_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This template tagged v0.1.0, and v0.2.0 after a fix; `without-migration` forgets one."""
    repository = tmp_path_factory.mktemp("template-repository")
    copy_working_tree(repository)
    git(repository, "init", "--quiet")
    commit(repository, "The template as the working tree has it")
    git(repository, "tag", "v0.1.0")
    main = git(repository, "branch", "--show-current").strip()
    release_a_fix(repository)
    commit(repository, "Harden the image, document the probes, move the alert rules")
    git(repository, "tag", "v0.2.0")
    git(repository, "checkout", "--quiet", "-b", "without-migration", "v0.1.0")
    release_a_fix(repository, migration=False)
    commit(repository, "The same fix, without the migration")
    git(repository, "checkout", "--quiet", main)
    return repository


# --- Services and their owners' edits --------------------------------------------------


def render(template: Path, destination: Path, ref: str, **answers: Any) -> Path:
    """Render ``template`` at ``ref`` with defaults, against this checkout's SDK."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            str(template),
            str(destination),
            data={**SDK_FROM_CHECKOUT, **answers},
            vcs_ref=ref,
            defaults=True,
            quiet=True,
        )
    return destination


def update(
    service: Path,
    ref: str = "v0.2.0",
    conflict: str = "inline",
    *,
    trust: bool = True,
    **answers: Any,
) -> None:
    """`copier update --defaults [--trust] --vcs-ref=REF --conflict=CONFLICT --data ...`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_update(
            str(service),
            data=answers,
            vcs_ref=ref,
            defaults=True,
            overwrite=True,
            conflict=conflict,  # type: ignore[arg-type]
            unsafe=trust,
            quiet=True,
        )


REMINDERS = f"{PACKAGE}/reminders"
OWN_PART: dict[str, str] = {
    f"{REMINDERS}/__init__.py": '''"""Reminders: a text handed back, shouted, after a delay."""

from .activities import shout
from .models import Reminder
from .workflow import ReminderWorkflow

__all__ = ["Reminder", "ReminderWorkflow", "shout"]
''',
    f"{REMINDERS}/models.py": '''"""What a reminder is."""

from __future__ import annotations

from pydantic import BaseModel


class Reminder(BaseModel):
    """A text to hand back after a delay."""

    text: str
    delay_seconds: float
''',
    f"{REMINDERS}/activities.py": '''"""The reminders' activity."""

from __future__ import annotations

from temporalio import activity


@activity.defn
async def shout(text: str) -> str:
    """The reminder, loud enough to be noticed."""
    return text.upper()
''',
    f"{REMINDERS}/workflow.py": '''"""A workflow of the service's own, in a package of its own."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from .activities import shout
    from .models import Reminder


@workflow.defn
class ReminderWorkflow:
    """Wait a while, then hand the reminder back."""

    @workflow.run
    async def run(self, reminder: Reminder) -> str:
        """Sleep for the reminder's delay, then return its text, shouted."""
        await workflow.sleep(timedelta(seconds=reminder.delay_seconds))
        return await workflow.execute_activity(
            shout, reminder.text, start_to_close_timeout=timedelta(seconds=10)
        )
''',
    f"{REMINDERS}/cli.py": '''"""``start reminder TEXT [--delay SECONDS]``."""

from __future__ import annotations

import argparse
import uuid

from ..commands import Subcommands, add_start_options, start_and_report
from ..settings import Settings
from .models import Reminder
from .workflow import ReminderWorkflow


def add_start_command(start: Subcommands) -> None:
    """Add ``start reminder``."""
    parser = start.add_parser("reminder", help="hand a text back after a delay")
    parser.add_argument("text", help="what to be reminded of")
    parser.add_argument("--delay", type=float, default=None, help="seconds to wait")
    add_start_options(parser)
    parser.set_defaults(command=start_reminder)


async def start_reminder(settings: Settings, args: argparse.Namespace) -> int:
    """Start a reminder and, unless --no-wait, print it when it comes back."""
    delay = settings.reminder_delay_seconds if args.delay is None else args.delay
    return await start_and_report(
        settings,
        args,
        ReminderWorkflow.run,
        Reminder(text=args.text, delay_seconds=delay),
        f"reminder-{uuid.uuid4().hex[:12]}",
    )
''',
    f"{REMINDERS}/part.py": '''"""Reminders as a part of the service."""

from __future__ import annotations

from ..parts import Part
from . import cli
from .activities import shout
from .workflow import ReminderWorkflow

PART = Part(
    name="reminders",
    workflows=[ReminderWorkflow],
    activities=lambda settings: [shout],
    start_commands=cli.add_start_command,
)
''',
    "tests/reminders/test_workflow.py": '''"""The reminder workflow, on the time-skipping test server."""

from __future__ import annotations

import uuid

from shadow_sdk import ShadowWorker
from temporalio.client import Client

from example_worker.reminders import Reminder, ReminderWorkflow
from example_worker.reminders.part import PART
from example_worker.settings import Settings


async def test_a_reminder_comes_back_after_its_delay(
    temporal_client: Client, settings: Settings
) -> None:
    """The reminder returns its text, shouted, once the delay has passed."""
    async with ShadowWorker(
        temporal_client, settings, workflows=PART.workflows, activities=PART.activities(settings)
    ):
        text = await temporal_client.execute_workflow(
            ReminderWorkflow.run,
            Reminder(text="water the plants", delay_seconds=settings.reminder_delay_seconds),
            id=f"reminder-{uuid.uuid4().hex}",
            task_queue=settings.temporal_task_queue,
        )
    assert text == "WATER THE PLANTS"
''',
    "tests/reminders/test_cli.py": '''"""`start reminder` as a process, on the worker process: both found the part."""

from __future__ import annotations

import json

from shadow_sdk.testing import Cli, WorkerProcess


async def test_the_command_line_and_the_worker_run_the_reminder(
    worker: WorkerProcess, cli: Cli
) -> None:
    """Registered in registry.py only, the reminder has a command and a worker."""
    code, stdout, stderr = await cli("start", "reminder", "stretch", "--delay=0.1", "--json")

    assert code == 0, stderr
    assert json.loads(stdout)["result"] == "STRETCH"
''',
    "tests/replay/scenarios/reminders.py": '''"""A reminder, recorded."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle

from example_worker.reminders import Reminder, ReminderWorkflow


async def start(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    """Start the run whose history is recorded."""
    reminder = Reminder(text="water the plants", delay_seconds=60.0)
    return await client.start_workflow(
        ReminderWorkflow.run, reminder, id="reminder", task_queue=task_queue
    )
''',
}
"""The owners' own part: its package, tests and replay scenario, in files of their own."""
OWN_REGISTRATION = (
    "from example_worker.examples import EXAMPLES\n"
    "from example_worker.parts import Part\n"
    "from example_worker.reminders.part import PART as REMINDERS\n",
    "    *EXAMPLES,\n    REMINDERS,\n",
)
OWN_SETTINGS = (
    '    temporal_task_queue: str = "reminders"\n'
    "    reminder_delay_seconds: float = 600.0\n"
    '    """How long a reminder waits before it comes back."""\n'
)
OWN_RULE = """
      - alert: RemindersLate
        expr: absent(up{job="example-worker"})
        for: 15m
        labels:
          severity: warning
        annotations:
          summary: Nobody scrapes the reminders' worker
"""


def test_the_adding_a_workflow_page_shows_this_part() -> None:
    """docs/adding-a-workflow.md shows the files this test adds, as they are."""
    page = (ROOT / "docs" / "adding-a-workflow.md").read_text()
    blocks = {
        block.split("\n", 1)[0].removeprefix("# "): block.split("\n", 1)[1]
        for block in page.split("```python\n")[1:]
        for block in [block.split("```\n", 1)[0]]
    }
    imports, parts = OWN_REGISTRATION

    assert {path: blocks.get(path) for path in OWN_PART} == OWN_PART
    assert blocks[f"{PACKAGE}/registry.py"] == f"{imports}\nPARTS: list[Part] = [\n{parts}]\n"
    assert blocks[f"{PACKAGE}/settings.py, in class Settings"] == OWN_SETTINGS


def register_own_part(path: Path) -> None:
    """Add the reminders' part to registry.py, the file the template wrote once."""
    imports, parts = OWN_REGISTRATION
    edit(
        path,
        "from example_worker.examples import EXAMPLES\nfrom example_worker.parts import Part\n",
        imports,
    )
    edit(path, "    *EXAMPLES,\n", parts)


def edit_alerts(path: Path) -> None:
    """The service waits longer before paging, and adds a rule of its own."""
    edit(path, "        for: 2m\n", "        for: 5m\n")
    path.write_text(path.read_text() + OWN_RULE)


USER_EDITS: dict[str, Callable[[Path], object]] = {
    **{name: (lambda path, text=text: path.write_text(text)) for name, text in OWN_PART.items()},
    f"{PACKAGE}/registry.py": register_own_part,
    f"{PACKAGE}/settings.py": lambda path: edit(
        path, '    temporal_task_queue: str = "example-worker"\n', OWN_SETTINGS
    ),
    "README.md": lambda path: edit(
        path, "# Example Worker\n", "# Example Worker\n\nOwned by the reminders team: #reminders.\n"
    ),
    "pyproject.toml": lambda path: edit(
        path, '  "pydantic>=2.11",\n]\n', '  "pydantic>=2.11",\n  "pyyaml>=6",\n]\n'
    ),
    "alerts": edit_alerts,  # At the old path in v0.1.0, at the new one in v0.2.0.
}


def make_user_edits(service: Path, alerts: str) -> None:
    """Edit ``service`` as its owners typically do; the alert rules are at ``alerts``."""
    for name, apply in USER_EDITS.items():
        path = service / (alerts if name == "alerts" else name)
        path.parent.mkdir(parents=True, exist_ok=True)
        apply(path)


# --- Comparing trees -------------------------------------------------------------------

TOOL_FOLDERS = {".nox", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
"""Folders the service's tools make."""
TOOL_FILES = (".coverage", ".coverage.*")
"""Files the service's tools make (git ignores them, as it does the folders)."""


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of a service by path, without git, tool folders, uv.lock or `_commit`."""
    files = {}
    for folder, folders, names in os.walk(root):
        folders[:] = [name for name in folders if name not in {".git", *TOOL_FOLDERS}]
        for name in names:
            if any(fnmatch.fnmatch(name, pattern) for pattern in TOOL_FILES):
                continue
            path = Path(folder, name)
            files[str(path.relative_to(root))] = path.read_bytes()
    files.pop("uv.lock", None)  # Made by `uv sync` in the service's nox sessions.
    files[".copier-answers.yml"] = b"".join(
        line
        for line in files[".copier-answers.yml"].splitlines(keepends=True)
        if not line.startswith(b"_commit:")
    )
    return files


def differences(got: dict[str, bytes], wanted: dict[str, bytes]) -> str:
    """A unified diff of every file that ``got`` has otherwise than ``wanted``."""
    return "".join(
        "".join(
            difflib.unified_diff(
                wanted.get(name, b"").decode().splitlines(keepends=True),
                got.get(name, b"").decode().splitlines(keepends=True),
                f"wanted/{name}",
                f"got/{name}",
            )
        )
        for name in sorted(got.keys() | wanted.keys())
        if got.get(name) != wanted.get(name)
    )


def changed(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


def conflicts(files: dict[str, bytes]) -> list[str]:
    """Files with a conflict marker line, or named .rej."""
    marked = {marker.encode() for marker in MARKERS}
    return sorted(
        name
        for name, content in files.items()
        if name.endswith(".rej")
        or any(line.split(b" ")[0] in marked for line in content.splitlines())
    )


def clone(service: Path, destination: Path) -> Path:
    """A copy of ``service`` with everything it has committed; tool output stays behind."""
    shutil.copytree(
        service, destination, ignore=shutil.ignore_patterns(*TOOL_FOLDERS, *TOOL_FILES, "uv.lock")
    )
    return destination


# --- Running the service's checks ------------------------------------------------------


def run_nox(service: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The service's own `nox` after `uv lock`, as its README asks after an update."""
    lock = run(service, tool("uv"), "lock", "--quiet")
    if lock.returncode:
        return lock
    return run(service, tool("nox"), *args, timeout=900)


def assert_lint_passes(service: Path) -> None:
    """The service's `nox -s lint`: its preflight (conflicts, examples, answers), then ruff."""
    result = run_nox(service, "--sessions", "lint")
    assert result.returncode == 0, result.stdout + result.stderr[-6000:]


# --- The update of an edited service ---------------------------------------------------


def edited_at_v1(template: Path, destination: Path, **answers: Any) -> Path:
    """A service rendered at v0.1.0 and committed, then its owners' edits committed."""
    service = render(template, destination, "v0.1.0", **answers)
    git(service, "init", "--quiet")
    commit(service, "Render the template at v0.1.0")
    make_user_edits(service, alerts=OLD_ALERTS)
    commit(service, "Our own workflow, settings, dependency, alert rule and README")
    return service


def expected_service(
    template: Path, root: Path, before: dict[str, bytes], **answers: Any
) -> dict[str, bytes]:
    """v0.2.0 rendered afresh with ``answers`` and the owners' edits made on it.

    The files the service owns are as they were ``before`` the update: the update never
    writes them, whatever v0.2.0 renders there.
    """
    expected = render(template, root, "v0.2.0", **answers)
    make_user_edits(expected, alerts=NEW_ALERTS)
    return {**snapshot(expected), **{name: before[name] for name in OWNED}}


@pytest.fixture(scope="module")
def edited_service(template_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A service rendered at v0.1.0 and committed, then its owners' edits committed."""
    return edited_at_v1(template_repository, tmp_path_factory.mktemp("v1") / "service")


@dataclass(frozen=True)
class Updated:
    root: Path
    files: dict[str, bytes]
    """The service's files right after the update, before any check ran in it."""
    status: str


@pytest.fixture(scope="module")
def updated(edited_service: Path, tmp_path_factory: pytest.TempPathFactory) -> Updated:
    """The edited service, updated to v0.2.0 and not yet committed."""
    service = clone(edited_service, tmp_path_factory.mktemp("v2") / "service")
    update(service)
    status = git(service, "status", "--porcelain", "--untracked-files=all")
    return Updated(service, snapshot(service), status)


def test_the_update_is_a_fresh_render_plus_the_owners_edits(
    updated: Updated, edited_service: Path, template_repository: Path, tmp_path: Path
) -> None:
    """Every file equals v0.2.0 rendered afresh with the owners' edits made on it.

    The service's own README.md and registry.py excepted: they stay as the team had them.
    """
    wanted = expected_service(template_repository, tmp_path / "fresh", snapshot(edited_service))

    assert sorted(updated.files) == sorted(wanted)
    diff = differences(updated.files, wanted)
    assert not diff, diff


def test_the_owners_edits_survive_the_update(updated: Updated) -> None:
    """Own modules, settings, README, dependency and alert rules are all still there."""
    files = {name: content.decode() for name, content in updated.files.items()}

    for name, text in OWN_PART.items():
        assert files[name] == text, name
    assert "REMINDERS,\n" in files[f"{PACKAGE}/registry.py"]
    assert OWN_SETTINGS in files[f"{PACKAGE}/settings.py"]
    assert "\nOwned by the reminders team: #reminders.\n" in files["README.md"]
    assert '  "pyyaml>=6",\n' in files["pyproject.toml"]
    assert OWN_RULE in files[NEW_ALERTS]
    assert 'up{job="example-worker"} == 0\n        for: 5m\n' in files[NEW_ALERTS]


def test_the_files_the_service_owns_stay_as_the_team_had_them(
    updated: Updated, edited_service: Path, template_repository: Path, tmp_path: Path
) -> None:
    """v0.2.0 changes README.md and registry.py: the update keeps the team's, byte for byte."""
    fresh = render(template_repository, tmp_path / "fresh", "v0.2.0")
    # The change is real: a service generated from v0.2.0 gets it...
    assert (fresh / "README.md").read_text().endswith(ON_CALL)
    assert REGISTRY_AFTER in (fresh / PACKAGE / "registry.py").read_text()

    # ...and an updated one does not: its files are the very ones it committed.
    touched = {line[3:] for line in updated.status.splitlines()}
    for name in OWNED:
        assert updated.files[name] == (edited_service / name).read_bytes(), name
        assert name not in touched, updated.status


def test_the_templates_changes_arrive(updated: Updated) -> None:
    """The hardened line, the guide's new section, the new file and question, the new session."""
    files = {name: content.decode() for name, content in updated.files.items()}
    answers = yaml.safe_load(files[".copier-answers.yml"])

    assert HARDENED_AFTER in files["Dockerfile"]
    assert files["docs/guide.md"].endswith(PROBES)
    assert files["CODEOWNERS"].endswith("\n* @example-worker-maintainers\n")
    assert answers["code_owners"] == "@example-worker-maintainers"
    assert files["noxfile.py"].endswith(FMT_SESSION)
    assert "  - rules/*.yml\n" in files["deploy/observability/prometheus.yml"]


def test_the_moved_file_keeps_the_owners_edits_at_its_new_path(updated: Updated) -> None:
    """The migration merges the service's alert rules into rules/alerts.yml; the old path goes."""
    alerts = updated.files[NEW_ALERTS].decode()

    assert OLD_ALERTS not in updated.files
    assert RULES_NOTE in alerts  # The template's change on the way...
    assert OWN_RULE in alerts  # ...and the service's own, both merged.
    assert f" D {OLD_ALERTS}\n" in updated.status
    assert f"?? {NEW_ALERTS}\n" in updated.status


def test_the_update_leaves_no_conflict(updated: Updated) -> None:
    """No conflict marker in any file, no .rej file, nothing unmerged in git's index."""
    assert conflicts(updated.files) == []
    assert not any(
        line.startswith(("UU", "AA", "DU", "UD")) for line in updated.status.splitlines()
    )


def test_the_updated_service_passes_lint_and_typecheck(updated: Updated) -> None:
    """ruff, the conflict check and mypy --strict accept the merged service."""
    result = run_nox(updated.root, "--sessions", "lint", "typecheck")

    assert result.returncode == 0, result.stdout + result.stderr[-6000:]


@pytest.mark.skipif(not FULL_NOX, reason="runs in `nox -s update` (SHADOW_UPDATE_FULL_NOX=1)")
@pytest.mark.timeout(1200)
def test_the_updated_service_passes_all_its_checks(updated: Updated, tmp_path: Path) -> None:
    """The service's full `nox`: lint, typecheck, its tests (the owners' own too), replay."""
    # On a copy: the history recorded here must not reach the other tests' services.
    service = clone(updated.root, tmp_path / "service")
    # The owners record their part's history, as the guide says, then run every check.
    recorded = run_nox(service, "--sessions", "histories", "--", "reminders")
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr[-6000:]
    assert (service / "tests/replay/histories/reminders.json").is_file()
    result = run_nox(service)

    assert result.returncode == 0, result.stdout + result.stderr[-6000:]
    output = result.stdout + result.stderr
    assert "tests/reminders/test_workflow.py ." in output
    assert "tests/reminders/test_cli.py ." in output
    assert "Session replay was successful" in output


def test_a_migration_needs_trust(edited_service: Path, tmp_path: Path) -> None:
    """Without --trust (unsafe), copier refuses to run the migration and changes nothing."""
    service = clone(edited_service, tmp_path / "service")

    with pytest.raises(copier.errors.UnsafeTemplateError, match="migrations"):
        update(service, trust=False)

    assert git(service, "status", "--porcelain") == ""


def test_without_the_migration_an_update_drops_edits_of_a_moved_file(
    edited_service: Path, tmp_path: Path
) -> None:
    """Why the migration exists: copier alone deletes the old path and renders the new one."""
    service = clone(edited_service, tmp_path / "service")

    update(service, ref="without-migration")

    assert not (service / OLD_ALERTS).exists()
    assert OWN_RULE not in (service / NEW_ALERTS).read_text()
    assert OWN_RULE in git(service, "show", f"HEAD:{OLD_ALERTS}")  # Only history keeps it.


# --- Examples come and go by answer, across releases ----------------------------------

ALL_EXAMPLES = [
    "task_processing",
    "long_running",
    "scheduled",
    "batch_processing",
    "error_handling",
    "dynamic_control",
]


def test_an_example_added_by_answer_arrives_without_a_conflict(
    template_repository: Path, tmp_path: Path
) -> None:
    """v0.1.0 without `scheduled`, to v0.2.0 with it: its files as a fresh render has them."""
    without = [name for name in ALL_EXAMPLES if name != "scheduled"]
    service = edited_at_v1(template_repository, tmp_path / "service", examples=without)
    before = snapshot(service)
    assert not any("scheduled" in name for name in before)
    examples = [*without, "scheduled"]

    update(service, examples=examples)

    files = snapshot(service)
    assert conflicts(files) == []
    assert not any(name.endswith(".rej") for name in files)
    expected = expected_service(
        template_repository, tmp_path / "expected", before, examples=examples
    )
    added = sorted(name for name in expected if "scheduled" in name)
    assert {f"{PACKAGE}/scheduled/part.py", "tests/replay/histories/scheduled.json"} <= set(added)
    assert {name: files.get(name) for name in added} == {name: expected[name] for name in added}
    diff = differences(files, expected)
    assert not diff, diff
    for name in [*OWNED, *OWN_PART]:
        assert files[name] == before[name], name
    assert "scheduled" in files[f"{PACKAGE}/examples.py"].decode()
    assert_lint_passes(service)


def test_an_example_removed_by_answer_goes_without_a_conflict(
    edited_service: Path, template_repository: Path, tmp_path: Path
) -> None:
    """v0.1.0 to v0.2.0 with `--data examples=[...]`: exactly the example's files go."""
    service = clone(edited_service, tmp_path / "service")
    before = snapshot(service)
    kept = [name for name in ALL_EXAMPLES if name != "dynamic_control"]

    update(service, examples=kept)

    files = snapshot(service)
    assert conflicts(files) == []
    expected = expected_service(template_repository, tmp_path / "expected", before, examples=kept)
    diff = differences(files, expected)
    assert not diff, diff
    assert not any("dynamic_control" in name for name in files)
    for name in [*OWNED, *OWN_PART]:
        assert files[name] == before[name], name
    assert_lint_passes(service)


def preflight(service: Path) -> subprocess.CompletedProcess[str]:
    return run(service, sys.executable, "tools/preflight.py")


def test_an_example_deleted_by_hand_is_named_then_reconciled(
    edited_service: Path, template_repository: Path, tmp_path: Path
) -> None:
    """preflight names the answers still holding it and the update to run; v0.2.0 merges clean."""
    service = clone(edited_service, tmp_path / "service")
    shutil.rmtree(service / PACKAGE / "batch_processing")
    edit(
        service / PACKAGE / "examples.py",
        "from example_worker.batch_processing.part import PART as BATCH_PROCESSING\n",
        "",
    )
    edit(service / PACKAGE / "examples.py", "    BATCH_PROCESSING,\n", "")
    commit(service, "We have no batches")
    before = snapshot(service)

    named = preflight(service)

    kept = [name for name in ALL_EXAMPLES if name != "batch_processing"]
    assert named.returncode == 1
    assert "src/example_worker/batch_processing/ is gone" in named.stderr
    assert f"--data 'examples={json.dumps(kept)}'" in named.stderr
    update(service, examples=kept)
    files = snapshot(service)
    assert conflicts(files) == []
    assert preflight(service).returncode == 0
    expected = expected_service(template_repository, tmp_path / "expected", before, examples=kept)
    diff = differences(files, expected)
    assert not diff, diff
    assert_lint_passes(service)


# --- Conflicts -------------------------------------------------------------------------

OWNERS_LINE = "--gid worker --no-create-home --comment 'Temporal worker' \\\n"


def conflicting_service(template: Path, root: Path) -> Path:
    """A service whose owners changed the very Dockerfile line that v0.2.0 changes."""
    service = render(template, root / "service", "v0.1.0")
    git(service, "init", "--quiet")
    commit(service, "Render the template at v0.1.0")
    edit(service / "Dockerfile", HARDENED_BEFORE, OWNERS_LINE)
    commit(service, "Describe the worker's account")
    return service


def test_lines_both_changed_are_left_between_markers(
    template_repository: Path, tmp_path: Path
) -> None:
    """The owners' line, then the template's, between markers; the rest of the update lands."""
    service = conflicting_service(template_repository, tmp_path)

    update(service)

    dockerfile = (service / "Dockerfile").read_text()
    ours, separator, theirs = MARKERS
    block = dockerfile[dockerfile.index(ours) : dockerfile.index(theirs)]
    assert block.startswith(f"{ours} before updating\n")
    assert block.index(OWNERS_LINE) < block.index(f"\n{separator}\n") < block.index(HARDENED_AFTER)
    assert conflicts(snapshot(service)) == ["Dockerfile"]
    # git knows the file is unmerged, so `git status` shows it and `git commit -a` refuses.
    assert git(service, "diff", "--name-only", "--diff-filter=U") == "Dockerfile\n"
    assert (service / "docs/guide.md").read_text().endswith(PROBES)


def test_with_conflict_rej_the_owners_change_waits_in_a_rej_file(
    template_repository: Path, tmp_path: Path
) -> None:
    """--conflict=rej keeps the template's line and puts the owners' change in Dockerfile.rej."""
    service = conflicting_service(template_repository, tmp_path)

    update(service, conflict="rej")

    rejected = (service / "Dockerfile.rej").read_text()
    assert f"+    && useradd --system --uid 10001 {OWNERS_LINE}" in rejected
    assert HARDENED_AFTER in (service / "Dockerfile").read_text()
    assert conflicts(snapshot(service)) == ["Dockerfile.rej"]


@pytest.mark.parametrize(
    ("conflict", "leftover"),
    [("inline", "Dockerfile:"), ("rej", "Dockerfile.rej: changes the update could not apply")],
    ids=["inline", "rej"],
)
def test_the_services_lint_fails_until_conflicts_are_resolved(
    template_repository: Path, tmp_path: Path, conflict: str, leftover: str
) -> None:
    """`nox -s lint` names each unresolved file, before installing anything, and then passes."""
    service = conflicting_service(template_repository, tmp_path)
    update(service, conflict=conflict)

    failed = run_nox(service, "--sessions", "lint")

    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "Resolve each conflict" in output
    assert leftover in output
    assert "uv sync" not in failed.stderr
    # Resolve: keep the template's hardened line, drop the owners' comment.
    (service / "Dockerfile.rej").unlink(missing_ok=True)
    render(template_repository, tmp_path / "fresh", "v0.2.0")
    shutil.copy(tmp_path / "fresh" / "Dockerfile", service / "Dockerfile")
    assert run_nox(service, "--sessions", "lint").returncode == 0


# --- Changing an answer ----------------------------------------------------------------


def test_an_answer_changed_by_update_removes_and_restores_only_what_it_governs(
    updated: Updated, template_repository: Path, tmp_path: Path
) -> None:
    """tracing=false takes out exactly what tracing renders; tracing=true puts it back."""
    service = clone(updated.root, tmp_path / "service")
    commit(service, "Update to v0.2.0")
    with_tracing = snapshot(service)
    governed = changed(
        snapshot(render(template_repository, tmp_path / "on", "v0.2.0")),
        snapshot(render(template_repository, tmp_path / "off", "v0.2.0", tracing=False)),
    )
    assert {"pyproject.toml", ".copier-answers.yml"} <= governed

    update(service, tracing=False)

    without_tracing = snapshot(service)
    assert changed(with_tracing, without_tracing) == governed
    assert "tracing]" not in without_tracing["pyproject.toml"].decode()
    expected = expected_service(
        template_repository, tmp_path / "expected", with_tracing, tracing=False
    )
    assert without_tracing == expected
    assert conflicts(without_tracing) == []

    commit(service, "Turn tracing off")
    update(service, tracing=True)

    assert snapshot(service) == with_tracing
