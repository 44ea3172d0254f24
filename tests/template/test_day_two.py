"""A generated service's day two: preflight, pre-commit, kept histories, Renovate.

Each test works on a rendered service as its team would: from its own environment,
installed with uv from the lock.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.rendering import SDK_FROM_CHECKOUT, git, render
from helpers.services import run, tool

pytestmark = pytest.mark.slow

MARKERS = "<<<<<<< before updating\nold\n=======\nnew\n>>>>>>> after updating\n"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A service with one example, locked, installed and committed, as on its first day."""
    service = render(
        tmp_path_factory.mktemp("day-two") / "service",
        examples=["task_processing"],
        **SDK_FROM_CHECKOUT,
    )
    for command in ([tool("uv"), "lock"], [tool("uv"), "sync", "--locked"]):
        result = run(service, *command)
        assert result.returncode == 0, result.stderr
    git(service, "init", "--quiet")
    git(service, "add", "--all")
    git(service, "commit", "--quiet", "--message=Generate")
    return service


@pytest.fixture
def copy(service: Path, tmp_path: Path) -> Path:
    """A copy of the service this test may break; its environment is shared, read-only."""
    destination = tmp_path / "service"
    shutil.copytree(service, destination, symlinks=True)
    return destination


def test_preflight_names_markers_where_nothing_else_could_start(copy: Path) -> None:
    """Markers in pyproject.toml: preflight names the line, and lint stops before uv."""
    (copy / "pyproject.toml").write_text((copy / "pyproject.toml").read_text() + MARKERS)
    line = (copy / "pyproject.toml").read_text().splitlines().index("<<<<<<< before updating")

    alone = run(copy, sys.executable, "tools/preflight.py")
    lint = run(copy, tool("nox"), "--sessions", "lint")

    assert alone.returncode == 1
    assert f"pyproject.toml:{line + 1}: conflict markers" in alone.stderr
    assert lint.returncode == 1
    assert f"pyproject.toml:{line + 1}: conflict markers" in lint.stdout + lint.stderr
    assert "uv sync" not in lint.stdout + lint.stderr


def test_preflight_summary_lists_what_changed(copy: Path) -> None:
    """After an update, --summary says what was added, changed and deleted."""
    (copy / "CODEOWNERS").write_text("* @team\n")
    (copy / "Dockerfile").write_text((copy / "Dockerfile").read_text() + "# changed\n")
    (copy / ".dockerignore").unlink()

    result = run(copy, sys.executable, "tools/preflight.py", "--summary")

    assert result.returncode == 0, result.stderr
    assert "   added: 1  CODEOWNERS\n" in result.stdout
    assert " changed: 1  Dockerfile\n" in result.stdout
    assert " deleted: 1  .dockerignore\n" in result.stdout
    assert "No conflict is left" in result.stdout


def pre_commit(service: Path) -> subprocess.CompletedProcess[str]:
    """`pre-commit run --all-files` from the service's environment, offline for uv."""
    return run(
        service, str(service / ".venv" / "bin" / "pre-commit"), "run", "--all-files", UV_OFFLINE="1"
    )


def test_pre_commit_passes_offline_on_a_fresh_render(copy: Path) -> None:
    """Every hook runs from the service's own environment: no download, nothing to fix."""
    result = pre_commit(copy)

    assert result.returncode == 0, result.stdout + result.stderr
    for hook in ("no conflict left by an update", "uv.lock matches", "ruff check", "ruff format"):
        assert hook in result.stdout


def test_pre_commit_refuses_a_conflict_and_a_stale_lock(copy: Path) -> None:
    """The same hooks fail on markers in a Markdown file and on a dependency not locked."""
    (copy / "docs" / "guide.md").write_text((copy / "docs" / "guide.md").read_text() + MARKERS)
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('  "pydantic>=2.11",\n', '  "pydantic>=2.11",\n  "httpx",\n')
    )
    git(copy, "add", "--all")

    result = pre_commit(copy)

    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert re.search(r"no conflict left by an update, no example deleted by hand\.+Failed", output)
    assert "docs/guide.md:" in output
    assert re.search(r"uv\.lock matches pyproject\.toml\.+Failed", output)


