"""Rendering the copier template: answers, validators, defaults and strictness.

These tests render without installing anything; `nox -s template` installs rendered
services and runs their own checks.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import copier
import pytest
import yaml
from helpers.rendering import ROOT, SDK_FROM_CHECKOUT, git, render, template_repository

from shadow_sdk import ShadowSettings

pytestmark = pytest.mark.slow


def files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def test_defaults_render_a_complete_service(tmp_path: Path) -> None:
    """With every default, the service has its package, tests, checks and answers file."""
    service = render(tmp_path / "service")

    assert files(service) >= {
        ".copier-answers.yml",
        ".env.example",
        ".gitignore",
        "README.md",
        "docs/guide.md",
        "noxfile.py",
        "pyproject.toml",
        ".python-version",
        ".pre-commit-config.yaml",
        "renovate.json",
        "tools/preflight.py",
        "src/example_worker/__init__.py",
        "src/example_worker/__main__.py",
        "src/example_worker/cli.py",
        "src/example_worker/examples.py",
        "src/example_worker/parts.py",
        "src/example_worker/registry.py",
        "src/example_worker/settings.py",
        "src/example_worker/worker.py",
        "src/example_worker/task_processing/activities.py",
        "src/example_worker/task_processing/models.py",
        "src/example_worker/task_processing/workflow.py",
        "tests/task_processing/test_workflow.py",
        "tests/task_processing/test_activities.py",
        "src/example_worker/error_handling/activities.py",
        "src/example_worker/error_handling/models.py",
        "src/example_worker/error_handling/services.py",
        "src/example_worker/error_handling/workflow.py",
        "tests/error_handling/test_workflow.py",
        "tests/test_cli.py",
        "tests/replay/test_replay.py",
        "tests/replay/record.py",
        "Dockerfile",
        "LICENSE",
        ".github/workflows/ci.yml",
    }
    for example in EXAMPLES:
        assert f"src/example_worker/{example}/workflow.py" in files(service)
        assert f"src/example_worker/{example}/part.py" in files(service)
        assert f"tests/replay/histories/{example}.json" in files(service)
        assert f"tests/replay/scenarios/{example}.py" in files(service)
    assert not any(name.endswith(".jinja") for name in files(service))


EXAMPLES = [
    "task_processing",
    "long_running",
    "scheduled",
    "batch_processing",
    "error_handling",
    "dynamic_control",
]


@pytest.mark.parametrize("example", EXAMPLES)
def test_an_example_alone_brings_only_its_own_files(tmp_path: Path, example: str) -> None:
    """Choosing one example renders its package, tests and history, and nothing of the others."""
    service = render(tmp_path / "service", examples=[example])

    rendered = files(service)
    for other in EXAMPLES:
        chosen = other == example
        assert (f"src/example_worker/{other}/workflow.py" in rendered) is chosen
        assert (f"tests/replay/histories/{other}.json" in rendered) is chosen
        assert (f"tests/replay/scenarios/{other}.py" in rendered) is chosen
        assert any(name.startswith(f"tests/{other}/") for name in rendered) is chosen
    examples = (service / "src/example_worker/examples.py").read_text()
    assert f"from example_worker.{example}.part import PART as {example.upper()}\n" in examples
    assert examples.count(".part import PART") == 1
    assert f'EXAMPLES = [\n    "{example}",\n]' in (service / "tools/preflight.py").read_text()


def test_switched_off_options_leave_no_files_behind(tmp_path: Path) -> None:
    """Metrics, tracing, deployment files, CI and the license each go with their answer."""
    service = render(
        tmp_path / "service",
        metrics=False,
        tracing=False,
        deployment=[],
        ci="none",
        license="Proprietary",
    )

    rendered = files(service)
    assert not any(name.startswith(("deploy/", ".github/")) for name in rendered)
    assert {"compose.yaml", "LICENSE", "renovate.json"}.isdisjoint(rendered)
    assert "Dockerfile" in rendered
    pyproject = (service / "pyproject.toml").read_text()
    assert "tracing]" not in pyproject
    assert "Private :: Do Not Upload" in pyproject


def test_answers_are_recorded_for_copier_update(tmp_path: Path) -> None:
    """.copier-answers.yml records every answer and where the template came from."""
    service = render(tmp_path / "service", project_name="Order Fulfilment")

    answers = yaml.safe_load((service / ".copier-answers.yml").read_text())

    assert answers["_src_path"] == str(ROOT)
    assert answers["project_name"] == "Order Fulfilment"
    assert answers["project_slug"] == "order-fulfilment"
    assert answers["package_name"] == "order_fulfilment"
    assert answers["task_queue"] == "order-fulfilment"
    text = (service / ".copier-answers.yml").read_text()
    assert text.endswith("\n")
    assert not text.endswith("\n\n")


def test_answers_reach_every_file_that_uses_them(tmp_path: Path) -> None:
    """Names, namespace, task queue, Python version and SDK source land where used."""
    service = render(
        tmp_path / "service",
        project_name="Payments Ledger",
        package_name="ledger",
        temporal_namespace="payments",
        task_queue="ledger-tasks",
        python_version="3.12",
        **SDK_FROM_CHECKOUT,
    )
    pyproject = (service / "pyproject.toml").read_text()
    settings = (service / "src/ledger/settings.py").read_text()
    env_example = (service / ".env.example").read_text()

    assert 'name = "payments-ledger"' in pyproject
    assert 'payments-ledger = "ledger.cli:main"' in pyproject
    assert 'requires-python = ">=3.12"' in pyproject
    assert 'target-version = "py312"' in pyproject
    assert f'shadow-sdk = {{ path = "{ROOT}", editable = true }}' in pyproject
    assert (service / ".python-version").read_text() == "3.12\n"
    assert 'temporal_namespace: str = "payments"' in settings
    assert 'temporal_task_queue: str = "ledger-tasks"' in settings
    assert "TEMPORAL_NAMESPACE=payments\nTEMPORAL_TASK_QUEUE=ledger-tasks\n" in env_example


def sdk_source(service: Path) -> dict[str, object]:
    """Where the service's pyproject.toml tells uv to take shadow-sdk from."""
    pyproject = tomllib.loads((service / "pyproject.toml").read_text())
    source: dict[str, object] = pyproject["tool"]["uv"]["sources"]["shadow-sdk"]
    return source


