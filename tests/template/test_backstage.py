"""The Backstage Software Template: valid for a catalog, and rendering what copier renders.

``backstage/template.yaml`` is checked against Backstage's own Template schema (kept in
``tests/data/backstage``), and its render step is run the way Backstage's
``fetch:cookiecutter`` runs it: the template folder alone under a folder named
``{{cookiecutter and 'contents'}}``, a ``cookiecutter.json`` made of the step's values,
``cookiecutter --no-input`` with the kit's bridge importable as in the runner image that
``backstage/Dockerfile`` builds, and no hooks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import copier
import yaml
from helpers.rendering import ROOT
from helpers.repositories import copy_of_checkout, git
from jsonschema import Draft7Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "backstage"
TEMPLATE = yaml.safe_load((ROOT / "backstage" / "template.yaml").read_text())
EXPRESSION = re.compile(r"\$\{\{ parameters\.(\w+)( \| join\(','\))? \}\}")
RELEASE = "v0.7.0"
KIT_URL = "https://github.com/acme/shadow-temporal-kit"


def parameters(**chosen: Any) -> dict[str, Any]:
    """The form as a user leaves it: each field's default, then what ``chosen`` sets."""
    values: dict[str, Any] = {}
    for page in TEMPLATE["spec"]["parameters"]:
        for name, field in page["properties"].items():
            if "default" in field:
                values[name] = field["default"]
    return {**values, "kit_url": KIT_URL, "kit_release": RELEASE, **chosen}


def evaluate(text: str, form: dict[str, Any]) -> Any:
    """The step input as Backstage hands it over, for the expressions the template uses.

    An expression alone yields the parameter's value (undefined when the field was left
    empty); ``| join(',')`` joins a list; an expression within text is substituted.
    """
    whole = EXPRESSION.fullmatch(text)
    if whole:
        value = form.get(whole.group(1))
        return ",".join(value) if whole.group(2) and value is not None else value
    return EXPRESSION.sub(lambda match: str(form[match.group(1)]), text)


def render_step() -> dict[str, Any]:
    (step,) = [step for step in TEMPLATE["spec"]["steps"] if step["action"] == "fetch:cookiecutter"]
    return step["input"]


def run_fetch_cookiecutter(work: Path, form: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """What the action does with the kit's template folder and the step's values."""
    step = render_step()
    assert evaluate(step["url"], form) == f"{KIT_URL}/tree/{RELEASE}/template"
    values = {key: evaluate(text, form) for key, text in step["values"].items()}
    values = {key: value for key, value in values.items() if value is not None}
    template = work / "template"
    shutil.copytree(ROOT / "template", template / "{{cookiecutter and 'contents'}}")
    (template / "cookiecutter.json").write_text(
        json.dumps({**values, "_extensions": step["extensions"]})
    )
    # The runner image: cookiecutter, with copier.yml and the bridge on PYTHONPATH.
    image = work / "image"
    image.mkdir()
    shutil.copy(ROOT / "copier.yml", image / "copier.yml")
    shutil.copytree(ROOT / "template_engines", image / "template_engines")
    home = work / "home"
    home.mkdir()
    return subprocess.run(
        [
            Path(sys.executable).parent / "cookiecutter",
            "--no-input",
            "-o",
            work / "result",
            template,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(image), "HOME": str(home)},
    )


def test_the_template_is_valid_for_a_backstage_catalog() -> None:
    resources = [json.loads(path.read_text()) for path in SCHEMAS.glob("*.schema.json")]
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in resources
    )
    (schema,) = [schema for schema in resources if schema["$id"] == "TemplateV1beta3"]
    validator = Draft7Validator(schema, registry=registry)

    assert [error.message for error in validator.iter_errors(TEMPLATE)] == []
    # The check has teeth: a template without steps is refused.
    broken = {**TEMPLATE, "spec": {**TEMPLATE["spec"], "steps": None}}
    assert list(validator.iter_errors(broken))


def test_the_template_is_written_from_copier_yml_and_asks_every_question() -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "template_engines.backstage", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    questions = yaml.safe_load((ROOT / "copier.yml").read_text())
    asked = [
        name
        for name, spec in questions.items()
        if not name.startswith("_") and spec.get("when") is not False
    ]
    fields = [name for page in TEMPLATE["spec"]["parameters"] for name in page["properties"]]
    assert [name for name in fields if name in questions] == asked
    handed_over = [name for name in render_step()["values"] if not name.startswith("_")]
    assert handed_over == asked


def test_the_render_step_renders_what_copier_renders_from_the_release(tmp_path: Path) -> None:
    form = parameters(project_name="Order Fulfilment", examples=["scheduled", "task_processing"])
    rendered = run_fetch_cookiecutter(tmp_path / "portal", form)
    assert rendered.returncode == 0, rendered.stderr
    by_portal = tmp_path / "portal" / "result" / "contents"

    kit = copy_of_checkout(tmp_path / "kit")
    git(kit, "tag", RELEASE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            str(kit),
            str(tmp_path / "by-copier"),
            data={
                "project_name": "Order Fulfilment",
                "examples": ["task_processing", "scheduled"],
                "sdk_git_url": f"{KIT_URL}.git",
            },
            defaults=True,
            vcs_ref=RELEASE,
            quiet=True,
        )
    by_copier = tmp_path / "by-copier"

    files = {
        str(path.relative_to(by_copier))
        for path in by_copier.rglob("*")
        if path.is_file() and ".git" not in path.parts
    }
    assert files == {
        str(path.relative_to(by_portal)) for path in by_portal.rglob("*") if path.is_file()
    }
    differing = sorted(
        name for name in files if (by_copier / name).read_bytes() != (by_portal / name).read_bytes()
    )
    assert differing == [".copier-answers.yml"]
    recorded = yaml.safe_load((by_portal / ".copier-answers.yml").read_text())
    # The service records the kit's URL and release, where copier update finds them.
    assert recorded["_src_path"] == f"{KIT_URL}.git"
    assert recorded["_commit"] == RELEASE
    copied = yaml.safe_load((by_copier / ".copier-answers.yml").read_text())
    assert {key: value for key, value in recorded.items() if key != "_src_path"} == {
        key: value for key, value in copied.items() if key != "_src_path"
    }
    pin = f'shadow-sdk = {{ git = "{KIT_URL}.git", tag = "{RELEASE}" }}'
    assert pin in (by_portal / "pyproject.toml").read_text()


def test_a_bad_answer_fails_the_portal_task_with_copiers_message(tmp_path: Path) -> None:
    # No hook runs there: the bridge itself refuses, before a file is written.
    rendered = run_fetch_cookiecutter(tmp_path, parameters(package_name="class"))

    assert rendered.returncode != 0
    assert (
        "Validation error for question 'package_name': "
        "'class' is a Python keyword and cannot be imported"
    ) in rendered.stderr
    assert not list((tmp_path / "result").rglob("*.py"))


def test_the_runner_image_is_built_from_a_clean_dockerfile() -> None:
    dockerfile = ROOT / "backstage" / "Dockerfile"
    linted = subprocess.run(
        [Path(sys.executable).parent / "hadolint", dockerfile],
        capture_output=True,
        text=True,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout
    # It holds what the bridge imports, where the render step's extension names it.
    text = dockerfile.read_text()
    assert "COPY copier.yml /opt/shadow-kit/copier.yml" in text
    assert "COPY template_engines/ /opt/shadow-kit/template_engines/" in text
    assert "ENV PYTHONPATH=/opt/shadow-kit" in text
    assert render_step()["extensions"][0].startswith("template_engines.")
