"""The release check ``paths``: no file of a service is lost silently by updating to a release.

copier merges path by path and does not detect renames. A file that the previous
release rendered into a service and this release does not is deleted by ``copier
update``, with the service's edits to it. That is right when the template dropped the
file on purpose, and a silent loss when it moved the file or made it depend on another
answer by mistake.

So both releases are rendered with every answer set of ``scripts/answer-sets.toml``
(the sets the render matrix checks, against the kit's own checkout: nothing is fetched),
and each path that the previous release renders and this one does not must be either:

- **moved** by a ``_migrations`` entry of this release's ``copier.yml`` that runs after
  the update (no ``when``, or one true for ``_stage == 'after'``), applies to an update
  from the previous release to this one (no ``version``, or one in (previous, this]),
  and runs ``migrations/move_file.py`` with that path as its first argument; the
  command is rendered with the service's recorded answers, so
  ``src/{{ package_name }}/x.py`` names the file of every answer set; or
- **deleted on purpose**, as an item of this release's ``### Updating`` in
  ``CHANGELOG.md`` says: an item (a line starting with ``-`` and its continuation lines)
  that names the path in backticks and says "delete" ("deletes", "deleted"). The path
  may be written with ``<package>`` or ``{{ package_name }}`` for the package folder,
  and a folder ending in ``/`` names every file under it. An item that only mentions
  the path ("`x` moved to `y`") does not count: that is the rename that needs a
  migration.

Every other vanished path is a problem, reported once with the answer sets in which it
vanished and the fix: the ``_migrations`` entry (with the new path when git sees the
file renamed between the two renders), or the changelog line.

The same renders give the check ``histories``: recorded workflow histories
(``tests/replay/histories/*.json`` in a service) are append-only across releases. A
service replays every history it holds, for the runs that the code of its time started,
so a history the previous release rendered must be rendered by this one too, byte for
byte, for every answer set; a new recording goes beside it under a new name. Neither a
migration nor the changelog excuses a changed or vanished history.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

ANSWER_SETS = "scripts/answer-sets.toml"
MOVE_SCRIPT = PurePosixPath("migrations/move_file.py")
PACKAGE = "{{ package_name }}"
"""How a migration's command names the package folder, rendered with each service's answers."""
HISTORIES = PurePosixPath("tests/replay/histories")
"""Where a service keeps the recorded histories its replay check replays, one JSON file each."""

_DELETE = re.compile(r"\bdelet(e|es|ed|ing)\b", re.IGNORECASE)
_CODE = re.compile(r"`([^`\s]+)`")
_PACKAGE_PLACEHOLDER = re.compile(r"<package>|\{\{\s*package_name\s*\}\}")
_ITEM = re.compile(r"^\s*[-*] ")
_FALSE = {"n", "no", "f", "false", "off", "~", "null", "none"}


class PathsError(Exception):
    """The check cannot run: a file it reads is missing or malformed."""


@dataclass(frozen=True)
class Finding:
    """What one check found: a summary of what passed, and the problems."""

    summary: str
    problems: list[str]


@dataclass(frozen=True)
class Findings:
    """The checks ``paths`` and ``histories``, from the same renders of both releases."""

    paths: Finding
    histories: Finding


def load_answer_sets(text: str) -> dict[str, dict[str, str]]:
    """The answer sets of ``scripts/answer-sets.toml``: name to ``--data`` strings."""
    try:
        loaded = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PathsError(f"{ANSWER_SETS} is not valid TOML: {error}") from error
    sets: dict[str, dict[str, str]] = {}
    for name, answers in loaded.items():
        if not isinstance(answers, dict) or not all(
            isinstance(value, str) for value in answers.values()
        ):
            raise PathsError(
                f"{ANSWER_SETS}: [{name}] must be a table of strings, as `copier --data` "
                'takes them (write lists and booleans as YAML strings: \'["a"]\', "false")'
            )
        sets[name] = answers
    if not sets:
        raise PathsError(f"{ANSWER_SETS} has no answer set")
    return sets


@dataclass(frozen=True)
class Rendered:
    """What copier rendered for one answer set at one release, or why it could not."""

    files: frozenset[str] = frozenset()
    answers: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


def render(
    repository: str, ref: str, data: dict[str, str], destination: str, answers_file: str
) -> Rendered:
    """Render the template of ``repository`` at ``ref`` with ``data`` into ``destination``.

    Runs in a worker process: copier changes the working directory while it renders, so
    renders cannot share a process.
    """
    # Imported here: only the worker processes need copier, which is slow to import.
    import copier  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copier.run_copy(
                repository,
                destination,
                data=data,
                vcs_ref=ref,
                defaults=True,
                quiet=True,
                skip_tasks=True,
                # The repository being released: its own Jinja extensions are trusted.
                unsafe=True,
            )
    except Exception as error:  # Whatever stops the render is the answer.
        # On one line: copier's messages can span several.
        return Rendered(error=" ".join(f"{type(error).__name__}: {error}".split()))
    root = Path(destination)
    files = frozenset(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() or path.is_symlink()
    )
    recorded = root / answers_file
    answers = yaml.safe_load(recorded.read_text(encoding="utf-8")) if recorded.is_file() else {}
    answers = {**data, **(answers if isinstance(answers, dict) else {})}
    return Rendered(files=files, answers=answers)


@dataclass(frozen=True)
class Vanished:
    """A path the previous release renders for an answer set and this release does not."""

    answer_set: str
    path: str
    package: str
    renamed_to: str | None

    @property
    def shown(self) -> str:
        """The path with ``<package>`` for the package folder, as a service owner reads it."""
        return _generic(self.path, self.package, "<package>")


def check_paths(
    repository: Path,
    *,
    tag: str,
    previous: str,
    updating: Sequence[str],
    version: str,
) -> Findings:
    """Compare what ``previous`` and ``tag`` render: the paths, and the histories.

    ``updating`` is the body of ``### Updating`` in the changelog section of ``version``.
    """
    answer_sets = load_answer_sets(_show(repository, tag, ANSWER_SETS))
    config = _config(repository, tag)
    migrations = _migrations(config, previous, tag)
    answers_file = str(config.get("_answers_file", ".copier-answers.yml"))
    checkout = {"sdk_source": "checkout", "sdk_checkout": str(repository)}
    problems: list[str] = []
    unrenderable: list[str] = []
    moved: set[str] = set()
    dropped: set[str] = set()
    lost: dict[str, list[Vanished]] = defaultdict(list)
    kept: dict[str, list[str]] = defaultdict(list)  # Answer sets rendering a path at tag.
    histories = _Histories()
    with tempfile.TemporaryDirectory(prefix="release-paths-") as scratch:
        renders = _render_all(
            repository,
            refs=(previous, tag),
            answer_sets=answer_sets,
            checkout=checkout,
            answers_file=answers_file,
            scratch=Path(scratch),
        )
        for name in answer_sets:
            before, after = renders[name, previous], renders[name, tag]
            if before.error is not None:
                # No service has these answers at the previous release: nothing to lose.
                unrenderable.append(f"{name} ({previous} cannot render it: {before.error})")
                continue
            if after.error is not None:
                problems.append(
                    f"copier cannot render {tag} with the answer set {name} of {ANSWER_SETS}, "
                    f"which {previous} renders: {after.error}"
                )
                continue
            package = str(after.answers.get("package_name", ""))
            for path in after.files:
                kept[_generic(path, package, "<package>")].append(name)
            histories.compare(name, before.files, after.files, Path(scratch) / name)
            # The histories check reports a vanished history: no migration or line excuses it.
            gone = {path for path in before.files - after.files if not _is_history(path)}
            if not gone:
                continue
            renames = _renames(Path(scratch) / name)
            moves = _moves(
                migrations,
                after.answers,
                repository=repository,
                answers_file=answers_file,
                previous=previous,
                tag=tag,
            )
            for path in sorted(gone):
                vanished = Vanished(name, path, package, renames.get(path))
                if path in moves and moves[path] not in after.files:
                    problems.append(
                        f"a migration moves {path} to {moves[path]}, which {tag} does not "
                        f"render for the answer set {name}: the service's edits of it would "
                        "land in a file the template no longer has"
                    )
                elif path in moves:
                    moved.add(vanished.shown)
                elif _deleted_in(updating, path, package):
                    dropped.add(vanished.shown)
                else:
                    lost[vanished.shown].append(vanished)
    problems.extend(
        _problem(group, kept.get(shown, []), tag, previous, version)
        for shown, group in lost.items()
    )
    summary = (
        f"every path {previous} renders for the answer sets {', '.join(answer_sets)} "
        f"is rendered by {tag} too, or moved by _migrations ({len(moved)}), or deleted "
        f"as ### Updating says ({len(dropped)})"
    )
    if len(unrenderable) == len(answer_sets):
        # Some answer sets may be new to this release; all of them cannot be.
        problems.append(
            f"copier cannot render {previous} with any answer set of {ANSWER_SETS}, so "
            f"nothing was compared: {'; '.join(unrenderable)}"
        )
    elif unrenderable:
        summary += f"; skipped: {'; '.join(unrenderable)}"
    return Findings(
        paths=Finding(summary, problems),
        histories=histories.finding(repository, previous=previous, tag=tag),
    )


def _is_history(path: str) -> bool:
    """Whether ``path``, in a rendered service, is a recorded history its replay check replays."""
    posix = PurePosixPath(path)
    return posix.parent == HISTORIES and posix.suffix == ".json"


class _Histories:
    """The histories the previous release renders, and whether this release keeps them.

    Histories are compared by the path a service holds them at (``tests/replay/...``),
    over every answer set: the template's file names carry the conditions that choose them.
    """

    def __init__(self) -> None:
        self.changed: dict[str, list[str]] = defaultdict(list)  # Path to answer sets.
        self.gone: dict[str, list[str]] = defaultdict(list)
        self.shipped: dict[str, bytes] = {}  # Path to its content at the previous release.
        self.kept: set[str] = set()
        self.new: set[str] = set()

    def compare(
        self, answer_set: str, before: frozenset[str], after: frozenset[str], renders: Path
    ) -> None:
        """Compare the histories of ``answer_set``, rendered under ``renders``."""
        for path in sorted(filter(_is_history, before)):
            content = (renders / "previous" / path).read_bytes()
            self.shipped.setdefault(path, content)
            if path not in after:
                self.gone[path].append(answer_set)
            elif (renders / "current" / path).read_bytes() != content:
                self.changed[path].append(answer_set)
            else:
                self.kept.add(path)
        self.new.update(path for path in after - before if _is_history(path))

    def finding(self, repository: Path, *, previous: str, tag: str) -> Finding:
        """The summary, and one problem per history changed or gone, with its fix."""
        sources = _template_blobs(repository, previous) if self.changed or self.gone else {}
        problems = [
            _history_problem(
                path,
                answer_sets,
                sources.get(_blob_id(self.shipped[path]), []),
                previous=previous,
                tag=tag,
                gone=gone,
            )
            for gone, found in ((False, self.changed), (True, self.gone))
            for path, answer_sets in sorted(found.items())
        ]
        kept = self.kept - self.changed.keys() - self.gone.keys()
        new = self.new - self.shipped.keys()
        summary = (
            f"every history {previous} renders ({len(kept)}) is rendered by {tag} as it was; "
            f"{len(new)} new beside them"
        )
        return Finding(summary, problems)


def _history_problem(
    path: str,
    answer_sets: Sequence[str],
    sources: Sequence[str],
    *,
    previous: str,
    tag: str,
    gone: bool,
) -> str:
    """The report of a shipped history that ``tag`` changed or dropped, and how to fix it.

    ``sources`` are the template's files at ``previous`` that render the history.
    """
    plural = "s" if len(answer_sets) > 1 else ""
    stem = PurePosixPath(path).stem
    lines = [
        f"{path} (answer set{plural} {', '.join(answer_sets)}), which {previous} ships, "
        f"is {'missing from' if gone else 'changed in'} {tag}: histories are append-only, "
        "since services replay each one for the runs that older code started."
    ]
    if sources:
        # The file named after the history, should another hold the same bytes.
        source = min(sources, key=lambda source: f"{stem}.json" not in source)
        beside = f"as `{source.replace(f'{stem}.json', f'{stem}-v2.json')}`"
        lines.append(
            f"Restore it as {previous} has it: `git checkout {previous} -- {_quoted(source)}`."
        )
    else:
        beside = f"as `{stem}-v2.json` beside the old one"
        lines.append(f"Restore the template's file that renders it as {previous} has it.")
    lines.append(
        "Then record the new history beside it under a new name: "
        f"`nox -s histories -- {stem} --as {stem}-v2` in a service rendered from this "
        f"checkout, added to the template {beside}."
    )
    return "\n".join(lines)


def _template_blobs(repository: Path, tag: str) -> dict[str, list[str]]:
    """The template's files at ``tag`` by git blob id: which file renders a copied history."""
    listed = subprocess.run(
        ["git", "ls-tree", "-r", "-z", f"refs/tags/{tag}", "--", "template/"],
        cwd=repository,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    blobs: dict[str, list[str]] = defaultdict(list)
    for entry in filter(None, listed.split("\0")):
        meta, _, path = entry.partition("\t")
        blobs[meta.split()[-1]].append(path)
    return blobs


def _blob_id(content: bytes) -> str:
    """The id git gives a file holding ``content``: its blob's SHA-1."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def _quoted(path: str) -> str:
    """``path`` for a POSIX shell: in double quotes, which keep a condition's quotes readable."""
    if any(character in path for character in '$`\\"!'):
        return shlex.quote(path)
    return f'"{path}"'


def _config(repository: Path, tag: str) -> dict[str, Any]:
    """copier.yml as tagged."""
    try:
        config = yaml.safe_load(_show(repository, tag, "copier.yml")) or {}
    except yaml.YAMLError as error:
        raise PathsError(f"copier.yml at {tag} is not valid YAML: {error}") from error
    if not isinstance(config, dict):
        raise PathsError(f"copier.yml at {tag} is not a mapping of settings and questions")
    return config


def _render_all(
    repository: Path,
    *,
    refs: Sequence[str],
    answer_sets: Mapping[str, dict[str, str]],
    checkout: dict[str, str],
    answers_file: str,
    scratch: Path,
) -> dict[tuple[str, str], Rendered]:
    """Render every answer set at every ref, side by side in as many processes as CPUs."""
    jobs = [(name, ref) for name in answer_sets for ref in refs]
    side = {ref: ("previous", "current")[index] for index, ref in enumerate(refs)}
    # spawn, not fork: the release check runs other work in threads meanwhile.
    context = multiprocessing.get_context("spawn")
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {
            (name, ref): pool.submit(
                render,
                str(repository),
                ref,
                {**answer_sets[name], **checkout},
                str(scratch / name / side[ref]),
                answers_file,
            )
            for name, ref in jobs
        }
        return {job: future.result() for job, future in futures.items()}


def _renames(folder: Path) -> dict[str, str]:
    """The renames git detects from ``folder/previous`` to ``folder/current``: old to new."""
    command = ("git", "diff", "--no-index", "--find-renames", "--name-status", "-z")
    listed = subprocess.run(
        [*command, "--", "previous", "current"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split("\0")
    renames: dict[str, str] = {}
    for index, status in enumerate(listed):
        if status.startswith("R") and index + 2 < len(listed):
            old, new = listed[index + 1], listed[index + 2]
            renames[old.removeprefix("previous/")] = new.removeprefix("current/")
    return renames


def _migrations(config: Mapping[str, Any], previous: str, tag: str) -> list[dict[str, Any]]:
    """The ``_migrations`` entries copier runs on an update from ``previous`` to ``tag``."""
    entries = config.get("_migrations") or []
    low, high = Version(previous), Version(tag)
    applying: list[dict[str, Any]] = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, str | list):
            applying.append({"command": entry})
        elif isinstance(entry, dict) and "command" in entry:
            if "version" in entry:
                try:
                    version = Version(str(entry["version"]))
                except InvalidVersion:
                    continue  # copier fails on it as well; its own checks report it.
                if not low < version <= high:
                    continue
            applying.append(entry)
    return applying


def _moves(
    migrations: Iterable[Mapping[str, Any]],
    answers: Mapping[str, Any],
    *,
    repository: Path,
    answers_file: str,
    previous: str,
    tag: str,
) -> dict[str, str]:
    """Where ``migrations`` move paths with ``migrations/move_file.py`` after an update.

    Each command and condition is rendered as copier renders them during the update of
    a service with ``answers``; a part that does not render is taken as written.
    """
    # jinja2 and its filters come with copier, which only this check needs.
    import jinja2.sandbox  # noqa: PLC0415

    environment = jinja2.sandbox.SandboxedEnvironment(
        extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"]
    )
    context = {
        **answers,
        "_stage": "after",
        "_copier_operation": "update",
        "_copier_python": sys.executable,
        "_copier_conf": {
            "src_path": str(repository),
            "dst_path": ".",
            "answers_file": answers_file,
        },
        "_version_from": previous,
        "_version_to": tag,
    }

    def rendered(text: object) -> str:
        try:
            return environment.from_string(str(text)).render(context)
        except jinja2.TemplateError:
            return str(text)

    targets: dict[str, str] = {}
    for migration in migrations:
        when = rendered(migration.get("when", "{{ _stage == 'after' }}")).strip().lower()
        if not when or when in _FALSE or when in {"0", "0.0"}:
            continue
        command = migration["command"]
        parts = (
            shlex.split(rendered(command))
            if isinstance(command, str)
            else [rendered(part) for part in command]
        )
        for index, part in enumerate(parts[:-1]):
            if PurePosixPath(part).parts[-2:] == MOVE_SCRIPT.parts and len(parts) > index + 2:
                source, target = parts[index + 1 : index + 3]
                targets[str(PurePosixPath(source))] = str(PurePosixPath(target))
                break
    return targets


def _deleted_in(updating: Sequence[str], path: str, package: str) -> bool:
    """Whether an item of ``### Updating`` names ``path`` (or a folder above it) as deleted."""
    for item in _items(updating):
        if not _DELETE.search(item):
            continue
        for written in _CODE.findall(item):
            named = _PACKAGE_PLACEHOLDER.sub(package, written) if package else written
            if named == path or (named.endswith("/") and path.startswith(named)):
                return True
    return False


def _items(lines: Sequence[str]) -> list[str]:
    """The list items of ``lines``, each joined with its continuation lines."""
    items: list[str] = []
    for line in lines:
        if _ITEM.match(line):
            items.append(line.strip())
        elif items and line.strip():
            items[-1] += " " + line.strip()
    return items


def _problem(
    group: Sequence[Vanished], kept: Sequence[str], tag: str, previous: str, version: str
) -> str:
    """The report of one lost path, with the fixes that keep services from losing it.

    ``kept`` names the answer sets for which ``tag`` still renders the path.
    """
    shown = group[0].shown
    template_path = _generic(group[0].path, group[0].package, PACKAGE)
    sets = ", ".join(vanished.answer_set for vanished in group)
    plural = "s" if len(group) > 1 else ""
    targets = Counter(
        _generic(vanished.renamed_to, vanished.package, "<package>")
        for vanished in group
        if vanished.renamed_to
    )
    target = targets.most_common(1)[0][0] if targets else None
    entry = "\n".join(
        [
            f"  - version: {tag}",
            "    when: \"{{ _stage == 'after' }}\"",
            "    command:",
            '      - "{{ _copier_python }}"',
            f'      - "{{{{ _copier_conf.src_path }}}}/{MOVE_SCRIPT}"',
            f'      - "{template_path}"',
            f'      - "{target.replace("<package>", PACKAGE) if target else "<its new path>"}"',
            '      - "{{ _copier_conf.answers_file }}"',
        ]
    )
    line = f"- `copier update` deletes `{shown}`" + (
        " from services whose answers no longer generate it."
        if kept
        else ", which the template no longer generates."
    )
    headline = f"{shown} (answer set{plural} {sets}) is rendered by {previous} but not by {tag}"
    if kept:
        # An answer-dependent condition changed: other answers still render it.
        headline += f" (which still renders it for {', '.join(kept)})"
    lines = [
        f"{headline}: `copier update` would delete it, and a service's edits with it.",
        (f"Git sees it renamed to {target}: add" if target else "If it moved, add")
        + " to _migrations in copier.yml:",
        entry,
        f"If it is deleted on purpose, add to ### Updating of {version} in CHANGELOG.md:",
        f"  {line}",
    ]
    return "\n".join(lines)


def _generic(path: str, package: str, placeholder: str) -> str:
    """``path`` with its folder named after the package written as ``placeholder``."""
    if not package:
        return path
    return "/".join(placeholder if part == package else part for part in path.split("/"))


def _show(repository: Path, tag: str, path: str) -> str:
    shown = subprocess.run(
        ["git", "show", f"refs/tags/{tag}:{path}"],
        cwd=repository,
        capture_output=True,
        encoding="utf-8",
        check=False,
    )
    if shown.returncode != 0:
        raise PathsError(f"{path} is missing at {tag}")
    return shown.stdout