def test_the_git_route_clones_the_repository_the_template_came_from(tmp_path: Path) -> None:
    """By default shadow-sdk is built from the kit's repository, at the commit rendered."""
    service = render(tmp_path / "service")

    answers = yaml.safe_load((service / ".copier-answers.yml").read_text())
    source = sdk_source(service)
    assert answers["sdk_source"] == "git"
    assert source == {"git": ROOT.as_uri(), "rev": source["rev"]}
    assert re.fullmatch(r"[0-9a-f]{40}", str(source["rev"]))
    assert "[[tool.uv.index]]" not in (service / "pyproject.toml").read_text()


def test_the_index_route_takes_shadow_sdk_from_that_index_alone(tmp_path: Path) -> None:
    """The index is explicit: only shadow-sdk comes from it, and from nowhere else."""
    url = "https://packages.example.com/simple"
    service = render(tmp_path / "service", sdk_source="index", sdk_index_url=url)

    pyproject = tomllib.loads((service / "pyproject.toml").read_text())
    assert pyproject["tool"]["uv"]["sources"] == {"shadow-sdk": {"index": "shadow-sdk"}}
    assert pyproject["tool"]["uv"]["index"] == [
        {"name": "shadow-sdk", "url": url, "explicit": True}
    ]
    ci = yaml.safe_load((service / ".github/workflows/ci.yml").read_text())
    step = ci["jobs"]["checks"]["steps"][-1]
    assert set(step["env"]) == {"UV_INDEX_SHADOW_SDK_USERNAME", "UV_INDEX_SHADOW_SDK_PASSWORD"}


def test_public_pypi_needs_no_credentials_in_ci(tmp_path: Path) -> None:
    """PyPI is the index's default; CI then passes no index credentials."""
    service = render(tmp_path / "service", sdk_source="index")

    assert sdk_source(service) == {"index": "shadow-sdk"}
    assert 'url = "https://pypi.org/simple"' in (service / "pyproject.toml").read_text()
    assert "UV_INDEX_SHADOW_SDK" not in (service / ".github/workflows/ci.yml").read_text()


