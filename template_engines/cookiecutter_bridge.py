"""A Jinja extension that lets cookiecutter render copier's template unchanged.

cookiecutter and copier differ in four ways that matter to ``template/``:

- Names. Templates write ``{{ package_name }}`` (copier's answers are top-level
  variables); cookiecutter passes one ``cookiecutter`` mapping. The context falls back to
  it, and to what copier computes: its ``when: false`` questions, ``_copier_answers``
  (the answers file) and ``_copier_conf``.
- Filters. copier's ``regex_search``, ``regex_replace`` and ``to_nice_yaml`` come from
  ansible's filters, which cookiecutter lacks; equivalents are registered.
- What is a template. copier renders files ending in ``.jinja`` and drops the suffix, and
  copies the others as they are; cookiecutter renders every file. Files without the
  suffix are therefore read raw, and the suffix is dropped from paths.
- Optional folders. A folder whose name renders empty is left out by copier; cookiecutter
  would pour its files into the parent. Such a folder is rendered outside the project
  instead, into a throwaway folder.

Answers copier would refuse stop the rendering, with copier's messages: the
pre-generation hook says so first, and the bridge checks again for runners that do not
run the kit's hooks (a portal that hands cookiecutter the template folder alone).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, StrictUndefined, TemplateRuntimeError
from jinja2.ext import Extension
from jinja2.runtime import Context
from jinja2.utils import missing

from template_engines import copier_questions
from template_engines.copier_questions import ROOT

OMITTED = ".omitted-by-answers-"
"""Start of the name a folder gets when its name renders empty."""
_OUTSIDE_IF_OMITTED = "copier_bridge_outside_if_omitted"

_answers_cache: dict[str, copier_questions.Answers] = {}
_checked: set[str] = set()


@dataclass(frozen=True)
class Kit:
    """The copier configuration of one checkout of the kit."""

    settings: dict[str, Any]
    questions: list[copier_questions.Question]

    @property
    def suffix(self) -> str:
        """What ends the name of a file copier renders (and drops from it)."""
        return str(self.settings.get("_templates_suffix", ".jinja"))

    @property
    def answers_file(self) -> str:
        """Where a service records its answers, source and release."""
        return str(self.settings.get("_answers_file", ".copier-answers.yml"))

    def question(self, name: str) -> copier_questions.Question | None:
        """The question called ``name``, if there is one."""
        return next((question for question in self.questions if question.name == name), None)


@functools.cache
def kit(repository: Path) -> Kit:
    """The kit at ``repository``: cookiecutter's clone, whichever copy imported this module."""
    return Kit(*copier_questions.load(repository / "copier.yml"))


def _repository(given: Mapping[str, Any]) -> Path:
    # The checkout cookiecutter fetched, once it has; else (while it asks, or when it was
    # given the template folder alone, as a portal does) the one this module belongs to.
    fetched = Path(given.get("_repo_dir") or ROOT)
    return fetched if (fetched / "copier.yml").is_file() else ROOT


class CopierBridge(Extension):
    """Registers copier's filters and answer names in a cookiecutter environment."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.context_class = _AnswersContext
        environment.filters.update(
            regex_search=regex_search,
            regex_replace=regex_replace,
            to_nice_yaml=to_nice_yaml,
        )
        environment.filters[_OUTSIDE_IF_OMITTED] = _outside_if_omitted

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        """Read a file without the suffix raw; rewrite a path as copier would render it."""
        # cookiecutter renders files and paths with the template folder as its working
        # directory; it is copier's template if it holds the answers file's template.
        folder = Path.cwd()
        the_kit = kit(folder.parent if (folder.parent / "copier.yml").is_file() else ROOT)
        if not (folder / ("{{ _copier_conf.answers_file }}" + the_kit.suffix)).is_file():
            return source  # Not rendering copier's template: a default, a hook.
        if name is not None:
            # A file cookiecutter renders: only copier's templates are templates.
            if name.endswith(the_kit.suffix):
                return source
            return "{% raw %}" + source + "{% endraw %}"
        path = _template_path(source)
        return source if path is None else _path_template(*path, suffix=the_kit.suffix)


class _AnswersContext(Context):
    """Resolves a name cookiecutter does not define from copier's answers."""

    def resolve_or_missing(self, key: str) -> Any:
        found = super().resolve_or_missing(key)
        if found is not missing or key == "cookiecutter":
            return found
        given = super().resolve_or_missing("cookiecutter")
        if not isinstance(given, Mapping):
            return missing
        the_kit = kit(_repository(given))
        if "_repo_dir" in given:
            _refuse_invalid(given, self.environment)
        question = the_kit.question(key)
        value = given.get(key, "")
        if question and (value != "" or (key in given and not question.computed_default)):
            return copier_questions.normalized(question, value)
        answers = answers_for(given, self.environment)
        if key == "_copier_answers":
            return answers.copier_answers()
        if key == "_copier_conf":
            return answers.copier_conf()
        return answers.values.get(key, missing)


