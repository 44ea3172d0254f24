"""One template, two engines: cookiecutter renders what copier renders, and copier updates it.

Every test runs the real ``cookiecutter`` and ``copier`` commands on this checkout (or a
tagged copy of it). ``nox -s engines`` compares every answer set of the render matrix;
here one set is compared through the same script, and the rest is what that cannot show:
refusals, configuration files, and a service born with cookiecutter updated by copier.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import copier
import pytest
import yaml
from helpers.rendering import ROOT, SDK_FROM_CHECKOUT
from helpers.repositories import copy_of_checkout, git

pytestmark = pytest.mark.slow  # Renders the template, with both engines.

BIN = Path(sys.executable).parent


def cookiecutter(
    template: str | Path, output: Path, *arguments: str, **answers: str
) -> subprocess.CompletedProcess[str]:
    """``cookiecutter --no-input`` with a configuration of its own (no ``$HOME`` writes)."""
    output.mkdir(parents=True, exist_ok=True)
    config = output.parent / f"{output.name}-cookiecutterrc.yaml"
    if not config.exists():
        config.write_text(
            yaml.safe_dump(
                {
                    "cookiecutters_dir": str(output.parent / "clones"),
                    "replay_dir": str(output.parent / "replay"),
                }
            )
        )
    return subprocess.run(
        [
            BIN / "cookiecutter",
            "--no-input",
            "--config-file",
            str(config),
            "--output-dir",
            str(output),
            *arguments,
            str(template),
            *(f"{key}={value}" for key, value in answers.items()),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )


def copier_copy(template: str | Path, destination: Path, ref: str, **answers: object) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copier warns about uncommitted changes.
        copier.run_copy(
            str(template), str(destination), data=answers, defaults=True, vcs_ref=ref, quiet=True
        )
    return destination


def tree(service: Path) -> dict[str, bytes]:
    """Every file of ``service`` but git's, by path, with its bytes."""
    return {
        str(path.relative_to(service)): path.read_bytes()
        for path in sorted(service.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(service).parts
    }


def test_cookiecutter_json_is_written_from_copier_yml() -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "template_engines.cookiecutter_json", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    variables = yaml.safe_load((ROOT / "cookiecutter.json").read_text())
    questions = yaml.safe_load((ROOT / "copier.yml").read_text())
    asked = [name for name, spec in questions.items() if not name.startswith("_")]
    asked = [name for name in asked if questions[name].get("when") is not False]
    assert [name for name in variables if not name.startswith("_")] == asked


def test_both_engines_render_the_same_service(tmp_path: Path) -> None:
    compared = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compare_engines.py"), "plain", "controls"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ["PATH"]])},
    )
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "plain: identical" in compared.stdout
    assert "controls: identical" in compared.stdout


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (
            {"package_name": "class"},
            "Validation error for question 'package_name': 'class' is a Python keyword",
        ),
        (
            {"project_slug": "Bad_Slug"},
            "Validation error for question 'project_slug': 'Bad_Slug' is not a valid slug",
        ),
        (
            {"sdk_source": "index", "sdk_index_url": "https://user:secret@example.com/simple"},
            "Validation error for question 'sdk_index_url'",
        ),
    ],
    ids=["keyword-package", "bad-slug", "index-with-credentials"],
)
def test_both_engines_refuse_a_bad_answer_with_the_same_message(
    tmp_path: Path, answers: dict[str, str], message: str
) -> None:
    data = {**SDK_FROM_CHECKOUT, **answers}
    with pytest.raises(ValueError, match="Validation error") as refused:
        copier_copy(ROOT, tmp_path / "by-copier", "HEAD", **data)
    born = cookiecutter(ROOT, tmp_path / "by-cookiecutter", **data)

    assert born.returncode != 0
    assert str(refused.value).startswith(message)
    # cookiecutter prints copier's message whole, and renders nothing.
    assert str(refused.value) in born.stderr
    assert not any((tmp_path / "by-cookiecutter").iterdir())


def test_an_answer_that_is_not_a_choice_is_refused(tmp_path: Path) -> None:
    born = cookiecutter(
        ROOT, tmp_path / "out", **SDK_FROM_CHECKOUT, examples="task_processing,chess"
    )

    assert born.returncode != 0
    assert "Validation error for question 'examples': 'chess' is not a choice" in born.stderr