def test_the_checkout_route_says_it_is_for_kit_development(tmp_path: Path) -> None:
    """A local checkout works on this machine alone, and the service says so."""
    service = render(tmp_path / "service", **SDK_FROM_CHECKOUT)

    assert sdk_source(service) == {"path": str(ROOT), "editable": True}
    assert "For kit development only" in (service / "docs/guide.md").read_text()
    assert "which\n# a build cannot reach" in (service / "Dockerfile").read_text()


def test_rendered_python_is_valid(tmp_path: Path) -> None:
    """Every generated module compiles (ruff, mypy and pytest run in `nox -s template`)."""
    service = render(tmp_path / "service", package_name="ledger")

    for module in service.rglob("*.py"):
        compile(module.read_text(), str(module), "exec")


ROUTE_OF = {
    "sdk_git_url": {"sdk_source": "git"},
    "sdk_index_url": {"sdk_source": "index"},
    "sdk_checkout": {"sdk_source": "checkout"},
}
"""The answer that asks each route's question."""


@pytest.mark.parametrize(
    ("question", "answer", "message"),
    [
        ("project_name", "  ", "The service needs a name"),
        ("project_slug", "Bad_Slug", "'Bad_Slug' is not a valid slug"),
        ("package_name", "2fast", "'2fast' is not a valid package name"),
        ("package_name", "tests", "'tests' would shadow a module the service imports"),
        ("author_email", "nope", "'nope' is not an email address"),
        ("temporal_namespace", "my namespace", "'my namespace' is not a valid namespace"),
        ("task_queue", "has space", "'has space' is not a valid task queue name"),
        ("sdk_git_url", "../kit", "'../kit' is not a git URL uv can clone"),
        ("sdk_index_url", "ftp://index", "'ftp://index' is not a package index URL"),
        ("sdk_index_url", "https://me:pw@index/simple", "without credentials"),
        ("sdk_checkout", "kit", "'kit' is not an absolute path"),
        ("package_name", "class", "'class' is a Python keyword"),
        ("package_name", "import", "'import' is a Python keyword"),
        ("package_name", "a" * 41, "is 41 characters long; keep it to 40"),
        ("project_slug", "a" + "-b" * 20, "is 41 characters long; keep it to 40"),
        ("project_name", 'Say "hi"', "contains a character that names cannot hold here"),
        ("project_name", "Set {{ evil }}", "contains a character that names cannot hold here"),
        ("project_name", "../../etc", "contains a character that names cannot hold here"),
        ("description", 'Breaks "TOML"', "contains a character the description cannot hold"),
        ("description", "Line\nbreak", "contains a character the description cannot hold"),
        ("author_name", "Ops {team}", "contains a character a name cannot hold here"),
        ("task_queue", "../queue", "'../queue' is not a valid task queue name"),
        ("temporal_namespace", "ns'quote", "is not a valid namespace"),
        ("examples", [], "Choose at least one example"),
    ],
)
def test_bad_answers_are_refused_with_the_value(
    tmp_path: Path, question: str, answer: object, message: str
) -> None:
    """A validator stops the render and echoes the bad value."""
    route = ROUTE_OF.get(question, {})
    with pytest.raises(ValueError, match=f"Validation error for question '{question}'") as info:
        render(tmp_path / "service", **route, **{question: answer})

    assert message in str(info.value)
    assert not (tmp_path / "service" / "pyproject.toml").exists()


def test_python_version_is_a_choice(tmp_path: Path) -> None:
    """Only the supported Python versions are accepted."""
    with pytest.raises(ValueError, match="python_version"):
        render(tmp_path / "service", python_version="3.9")


@pytest.fixture
def template_copy(tmp_path: Path) -> Path:
    """This template as a git repository of its own, to tag or break without harm."""
    return template_repository(tmp_path / "template-repo")


@pytest.mark.parametrize(
    ("tag", "requirement"),
    [
        ("v1.2.3", "shadow-sdk[redis,tracing]>=1.2.3,<2"),
        ("v0.4.1", "shadow-sdk[redis,tracing]>=0.4.1,<0.5"),
    ],
    ids=["release", "pre-1.0 release"],
)
def test_a_release_pins_its_own_sdk(
    template_copy: Path, tmp_path: Path, tag: str, requirement: str
) -> None:
    """A tagged template accepts a compatible SDK range and clones the SDK at its tag."""
    git(template_copy, "tag", tag)

    service = render(tmp_path / "service", template=template_copy)

    assert f'  "{requirement}",\n' in (service / "pyproject.toml").read_text()
    assert sdk_source(service) == {"git": template_copy.as_uri(), "tag": tag}