def answers_for(given: Mapping[str, Any], environment: Environment) -> copier_questions.Answers:
    """The copier answers to what cookiecutter collected so far (cached per answer set).

    While cookiecutter still asks, only the questions before the missing one are answered.
    """
    key = json.dumps(given, sort_keys=True, default=str)
    if key not in _answers_cache:
        repository = _repository(given)
        source = copier_questions.source_of(
            repository,
            given.get("_template"),
            src_path=given.get("_copier_src_path") or None,
            commit=given.get("_copier_commit") or None,
        )
        output = given.get("_output_dir")
        slug = given.get("project_slug", "")
        _answers_cache[key] = copier_questions.resolve(
            kit(repository).questions,
            given,
            source,
            environment,
            dst_path=str(Path(output, slug)) if output else ".",
            answers_file=kit(repository).answers_file,
            strict="_repo_dir" in given,
        )
    return _answers_cache[key]


def check_answers(given: Mapping[str, Any]) -> int:
    """The pre-generation hook: print what copier would refuse; 1 if anything, else 0."""
    found = _problems(given, bridged_environment())
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


def finish(given: Mapping[str, Any]) -> int:
    """The post-generation hook: say what copier says after a copy."""
    environment = bridged_environment()
    answers = answers_for(given, environment)
    message = kit(_repository(given)).settings.get("_message_after_copy")
    if message:
        print(environment.from_string(message).render(answers.context()), file=sys.stderr)
    return 0


def _problems(given: Mapping[str, Any], environment: Environment) -> list[str]:
    answers = answers_for(given, environment)
    return copier_questions.problems(kit(_repository(given)).questions, answers, environment)


def _refuse_invalid(given: Mapping[str, Any], environment: Environment) -> None:
    """Stop rendering answers copier would refuse, where no hook checked them first."""
    key = json.dumps(given, sort_keys=True, default=str)
    if key not in _checked:
        found = _problems(given, environment)
        if found:
            raise TemplateRuntimeError("\n".join(found))
        _checked.add(key)


def bridged_environment() -> Environment:
    """A Jinja environment that renders copier's expressions as cookiecutter's does."""
    # Renders file names and answers, never HTML: nothing to escape, as in copier.
    return Environment(  # noqa: S701
        undefined=StrictUndefined, keep_trailing_newline=True, extensions=[CopierBridge]
    )


def regex_search(value: Any, pattern: str, ignorecase: bool = False) -> str | None:
    """Ansible's ``regex_search``: the first match of ``pattern`` in ``value``, else None."""
    match = re.search(pattern, str(value), re.IGNORECASE if ignorecase else 0)
    return match.group(0) if match else None


def regex_replace(value: Any = "", pattern: str = "", replacement: str = "") -> str:
    """Ansible's ``regex_replace``: ``re.sub`` over ``value``."""
    return re.sub(pattern, replacement, str(value))


def to_nice_yaml(value: Any, indent: int = 4) -> str:
    """Ansible's ``to_nice_yaml``: block-style YAML, keys sorted."""
    return yaml.safe_dump(value, indent=indent, allow_unicode=True, default_flow_style=False)


def _template_path(source: str) -> tuple[str, str] | None:
    """Split a path cookiecutter renders into (prefix kept as is, path in the template).

    While cookiecutter renders files, its working directory is the template folder; it
    renders a file's path relative to it, and a folder's as ``<project>/./<path>``.
    """
    if "\n" in source:
        return None
    prefix, separator, relative = source.partition(os.sep + "." + os.sep)
    if separator and os.path.lexists(relative):
        return prefix + separator, relative
    if not separator and os.path.lexists(source):
        return "", source
    return None


def _path_template(prefix: str, relative: str, *, suffix: str) -> str:
    """A path as copier renders it: suffix dropped, what an empty folder name holds moved out.

    A folder whose name renders empty gets a marker name instead, and a path holding a
    marker is rendered into a folder outside the project, deleted when cookiecutter exits.
    """
    parts = relative.split(os.sep)
    if parts[-1].endswith(suffix) and os.path.isfile(relative):
        parts[-1] = parts[-1][: -len(suffix)]
    folders = len(parts) if os.path.isdir(relative) else len(parts) - 1
    rendered = [
        _marked(part) if index < folders and "{" in part else part
        for index, part in enumerate(parts)
    ]
    return f"{{% filter {_OUTSIDE_IF_OMITTED} %}}{prefix}{os.sep.join(rendered)}{{% endfilter %}}"


def _marked(part: str) -> str:
    marker = OMITTED + hashlib.sha256(part.encode()).hexdigest()[:12]
    return f"{{% filter default({marker!r}, true) %}}{part}{{% endfilter %}}"


def _outside_if_omitted(path: str) -> str:
    """``path``, or the same path in a throwaway folder if a folder on it is omitted."""
    if OMITTED not in path:
        return path
    _, separator, relative = path.partition(os.sep + "." + os.sep)
    return os.path.join(_throwaway(), relative if separator else path)


@functools.cache
def _throwaway() -> str:
    folder = tempfile.mkdtemp(prefix="cookiecutter-omitted-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
