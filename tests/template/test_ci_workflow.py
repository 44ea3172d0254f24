"""The generated service's GitHub Actions workflow: valid, and running the service's checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rendering import render


def tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.fail(f"{name} is not installed next to {sys.executable} (the test group has it)")
    return str(path)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    service = render(tmp_path_factory.mktemp("ci") / "service")
    subprocess.run(["git", "init", "--quiet", str(service)], check=True)
    return service / ".github" / "workflows" / "ci.yml"


def test_the_workflow_passes_actionlint(workflow: Path) -> None:
    result = subprocess.run(
        [tool("actionlint"), str(workflow)],
        cwd=workflow.parents[2],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_matches_the_github_workflow_schema(workflow: Path) -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_runs_every_session_the_service_runs_by_default(workflow: Path) -> None:
    """CI runs lint, typecheck, tests and replay: what `nox` runs locally."""
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    sessions = jobs["checks"]["strategy"]["matrix"]["session"]
    noxfile = (workflow.parents[2] / "noxfile.py").read_text()

    assert sessions == ["lint", "typecheck", "tests", "replay"]
    assert 'nox.options.sessions = ["lint", "typecheck", "tests", "replay"]' in noxfile
