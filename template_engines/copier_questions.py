"""copier.yml's questions, answered and validated the way copier answers and validates them.

cookiecutter knows neither copier's computed defaults, ``when`` conditions, validators nor
multiple choice: this module does what copier does with them, for the cookiecutter route.
It reads ``copier.yml`` itself, so the questions are written in one place.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, UndefinedError

ROOT = Path(__file__).resolve().parent.parent
COPIER_YML = ROOT / "copier.yml"

_TRUE = frozenset({"y", "yes", "t", "true", "on", "1"})
_FALSE = frozenset({"n", "no", "f", "false", "off", "0", "", "none"})


@dataclass(frozen=True)
class Question:
    """One question of ``copier.yml``."""

    name: str
    type: str
    default: Any
    help: str = ""
    choices: Mapping[str, Any] = field(default_factory=dict)
    """Label to value, as copier.yml writes them."""
    multiselect: bool = False
    when: bool | str = True
    validator: str | None = None

    @property
    def asked(self) -> bool:
        """Whether copier can ask it at all (``when: false`` marks a computed value)."""
        return self.when is not False

    @property
    def computed_default(self) -> bool:
        """Whether its default is computed from other answers (an empty answer takes it)."""
        return isinstance(self.default, str) and ("{{" in self.default or "{%" in self.default)

    @property
    def source_dependent(self) -> bool:
        """Whether its default comes from where the template was read."""
        return isinstance(self.default, str) and "_src_path" in self.default


@dataclass(frozen=True)
class Source:
    """Where the template was rendered from, as copier records it."""

    src_path: str
    commit: str | None
    """``git describe --tags --always`` of the template, None outside git."""
    commit_hash: str | None


@dataclass
class Answers:
    """Every question's value, and the ones copier records in the answers file."""

    values: dict[str, Any]
    recorded: dict[str, Any]
    source: Source
    dst_path: str
    answers_file: str = ".copier-answers.yml"

    def copier_answers(self) -> dict[str, Any]:
        """``_copier_answers`` as templates see it: answers, source and release."""
        extra: dict[str, Any] = {"_src_path": self.source.src_path}
        if self.source.commit:
            extra["_commit"] = self.source.commit
        return {**extra, **self.recorded}

    def copier_conf(self) -> dict[str, Any]:
        """The part of ``_copier_conf`` that the template and its questions read."""
        return {
            "answers_file": self.answers_file,
            "dst_path": self.dst_path,
            "vcs_ref_hash": self.source.commit_hash,
        }

    def context(self) -> dict[str, Any]:
        """What copier renders its expressions with: the answers so far, and its own."""
        return {
            **self.values,
            "_copier_answers": self.copier_answers(),
            "_copier_conf": self.copier_conf(),
        }


def load(path: Path = COPIER_YML) -> tuple[dict[str, Any], list[Question]]:
    """Read copier.yml: its settings (``_*`` keys) and its questions, in order."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    settings = {key: value for key, value in data.items() if key.startswith("_")}
    questions = [
        Question(
            name=name,
            type=spec.get("type", "str"),
            default=spec.get("default"),
            help=" ".join(str(spec.get("help", "")).split()),
            choices=spec.get("choices") or {},
            multiselect=bool(spec.get("multiselect", False)),
            when=spec.get("when", True),
            validator=spec.get("validator"),
        )
        for name, spec in data.items()
        if not name.startswith("_")
    ]
    return settings, questions


def to_bool(value: Any) -> bool:
    """A yes/no answer as copier reads it (``yes``, ``true``, ``1``, ``off``...)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"'{value}' is not a yes/no answer")


