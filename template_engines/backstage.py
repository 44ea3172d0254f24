"""Write ``backstage/template.yaml`` from ``copier.yml``, or check that it is current.

    python -m template_engines.backstage           # write it
    python -m template_engines.backstage --check   # exit 1 if it drifted

A Backstage Software Template (``scaffolder.backstage.io/v1beta3``) that offers the kit's
questions in a developer portal and renders through ``fetch:cookiecutter``: each question
copier can ask becomes a form field, with copier's help text, choices and fixed default,
and is handed to cookiecutter unchanged (a multiple choice as the comma-separated text
cookiecutter takes). The action hands cookiecutter the template folder alone, so the kit's
hooks do not run there: the bridge, installed in the runner image that
``backstage/Dockerfile`` builds, checks the answers with copier's validators and fails the
task with copier's message.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import yaml

from template_engines.cookiecutter_json import EXTENSION
from template_engines.copier_questions import COPIER_YML, ROOT, Question, load, write_or_check

TEMPLATE_YAML = ROOT / "backstage" / "template.yaml"
SECTIONS = {
    "project_name": "The service",
    "temporal_namespace": "Temporal",
    "encryption": "Features",
    "examples": "Examples and delivery",
    "sdk_source": "Where the service gets shadow-sdk",
}
"""Form pages, by the question each starts with (copier.yml's sections)."""
RELEASE_TREE = "${{ parameters.kit_url }}/tree/${{ parameters.kit_release }}"
"""The kit's files at the release offered, as GitHub serves a tree."""
HEADER = """\
# A Backstage Software Template offering the kit in a developer portal
# (docs/portal.md). Written from copier.yml by `python -m template_engines.backstage`:
# edit copier.yml, not this file. Platform teams set the defaults of kit_url,
# kit_image and kit_release to their mirror, their runner image and the release
# they offer.
"""


def template_yaml(questions: Sequence[Question]) -> str:
    """The text of ``backstage/template.yaml`` for ``questions``."""
    pages: list[dict[str, Any]] = []
    values: dict[str, str] = {}
    for question in questions:
        if not question.asked:
            continue
        if question.name in SECTIONS or not pages:
            pages.append({"title": SECTIONS.get(question.name, "The service"), "properties": {}})
        pages[-1]["properties"][question.name] = _field(question)
        joined = " | join(',')" if question.multiselect else ""
        values[question.name] = f"${{{{ parameters.{question.name}{joined} }}}}"
    pages[0]["required"] = ["project_name"]
    pages.append(_kit_page())
    pages.append(_repository_page())
    values["_copier_src_path"] = "${{ parameters.kit_url }}.git"
    values["_copier_commit"] = "${{ parameters.kit_release }}"
    document = {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {
            "name": "shadow-temporal-worker",
            "title": "Temporal worker service (Python)",
            "description": (
                "A Temporal worker service on shadow-sdk: example workflows, time-skipping "
                "tests, Dockerfile, Kubernetes manifests and CI, kept current by copier."
            ),
            "tags": ["python", "temporal", "worker"],
        },
        "spec": {
            "owner": "platform-team",
            "type": "service",
            "parameters": pages,
            "steps": [
                {
                    "id": "render",
                    "name": "Render the service with cookiecutter",
                    "action": "fetch:cookiecutter",
                    "input": {
                        # The template folder alone: the action supplies cookiecutter.json.
                        "url": f"{RELEASE_TREE}/template",
                        "values": values,
                        "extensions": [EXTENSION],
                        "imageName": "${{ parameters.kit_image }}:${{ parameters.kit_release }}",
                    },
                },
                {
                    "id": "publish",
                    "name": "Publish the repository",
                    "action": "publish:github",
                    "input": {
                        "repoUrl": "${{ parameters.repoUrl }}",
                        "description": "${{ parameters.description }}",
                        "defaultBranch": "main",
                    },
                },
            ],
            "output": {
                "links": [{"title": "Repository", "url": "${{ steps.publish.output.remoteUrl }}"}]
            },
        },
    }
    return HEADER + yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)


def _field(question: Question) -> dict[str, Any]:
    title, _, rest = question.help.partition("? ")
    field: dict[str, Any] = {"title": title + ("?" if rest else ""), "description": rest or None}
    values = [str(value) for value in question.choices.values()]
    labels = list(question.choices)
    if question.type == "bool":
        field.update(type="boolean", default=bool(question.default))
    elif question.multiselect:
        field.update(
            type="array",
            items={"type": "string", "enum": values, "enumNames": labels},
            uniqueItems=True,
            default=list(question.default or []),
        )
        field["ui:widget"] = "checkboxes"
    else:
        field["type"] = "string"
        if values:
            field.update(enum=values, enumNames=labels)
        if question.computed_default:
            field["description"] = " ".join(
                filter(None, [rest, "Leave empty for the default, computed from the answers."])
            )
        elif question.default is not None:
            field["default"] = str(question.default)
    if isinstance(question.when, str):
        field["description"] = " ".join(
            filter(None, [field["description"], f"Used only if {question.when.strip('{} ')}."])
        )
    return {key: value for key, value in field.items() if value is not None}


def _kit_page() -> dict[str, Any]:
    return {
        "title": "Kit release",
        "required": ["kit_url", "kit_image", "kit_release"],
        "properties": {
            "kit_url": {
                "title": "The kit's repository",
                "description": "Its GitHub address, without .git: your mirror of the kit.",
                "type": "string",
                "default": "https://github.com/your-org/shadow-temporal-kit",
            },
            "kit_image": {
                "title": "The image that runs cookiecutter",
                "description": "Built from the kit's backstage/Dockerfile, tagged by release.",
                "type": "string",
                "default": "ghcr.io/your-org/shadow-kit-cookiecutter",
            },
            "kit_release": {
                "title": "Release",
                "description": "The release tag to render, which copier updates from later.",
                "type": "string",
                "pattern": "^v[0-9]+\\.[0-9]+\\.[0-9]+$",
            },
        },
    }


def _repository_page() -> dict[str, Any]:
    return {
        "title": "Repository",
        "required": ["repoUrl"],
        "properties": {
            "repoUrl": {
                "title": "Where the service's repository is created",
                "type": "string",
                "ui:field": "RepoUrlPicker",
                "ui:options": {"allowedHosts": ["github.com"]},
            }
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write backstage/template.yaml, or with ``--check`` exit 1 when it is not current."""
    expected = template_yaml(load(COPIER_YML)[1])
    return write_or_check(
        TEMPLATE_YAML, expected, module="template_engines.backstage", argv=argv, doc=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(main())