def test_a_config_file_answers_as_copier_data_does(tmp_path: Path) -> None:
    answers = {
        "project_name": "Order Fulfilment",
        "python_version": "3.12",
        "encryption": False,
        "examples": ["task_processing", "scheduled"],
        "deployment": ["kubernetes"],
        "license": "Proprietary",
    }
    config = tmp_path / "out-cookiecutterrc.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "cookiecutters_dir": str(tmp_path / "clones"),
                "replay_dir": str(tmp_path / "replay"),
                # cookiecutter takes a multiple choice as comma-separated text, in
                # any order; both engines record it in the order of the choices.
                "default_context": {
                    **SDK_FROM_CHECKOUT,
                    **answers,
                    "examples": "scheduled,task_processing",
                    "deployment": "kubernetes",
                },
            }
        )
    )
    born = cookiecutter(ROOT, tmp_path / "out")
    assert born.returncode == 0, born.stderr
    by_copier = copier_copy(ROOT, tmp_path / "by-copier", "HEAD", **SDK_FROM_CHECKOUT, **answers)

    by_cookiecutter = tmp_path / "out" / "order-fulfilment"
    recorded = yaml.safe_load((by_cookiecutter / ".copier-answers.yml").read_text())
    assert {key: recorded[key] for key in answers} == answers
    assert "copyright_holder" not in recorded  # Asked only for a licensed service.
    born_files, copied_files = tree(by_cookiecutter), tree(by_copier)
    assert born_files.keys() == copied_files.keys()
    differing = {path for path in born_files if born_files[path] != copied_files[path]}
    assert differing <= {".copier-answers.yml"}
    # With uncommitted changes in this checkout, copier records a commit of its own.
    copied = yaml.safe_load(copied_files[".copier-answers.yml"])
    assert {key: value for key, value in recorded.items() if key != "_commit"} == {
        key: value for key, value in copied.items() if key != "_commit"
    }


def test_a_service_born_with_cookiecutter_is_updated_by_copier(tmp_path: Path) -> None:
    """From a tagged release to the next, with the team's edits, as a copier-born one is."""
    kit = copy_of_checkout(tmp_path / "kit")
    git(kit, "tag", "v0.1.0")
    dockerfile = kit / "template" / "Dockerfile.jinja"
    dockerfile.write_text(dockerfile.read_text() + "# Fixed in v0.2.0.\n")
    guide = kit / "template" / "docs" / "guide.md.jinja"
    guide.write_text(guide.read_text() + "\n## Fixed in v0.2.0\n\nA new section.\n")
    git(kit, "commit", "--quiet", "--all", "--message=A fix release")
    git(kit, "tag", "v0.2.0")
    url = "git+" + kit.as_uri()  # cookiecutter knows a git URL by "git" in it.
    answers = {**SDK_FROM_CHECKOUT, "examples": "task_processing", "deployment": "kubernetes"}

    born = cookiecutter(url, tmp_path / "born", "--checkout", "v0.1.0", **answers)
    assert born.returncode == 0, born.stderr
    by_cookiecutter = tmp_path / "born" / "example-worker"
    by_copier = copier_copy(
        url,
        tmp_path / "copied",
        "v0.1.0",
        **{**answers, "examples": ["task_processing"], "deployment": ["kubernetes"]},
    )
    assert tree(by_cookiecutter) == tree(by_copier)

    for service in (by_cookiecutter, by_copier):
        git(service, "init", "--quiet")
        git(service, "add", "--all")
        git(service, "commit", "--quiet", "--message=Generate")
        # The team's edits: its own module, its README, a line of the template's guide.
        (service / "src" / "example_worker" / "pricing.py").write_text('"""Prices."""\n')
        readme = service / "README.md"
        readme.write_text(readme.read_text() + "\nOwned by the payments team.\n")
        guide = service / "docs" / "guide.md"
        guide.write_text(guide.read_text().replace("# ", "# Our ", 1))
        git(service, "add", "--all")
        git(service, "commit", "--quiet", "--message=Our edits")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copier.run_update(
                str(service), vcs_ref="v0.2.0", defaults=True, overwrite=True, quiet=True
            )

    updated = tree(by_cookiecutter)
    assert updated == tree(by_copier)
    assert yaml.safe_load(updated[".copier-answers.yml"])["_commit"] == "v0.2.0"
    assert updated["Dockerfile"].endswith(b"# Fixed in v0.2.0.\n")
    guide_text = updated["docs/guide.md"].decode()
    assert guide_text.startswith("# Our ")
    assert "## Fixed in v0.2.0" in guide_text
    assert b"Owned by the payments team." in updated["README.md"]
    assert "src/example_worker/pricing.py" in updated
    assert not [path for path in updated if path.endswith(".rej")]