def to_list(value: Any) -> list[str]:
    """A multiple-choice answer: a list, or the comma-separated text cookiecutter asks for."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            loaded = yaml.safe_load(text)
            return [str(item) for item in loaded] if isinstance(loaded, list) else [text]
        return [item.strip() for item in text.split(",") if item.strip()]
    if isinstance(value, Sequence):
        return [str(item) for item in value]
    raise ValueError(f"'{value}' is not a list of choices")


def source_of(
    repository: Path,
    template: str | None,
    *,
    src_path: str | None = None,
    commit: str | None = None,
) -> Source:
    """Describe the template at ``repository``, given on the command line as ``template``.

    A local folder is recorded by its absolute path and anything else (a git URL,
    ``gh:org/kit``) as given, which is what copier records as ``_src_path`` and finds
    the template by when it updates. ``src_path`` and ``commit`` replace what the
    repository says: a portal renders a copy that is no git clone, of a known release.
    """
    if src_path:
        pass
    elif template is None or Path(template).expanduser().is_dir():
        src_path = str(Path(template or repository).expanduser().resolve())
    else:
        src_path = template
    return Source(
        src_path=src_path,
        commit=commit or _git(repository, "describe", "--tags", "--always"),
        commit_hash=None if commit else _git(repository, "rev-parse", "HEAD"),
    )


def resolve(
    questions: Sequence[Question],
    given: Mapping[str, Any],
    source: Source,
    environment: Environment,
    *,
    dst_path: str = ".",
    answers_file: str = ".copier-answers.yml",
    strict: bool = True,
) -> Answers:
    """Answer every question as copier would for the answers ``given``.

    Computed questions (``when: false``) and answers left empty whose default depends on
    the template's source take copier's default, rendered in question order with the
    answers before them. With ``strict`` false, stops quietly at the first default that
    needs an answer not given yet (cookiecutter asks in order).
    """
    answers = Answers({}, {}, source, dst_path, answers_file)
    for question in questions:
        context = answers.context()
        try:
            value = _answer(question, given, context, environment)
            answers.values[question.name] = value
            when = question.when
            if isinstance(when, str):
                when = to_bool(environment.from_string(when).render(context))
            if when:
                answers.recorded[question.name] = value
        except UndefinedError:
            if strict:
                raise
            break
    return answers


def problems(
    questions: Sequence[Question], answers: Answers, environment: Environment
) -> list[str]:
    """What copier would refuse in ``answers``: a choice not offered, a validator's message."""
    found: list[str] = []
    for question in questions:
        if question.name not in answers.recorded:
            continue
        value = answers.values[question.name]
        offered = list(question.choices.values())
        chosen = value if question.multiselect else [value]
        wrong = [item for item in chosen if offered and item not in offered]
        if wrong:
            found.append(
                f"Validation error for question '{question.name}': "
                f"{', '.join(map(repr, wrong))} is not a choice; "
                f"choose from {', '.join(map(str, offered))}"
            )
            continue
        if question.validator:
            validator = environment.from_string(question.validator)
            message = validator.render(answers.context()).strip()
            if message:
                found.append(f"Validation error for question '{question.name}': {message}")
    return found


def _answer(
    question: Question, given: Mapping[str, Any], context: dict[str, Any], env: Environment
) -> Any:
    raw = given.get(question.name)
    if raw is None or (raw == "" and question.computed_default) or not question.asked:
        raw = question.default
        if isinstance(raw, str):
            raw = env.from_string(raw).render(context)
    return normalized(question, raw)


def normalized(question: Question, raw: Any) -> Any:
    """An answer as copier holds it: a bool, a list in the choices' order, or text."""
    if question.type == "bool":
        return to_bool(raw)
    if question.multiselect:
        # copier keeps the choices' order, whatever order they were given in.
        offered = [str(value) for value in question.choices.values()]
        chosen = to_list(raw)
        return [item for item in offered if item in chosen] + [
            item for item in chosen if item not in offered
        ]
    return str(raw)


def _git(repository: Path, *args: str) -> str | None:
    if not (repository / ".git").exists():  # Not a clone: a copy, an unpacked archive.
        return None
    try:
        completed = subprocess.run(
            ["git", "-C", str(repository), *args],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return None
    return completed.stdout.strip() or None if completed.returncode == 0 else None


def write_or_check(
    path: Path, expected: str, *, module: str, argv: Sequence[str] | None, doc: str
) -> int:
    """The command line of a file written from copier.yml: write it, or ``--check`` it.

    With ``--check``, exits 1 (naming the command that writes it) when ``path`` is not
    ``expected``; otherwise writes it.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--check", action="store_true", help="fail instead of writing")
    check = parser.parse_args(argv).check
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if current == expected:
        return 0
    if check:
        print(
            f"{path.relative_to(ROOT)} is not what copier.yml gives: run "
            f"`python -m {module}` and commit it",
            file=sys.stderr,
        )
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(expected, encoding="utf-8")
    return 0
