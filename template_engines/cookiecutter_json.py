"""Write ``cookiecutter.json`` from ``copier.yml``, or check that it is current.

    python -m template_engines.cookiecutter_json           # write it
    python -m template_engines.cookiecutter_json --check   # exit 1 if it drifted

Each question copier can ask becomes a cookiecutter variable with the same default: a
yes/no for a ``bool``, a choice list (the default first) for choices with a fixed
default, comma-separated text for a multiple choice, and copier's own default expression
otherwise, which the bridge lets cookiecutter render; an answer left empty takes it. A
default taken from the template's source is left empty: it is only known once cookiecutter
has fetched the template, and the bridge fills it in then. Computed questions
(``when: false``) are not asked; the bridge computes them. The help texts become
cookiecutter's prompts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from template_engines.copier_questions import COPIER_YML, ROOT, Question, load, write_or_check

COOKIECUTTER_JSON = ROOT / "cookiecutter.json"
EXTENSION = "template_engines.cookiecutter_bridge.CopierBridge"


def cookiecutter_json(questions: Sequence[Question]) -> str:
    """The text of ``cookiecutter.json`` for ``questions``."""
    variables: dict[str, Any] = {}
    prompts: dict[str, Any] = {}
    for question in questions:
        if not question.asked:
            continue
        variables[question.name] = _variable(question)
        prompts[question.name] = _prompt(question)
    document = {
        **variables,
        "__prompts__": prompts,
        "_extensions": [EXTENSION],
        # What the answers file records as the template's source and release, when
        # cookiecutter renders a copy that is no git clone (a portal's fetch).
        "_copier_src_path": "",
        "_copier_commit": "",
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _variable(question: Question) -> Any:
    if question.type == "bool":
        return bool(question.default)
    if question.multiselect:
        return ",".join(question.default or [])
    if question.source_dependent:
        return ""
    default = "" if question.default is None else str(question.default)
    values = [str(value) for value in question.choices.values()]
    if values and default in values:
        return [default, *(value for value in values if value != default)]
    return default


def _prompt(question: Question) -> Any:
    text = question.help
    choices = {str(value): label for label, value in question.choices.items()}
    if question.multiselect:
        listed = "; ".join(f"{value} ({label})" for value, label in choices.items())
        return f"{text}. Comma-separated, from: {listed}"
    if question.source_dependent:
        text += " (empty: from where the template was fetched)"
    elif question.computed_default:
        text += " (empty: the default)"
    if isinstance(question.when, str):
        text += f" (used only if {question.when.strip('{} ')})"
    if choices and isinstance(_variable(question), list):
        return {"__prompt__": text, **choices}
    if choices:
        return f"{text}, one of: " + ", ".join(choices)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Write cookiecutter.json, or with ``--check`` exit 1 when it is not current."""
    expected = cookiecutter_json(load(COPIER_YML)[1])
    return write_or_check(
        COOKIECUTTER_JSON,
        expected,
        module="template_engines.cookiecutter_json",
        argv=argv,
        doc=__doc__ or "",
    )


if __name__ == "__main__":
    sys.exit(main())