def record(service: Path, *args: str) -> subprocess.CompletedProcess[str]:
    python = service / ".venv" / "bin" / "python"
    return run(service, str(python), "tests/replay/record.py", *args)


def test_recording_keeps_every_history(copy: Path) -> None:
    """An existing history is never overwritten unless asked; a new one goes beside it."""
    histories = copy / "tests" / "replay" / "histories"
    shipped = (histories / "task_processing.json").read_text()

    nothing = record(copy)
    refused = record(copy, "task_processing")
    beside = record(copy, "task_processing", "--as", "task_processing-v2")
    replaced = record(copy, "task_processing", "--replace")

    assert nothing.returncode == 0
    assert "every scenario has its history" in nothing.stdout
    assert refused.returncode == 1
    assert "histories/task_processing.json exists" in refused.stderr
    assert "--as task_processing-v2" in refused.stderr
    assert beside.returncode == 0, beside.stderr
    recorded = json.loads((histories / "task_processing-v2.json").read_text())
    assert recorded["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert replaced.returncode == 0, replaced.stderr
    assert (histories / "task_processing.json").read_text() != shipped


def test_an_unknown_scenario_is_named(copy: Path) -> None:
    """A scenario that does not exist is refused with the ones that do."""
    result = record(copy, "reminders")

    assert result.returncode == 1
    assert "no scenario reminders" in result.stderr
    assert "there are: task_processing" in result.stderr


@pytest.mark.parametrize("name", ["../../src/evil", "sub/dir", ".hidden", ""])
def test_a_history_name_that_is_not_a_file_name_is_refused(copy: Path, name: str) -> None:
    """--as writes histories/<name>.json: it must not reach outside that folder."""
    before = sorted(path.relative_to(copy) for path in copy.rglob("*.json"))

    result = record(copy, "task_processing", "--as", name)

    assert result.returncode == 1
    assert f"--as {name!r}: name a history with letters, digits" in result.stderr
    assert sorted(path.relative_to(copy) for path in copy.rglob("*.json")) == before


def replay(service: Path) -> subprocess.CompletedProcess[str]:
    """``nox -s replay``'s check, on this copy's code rather than the installed service's."""
    python = service / ".venv" / "bin" / "python"
    pytest_args = ("-m", "pytest", "tests/replay", "-p", "no:cacheprovider", "-q")
    return run(service, str(python), *pytest_args, PYTHONPATH=str(service / "src"))


@pytest.mark.parametrize(
    ("change", "replays"),
    [
        ("        await workflow.sleep(1)\n", False),
        ('        if workflow.patched("wait-first"):\n            await workflow.sleep(1)\n', True),
    ],
    ids=["incompatible", "patched"],
)
def test_replay_check_guards_a_workflow_change(copy: Path, change: str, replays: bool) -> None:
    """A timer before the first activity breaks recorded runs; behind ``patched`` it does not."""
    module = next((copy / "src").glob("*/task_processing/workflow.py"))
    start = '        """Process ``task`` and return what was found and sent."""\n'
    code = module.read_text()
    assert start in code
    module.write_text(code.replace(start, start + change))

    result = replay(copy)

    output = result.stdout + result.stderr
    if replays:
        assert result.returncode == 0, output
    else:
        assert result.returncode == 1, output
        assert "NondeterminismError" in output
        assert "test_history_replays_without_nondeterminism[task_processing]" in output


def test_renovate_proposes_template_releases(service: Path) -> None:
    """renovate.json follows Renovate's schema and runs its copier manager."""
    config = json.loads((service / "renovate.json").read_text())
    result = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.renovate",
            str(service / "renovate.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "copier" in config["enabledManagers"]
    # Renovate passes --trust to copier, which a release's _migrations need, only so.
    assert config["ignoreScripts"] is False
    assert {"matchPackageNames": ["shadow-sdk"], "enabled": False}.items() <= (
        next(rule for rule in config["packageRules"] if "matchPackageNames" in rule).items()
    )