def test_an_untagged_template_pins_its_commit_not_a_range(
    template_copy: Path, tmp_path: Path
) -> None:
    """Rendered from a commit that is no release, the service clones exactly that commit."""
    commit = git(template_copy, "rev-parse", "HEAD").strip()

    service = render(tmp_path / "service", template=template_copy)

    assert '  "shadow-sdk[redis,tracing]",\n' in (service / "pyproject.toml").read_text()
    assert sdk_source(service) == {"git": template_copy.as_uri(), "rev": commit}


def commit_all(repository: Path, message: str) -> None:
    git(repository, "init", "--quiet")
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", f"--message={message}")


def release(template: Path, tag: str) -> None:
    """Commit a change to ``template`` and tag it as release ``tag``."""
    (template / "template" / "CHANGES.md").write_text(f"{tag}\n")
    git(template, "add", "--all")
    git(template, "commit", "--quiet", f"--message={tag}")
    git(template, "tag", tag)


def update(service: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_update(str(service), defaults=True, overwrite=True, quiet=True)


def test_an_update_moves_the_sdk_to_the_new_release(template_copy: Path, tmp_path: Path) -> None:
    """Range and tag are not recorded as answers, so `copier update` computes them again."""
    git(template_copy, "tag", "v0.1.0")
    service = render(tmp_path / "service", template=template_copy)
    commit_all(service, "v0.1.0")
    release(template_copy, "v0.2.0")

    update(service)

    pyproject = (service / "pyproject.toml").read_text()
    assert '  "shadow-sdk[redis,tracing]>=0.2.0,<0.3",\n' in pyproject
    assert ">=0.1.0" not in pyproject
    assert "v0.1.0" not in pyproject
    assert sdk_source(service) == {"git": template_copy.as_uri(), "tag": "v0.2.0"}
    assert (service / "CHANGES.md").read_text() == "v0.2.0\n"


def test_a_chosen_index_is_kept_across_updates(template_copy: Path, tmp_path: Path) -> None:
    """The index a service chose is recorded; its SDK range still follows the release."""
    url = "https://packages.example.com/simple"
    git(template_copy, "tag", "v0.1.0")
    service = render(
        tmp_path / "service", template=template_copy, sdk_source="index", sdk_index_url=url
    )
    commit_all(service, "v0.1.0")
    release(template_copy, "v0.2.0")

    update(service)

    answers = yaml.safe_load((service / ".copier-answers.yml").read_text())
    pyproject = (service / "pyproject.toml").read_text()
    assert (answers["sdk_source"], answers["sdk_index_url"]) == ("index", url)
    assert '  "shadow-sdk[redis,tracing]>=0.2.0,<0.3",\n' in pyproject
    assert sdk_source(service) == {"index": "shadow-sdk"}


@pytest.mark.parametrize("path", ["template-repo", "./template-repo", "~/template-repo"])
def test_a_relative_template_path_is_refused_with_the_fix(
    template_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """`copier update` could never find a relative path again: say how to generate instead."""
    monkeypatch.chdir(template_copy.parent)
    monkeypatch.setenv("HOME", str(template_copy.parent))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(
            ValueError, match="Validation error for question 'project_name'"
        ) as info:
            copier.run_copy(path, str(tmp_path / "service"), defaults=True, quiet=True)

    assert f"The template's path '{path}' is relative" in str(info.value)
    assert f'copier copy "$(realpath {path})"' in str(info.value)
    assert not (tmp_path / "service").exists()


def test_a_git_route_only_this_machine_reaches_is_named_after_generation(
    template_copy: Path, tmp_path: Path
) -> None:
    """Generated from a local path, the service clones shadow-sdk from file://: CI cannot."""
    copier_cli = Path(sys.executable).parent / "copier"
    command = [str(copier_cli), "copy", "--defaults", "--trust", str(template_copy)]
    result = subprocess.run(
        [*command, str(tmp_path / "service")], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert f"shadow-sdk comes from {template_copy.as_uri()}, which only this machine" in (
        result.stderr
    )
    assert "--vcs-ref=:current: --data sdk_git_url=https://" in result.stderr


def test_an_undefined_variable_is_an_error(template_copy: Path, tmp_path: Path) -> None:
    """StrictUndefined: a typo in the template fails the render instead of writing ''."""
    (template_copy / "template" / "broken.txt.jinja").write_text("{{ projct_name }}\n")
    git(template_copy, "add", "--all")
    git(template_copy, "commit", "--quiet", "--message=typo")

    with pytest.raises(Exception, match="'projct_name' is undefined"):
        render(tmp_path / "service", template=template_copy)


@pytest.mark.parametrize(
    ("encryption", "authorization"),
    [(True, True), (True, False), (False, True), (False, False)],
    ids=["both", "encryption only", "authorization only", "neither"],
)
def test_security_features_follow_their_answers(
    tmp_path: Path, encryption: bool, authorization: bool
) -> None:
    """Each feature adds its settings, test fixtures and security tests, and nothing else."""
    service = render(tmp_path / "service", encryption=encryption, authorization=authorization)
    settings = (service / "src/example_worker/settings.py").read_text()
    conftest = (service / "tests/conftest.py").read_text()

    assert ("codec_required: bool = True" in settings) is encryption
    assert ("auth_required: bool = True" in settings) is authorization
    assert ("codec_keys=credentials.codec_keys" in conftest) is encryption
    assert ("auth_hs256_secret=credentials.hs256_secret" in conftest) is authorization
    assert (service / "tests/test_security.py").exists() is (encryption or authorization)
    assert ("shadow keygen" in (service / "docs/guide.md").read_text()) is encryption


def test_env_example_documents_every_setting(tmp_path: Path) -> None:
    """Each variable ShadowSettings reads appears in .env.example, set or commented out."""
    service = render(tmp_path / "service")

    text = (service / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    # TEMPORAL_GRPC_META is a prefix: one variable per header.
    documented |= {name.rpartition("_X_")[0] for name in documented if "_META_" in name}
    assert {name.upper() for name in ShadowSettings.model_fields} <= documented


DATABASE_FILES = {
    "src/example_worker/database.py",
    "src/example_worker/ledger/part.py",
    "src/example_worker/ledger/activities.py",
    "src/example_worker/ledger/tables.py",
    "src/example_worker/migrations/env.py",
    "src/example_worker/migrations/script.py.mako",
    "src/example_worker/migrations/versions/0001_ledger_entries.py",
    "tests/ledger/conftest.py",
    "tests/ledger/test_activities.py",
    "tests/ledger/test_workflow.py",
    "tests/ledger/test_cli.py",
    "tests/replay/histories/ledger.json",
    "tests/replay/scenarios/ledger.py",
}


@pytest.mark.parametrize("examples", [["scheduled"], EXAMPLES], ids=["one-example", "all"])
def test_the_database_answer_brings_the_ledger_and_nothing_without_it(
    tmp_path: Path, examples: list[str]
) -> None:
    """Off by default; on, the ledger, its migrations, settings, dependencies, CI and docs."""
    off = render(tmp_path / "off", examples=examples)
    on = render(tmp_path / "on", examples=examples, database=True)

    assert files(on) >= DATABASE_FILES
    assert files(off).isdisjoint(DATABASE_FILES)
    assert not any(name.startswith("tests/ledger/") for name in files(off))
    for service, database in ((off, False), (on, True)):
        examples_py = (service / "src/example_worker/examples.py").read_text()
        settings = (service / "src/example_worker/settings.py").read_text()
        pyproject = tomllib.loads((service / "pyproject.toml").read_text())
        requirements = " ".join(pyproject["project"]["dependencies"])
        ci = (service / ".github/workflows/ci.yml").read_text()
        env = (service / ".env.example").read_text()
        assert ("from example_worker.ledger.part import PART as LEDGER" in examples_py) is database
        assert ("database_url: DatabaseUrl | None = None" in settings) is database
        assert all(
            (name in requirements) is database for name in ("sqlalchemy", "psycopg", "alembic")
        )
        assert ("alembic" in pyproject["tool"]) is database
        assert ("redis-server postgresql" in ci) is database
        assert ("\n# DATABASE_URL=postgresql://" in env) is database
        assert ("## Database" in (service / "docs/guide.md").read_text()) is database
    answers = yaml.safe_load((off / ".copier-answers.yml").read_text())
    assert answers["database"] is False
