"""Check that a release tag is ready to push: ``nox -s release -- v1.2.0``.

One tag ``vMAJOR.MINOR.PATCH`` releases both the SDK (``shadow-sdk``, whose version
hatch-vcs derives from the tag) and the template (whose services install the SDK of
the same release by default). Before the tag is pushed,
this script checks, in the repository it lives in (or ``--repository``), that:

1. the tag is ``vMAJOR.MINOR.PATCH`` (no leading zeros, no suffix);
2. it exists and points at HEAD, and the working tree is clean (no changes, no
   untracked files);
3. the build backend derives the tag's version: ``uv build --sdist`` builds HEAD
   and the sdist's file name carries the version the published SDK would have;
4. ``CHANGELOG.md``, as tagged, has a section ``## [X.Y.Z] - YYYY-MM-DD`` with
   entries, among them the subsections ``### Generated services`` (what changed in the
   services the template generates) and ``### Updating`` (what ``copier update`` does
   to services generated from an earlier release), and a link reference
   ``[X.Y.Z]: URL``;
5. the template rendered with copier at the tag, with its defaults, gives the service
   the range ``shadow-sdk>=X.Y.Z,<X+1`` (``<0.Y+1`` before 1.0) and installs it from
   the kit's repository at the tag;
6. no path is lost silently: every file that the previous release tag renders for the
   answer sets of ``scripts/answer-sets.toml`` is rendered by this one too, or moved by
   a ``_migrations`` entry, or deleted as the changelog's ``### Updating`` says
   (``release_paths.py`` has the rules);
7. recorded histories are append-only: every history (``tests/replay/histories/*.json``)
   that the previous release tag renders for those answer sets is rendered by this one
   too, byte for byte; a new recording goes beside it under a new name.

The first release has nothing to compare for 6 and 7.

Every check runs, and every problem is reported, before the script exits 1; it exits
0 when there is none. Without an argument it checks the tag at HEAD.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import textwrap
import tomllib
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import uv
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename
from release_paths import Finding, PathsError, check_paths

ROOT = Path(__file__).resolve().parent.parent
CHANGELOG = "CHANGELOG.md"
TAG = re.compile(r"v(?P<major>0|[1-9][0-9]*)\.(?P<minor>0|[1-9][0-9]*)\.(?P<patch>0|[1-9][0-9]*)")
REQUIRED_SUBSECTIONS = ("Generated services", "Updating")
"""Subsections every release section of the changelog has, besides Keep a Changelog's."""

SECTION = re.compile(r"^## \[(?P<name>[^\]]*)\](?P<rest>.*)$")
SUBSECTION = re.compile(r"^### (?P<name>.*?)\s*$")
LINK_REFERENCE = re.compile(r"^\[(?P<name>[^\]]+)\]:\s*\S")
DATED = re.compile(r"^ - (?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})$")


class ReleaseError(Exception):
    """The release cannot be checked at all; the message says why and what to do."""


@dataclass(frozen=True, order=True)
class Release:
    """A release version, from its tag; releases sort by version."""

    major: int
    minor: int
    patch: int

    @classmethod
    def from_tag(cls, tag: str) -> Release | None:
        """The release a ``vMAJOR.MINOR.PATCH`` tag names, or None for any other tag."""
        match = TAG.fullmatch(tag)
        if match is None:
            return None
        return cls(int(match["major"]), int(match["minor"]), int(match["patch"]))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def tag(self) -> str:
        """The release's tag, ``vMAJOR.MINOR.PATCH``."""
        return f"v{self}"

    @property
    def requirement(self) -> str:
        """The SDK requirement services generated from this release get by default.

        Compatible releases only: the next major version breaks, or before 1.0 the next
        minor version.
        """
        upper = f"0.{self.minor + 1}" if self.major == 0 else f"{self.major + 1}"
        return f"shadow-sdk>={self},<{upper}"


@dataclass
class Outcome:
    """What one check found: a summary when it passed, its problems otherwise."""

    topic: str
    summary: str = ""
    problems: list[str] = field(default_factory=list)
    skipped: bool = False


def main(argv: Sequence[str] | None = None) -> int:
    """Check a release tag; return the process's exit status."""
    args = _parse(argv)
    try:
        repository = _toplevel(args.repository)
        tag = args.tag or _tag_at_head(repository)
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Release {tag} of {repository}:")
    try:
        outcomes = check(repository, tag)
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for outcome in outcomes:
        if outcome.skipped:
            print(f"  skip  {outcome.topic:<10} {outcome.summary}")
        elif not outcome.problems:
            print(f"  ok    {outcome.topic:<10} {outcome.summary}")
        for problem in outcome.problems:
            # A problem of several lines (a fix to paste) stays indented under its check.
            first, *rest = problem.splitlines() or [""]
            print(f"  FAIL  {outcome.topic:<10} {first}")
            if rest:
                print(textwrap.indent("\n".join(rest), " " * 19))
    count = sum(len(outcome.problems) for outcome in outcomes)
    if count:
        print(f"{tag} is not ready: {count} problem{'s' if count > 1 else ''} above.")
        return 1
    print(f"{tag} is ready: push it with `git push origin {tag}`.")
    return 0


def check(repository: Path, tag: str) -> list[Outcome]:
    """Run every check of ``tag`` in ``repository``; report all they find."""
    release = Release.from_tag(tag)
    tag_outcome = _check_tag(repository, tag, release)
    tree = _check_tree(repository)
    if release is None:
        needs = f"needs a vMAJOR.MINOR.PATCH tag, not {tag!r}"
        return [
            tag_outcome,
            tree,
            Outcome("version", needs, skipped=True),
            Outcome("changelog", needs, skipped=True),
            Outcome("template", needs, skipped=True),
            Outcome("paths", needs, skipped=True),
            Outcome("histories", needs, skipped=True),
        ]
    # The build and the renders take seconds each: run them side by side (the paths
    # and histories checks render in processes of their own).
    tagged = _tag_commit(repository, tag) is not None
    with ThreadPoolExecutor(max_workers=2) as executor:
        build = executor.submit(_check_version, repository, release)
        if tagged:
            paths_check = executor.submit(_check_paths, repository, tag, release)
            template = _check_template(repository, tag, release)
            paths, histories = paths_check.result()
        else:
            needs = f"needs the tag {tag} to exist"
            template = Outcome("template", needs, skipped=True)
            paths = Outcome("paths", needs, skipped=True)
            histories = Outcome("histories", needs, skipped=True)
        version = build.result()
    changelog = _check_changelog(repository, tag if tagged else None, release)
    return [tag_outcome, tree, version, changelog, template, paths, histories]


def _check_tag(repository: Path, tag: str, release: Release | None) -> Outcome:
    outcome = Outcome("tag")
    if release is None:
        outcome.problems.append(
            f"{tag!r} is not a release tag: name it vMAJOR.MINOR.PATCH, for example v1.2.0 "
            "(numbers without leading zeros, no prefix or suffix)"
        )
    commit = _tag_commit(repository, tag)
    head = _git(repository, "rev-parse", "HEAD").strip()
    if commit is None and release is None:
        outcome.problems.append(f"no tag {tag} exists either")
    elif commit is None:
        outcome.problems.append(
            f"{tag} does not exist: commit the release, then "
            f"`git tag -a {tag} -m 'Release {release}'`"
        )
    elif commit != head:
        outcome.problems.append(
            f"{tag} points at {commit[:12]}, not at HEAD ({head[:12]}): check out {tag}, or, "
            f"if it was never pushed, move it to HEAD with `git tag -f -a {tag}`"
        )
    outcome.summary = f"{tag} points at HEAD ({head[:12]})"
    return outcome


def _check_tree(repository: Path) -> Outcome:
    status = _git(repository, "status", "--porcelain", "--untracked-files=normal").splitlines()
    if not status:
        return Outcome("tree", "clean: nothing uncommitted, nothing untracked")
    paths = [line[3:] for line in status]
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return Outcome(
        "tree",
        problems=[
            f"the working tree is not clean ({shown}): the release must be built from the "
            "tagged commit alone; commit or stash the changes, or remove the files"
        ],
    )


def _check_version(repository: Path, release: Release) -> Outcome:
    outcome = Outcome("version")
    try:
        version = _built_version(repository)
    except ReleaseError as error:
        outcome.problems.append(str(error))
        return outcome
    if version != str(release):
        outcome.problems.append(
            f"the build derives version {version}, not {release}: hatch-vcs gives the tag's "
            "version only to a clean checkout of the tagged commit"
        )
    outcome.summary = f"the build derives {version} (uv build --sdist)"
    return outcome


def _built_version(repository: Path) -> str:
    """The version the build backend gives HEAD: that of the sdist ``uv build`` makes."""
    with tempfile.TemporaryDirectory(prefix="release-sdist-") as out:
        result = subprocess.run(
            [uv.find_uv_bin(), "build", "--sdist", "--quiet", "--out-dir", out, str(repository)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = " | ".join(result.stderr.strip().splitlines()[-5:])
            raise ReleaseError(f"`uv build --sdist` failed, so the version is unknown: {tail}")
        sdists = sorted(Path(out).glob("*.tar.gz"))
        if len(sdists) != 1:
            raise ReleaseError(f"`uv build --sdist` made {len(sdists)} sdists, not one")
        try:
            _, version = parse_sdist_filename(sdists[0].name)
        except InvalidSdistFilename as error:
            raise ReleaseError(f"cannot read a version from the sdist's name: {error}") from error
        return str(version)


def _check_changelog(repository: Path, tag: str | None, release: Release) -> Outcome:
    """Check the changelog of the tagged commit, or of the working tree if there is no tag."""
    outcome = Outcome("changelog")
    text = _changelog(repository, tag)
    if text is None:
        outcome.problems.append(f"{CHANGELOG} is missing{f' at {tag}' if tag else ''}")
        return outcome
    outcome.problems.extend(changelog_problems(text, str(release)))
    outcome.summary = (
        f"## [{release}] has entries, {' and '.join(REQUIRED_SUBSECTIONS)} among them, and a link"
    )
    return outcome


def _changelog(repository: Path, tag: str | None) -> str | None:
    """The changelog at ``tag``, or in the working tree; None if it has none."""
    if tag is None:
        path = repository / CHANGELOG
        return path.read_text(encoding="utf-8") if path.is_file() else None
    shown = subprocess.run(
        ["git", "show", f"refs/tags/{tag}:{CHANGELOG}"],
        cwd=repository,
        capture_output=True,
        encoding="utf-8",
        check=False,
    )
    return shown.stdout if shown.returncode == 0 else None


def changelog_problems(text: str, version: str) -> list[str]:
    """What keeps ``text``, a changelog, from documenting the release ``version``."""
    lines = text.splitlines()
    example = f"## [{version}] - {date.today().isoformat()}"
    starts = [
        (index, match["rest"])
        for index, line in enumerate(lines)
        if (match := SECTION.match(line)) and match["name"] == version
    ]
    problems: list[str] = []
    if not starts:
        problems.append(
            f"{CHANGELOG} has no section for {version}: add `{example}` below "
            "`## [Unreleased]`, above the entries it releases"
        )
    elif len(starts) > 1:
        numbers = ", ".join(str(index + 1) for index, _ in starts)
        problems.append(f"{CHANGELOG} has {len(starts)} sections for {version} (lines {numbers})")
    else:
        problems.extend(_section_problems(lines, *starts[0], version, example))
    if not any(
        (match := LINK_REFERENCE.match(line)) and match["name"] == version for line in lines
    ):
        problems.append(
            f"{CHANGELOG} has no link reference for {version}: add `[{version}]: <URL of the "
            "release, or of the compare view from the previous tag>` to the links at the bottom"
        )
    return problems


def _section_problems(
    lines: list[str], start: int, rest: str, version: str, example: str
) -> list[str]:
    problems: list[str] = []
    heading = lines[start]
    dated = DATED.match(rest)
    if dated is None:
        problems.append(f"the heading `{heading}` (line {start + 1}) is not `{example}`")
    else:
        try:
            date.fromisoformat(dated["date"])
        except ValueError:
            problems.append(f"the heading `{heading}` (line {start + 1}) has no valid date")
    body = _section_body(lines, start)
    if not any(line.strip() for line in body):
        problems.append(f"the section for {version} is empty: move the Unreleased entries into it")
    subsections = _subsections(body)
    purposes = {
        "Generated services": "what changed in the services the template generates",
        "Updating": "what `copier update` does to services generated from earlier releases",
    }
    for name in REQUIRED_SUBSECTIONS:
        if name not in subsections:
            problems.append(
                f"the section for {version} has no `### {name}`: say {purposes[name]} "
                "(write 'Nothing.' if that is so)"
            )
        elif not any(line.strip() for line in subsections[name]):
            problems.append(
                f"`### {name}` of {version} is empty: say {purposes[name]} "
                "(write 'Nothing.' if that is so)"
            )
    return problems


def _section_body(lines: list[str], start: int) -> list[str]:
    """The lines of the section whose heading is ``lines[start]``, up to the next one."""
    end = next(
        (
            index
            for index in range(start + 1, len(lines))
            if lines[index].startswith("## ") or LINK_REFERENCE.match(lines[index])
        ),
        len(lines),
    )
    return lines[start + 1 : end]


def _subsections(body: list[str]) -> dict[str, list[str]]:
    """The ``### Name`` subsections of a section's ``body``: name to lines."""
    subsections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in body:
        if match := SUBSECTION.match(line):
            current = subsections.setdefault(match["name"], [])
        elif current is not None:
            current.append(line)
    return subsections


def release_subsection(text: str, version: str, name: str) -> list[str]:
    """The lines of ``### name`` in the changelog section of ``version`` (none if absent)."""
    lines = text.splitlines()
    starts = [
        index
        for index, line in enumerate(lines)
        if (match := SECTION.match(line)) and match["name"] == version
    ]
    if len(starts) != 1:
        return []  # The changelog check reports it.
    return _subsections(_section_body(lines, starts[0])).get(name, [])


def _check_paths(repository: Path, tag: str, release: Release) -> tuple[Outcome, Outcome]:
    """Check that updating to ``tag`` deletes no path and changes no history of a service.

    Both checks compare the same renders of the previous release and this one.
    """
    previous = _previous_release(repository, release)
    if previous is None:
        if _git(repository, "rev-parse", "--is-shallow-repository").strip() == "true":
            problem = (
                f"the repository is a shallow clone and has no release tag before {tag}: "
                "the previous release may just be missing; fetch the whole history and its "
                "tags (`git fetch --unshallow --tags`)"
            )
            return (
                Outcome("paths", problems=[problem]),
                Outcome("histories", "needs the previous release", skipped=True),
            )
        return (
            Outcome("paths", f"no release tag before {tag}: no service to update", skipped=True),
            Outcome("histories", f"no release tag before {tag}: no history shipped", skipped=True),
        )
    updating = release_subsection(_changelog(repository, tag) or "", str(release), "Updating")
    try:
        findings = check_paths(
            repository, tag=tag, previous=previous.tag, updating=updating, version=str(release)
        )
    except PathsError as error:
        return (
            Outcome("paths", problems=[str(error)]),
            Outcome("histories", "needs the renders of the paths check", skipped=True),
        )
    return _outcome("paths", findings.paths), _outcome("histories", findings.histories)


def _outcome(topic: str, finding: Finding) -> Outcome:
    return Outcome(topic, finding.summary, list(finding.problems))


def _previous_release(repository: Path, release: Release) -> Release | None:
    """The highest release tagged below ``release``, if there is one."""
    tagged = (Release.from_tag(tag) for tag in _git(repository, "tag", "--list").split())
    return max((other for other in tagged if other is not None and other < release), default=None)


def _check_template(repository: Path, tag: str, release: Release) -> Outcome:
    # Imported here: copier takes a second and a half to import, and only this check needs it.
    import copier  # noqa: PLC0415

    outcome = Outcome("template")
    expected = release.requirement
    with tempfile.TemporaryDirectory(prefix="release-render-") as directory:
        service = Path(directory) / "service"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # The checks above report a dirty tree.
                copier.run_copy(
                    str(repository), str(service), vcs_ref=tag, defaults=True, quiet=True
                )
            answers = yaml.safe_load((service / ".copier-answers.yml").read_text())
            pyproject = tomllib.loads((service / "pyproject.toml").read_text())
        except Exception as error:  # Whatever breaks the render is the problem.
            outcome.problems.append(f"copier cannot render the template at {tag}: {error}")
            return outcome
    requirements = [
        requirement
        for requirement in map(Requirement, pyproject["project"].get("dependencies", []))
        if canonicalize_name(requirement.name) == "shadow-sdk"
    ]
    ranges = [str(requirement.specifier) for requirement in requirements]
    if ranges != [str(SpecifierSet(expected.removeprefix("shadow-sdk")))]:
        outcome.problems.append(
            f"rendered at {tag} (recorded as _commit {answers.get('_commit')!r}), the "
            f"service accepts shadow-sdk {' and '.join(ranges) or 'in no range'} by default, "
            f"not {expected.removeprefix('shadow-sdk')}: see sdk_version in copier.yml"
        )
    source = pyproject.get("tool", {}).get("uv", {}).get("sources", {}).get("shadow-sdk", {})
    if source.get("tag") != tag:
        outcome.problems.append(
            f"rendered at {tag}, the service installs shadow-sdk from {source or 'nowhere'}, "
            f"not from the kit's repository at {tag}: see sdk_source in copier.yml"
        )
    outcome.summary = f"services generated from {tag} depend on {expected} at {tag}"
    return outcome


def _tag_at_head(repository: Path) -> str:
    tags = _git(repository, "tag", "--points-at", "HEAD").split()
    releases = [tag for tag in tags if TAG.fullmatch(tag)]
    if len(tags) == 1:
        return tags[0]
    if len(releases) == 1:
        return releases[0]
    if not tags:
        raise ReleaseError(
            "HEAD has no tag, and no tag was given: tag the release commit "
            "(`git tag -a vX.Y.Z -m 'Release X.Y.Z'`), or name the tag: "
            "`nox -s release -- vX.Y.Z`"
        )
    raise ReleaseError(f"HEAD has several tags ({', '.join(tags)}): name the one to check")


def _tag_commit(repository: Path, tag: str) -> str | None:
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}"],
        cwd=repository,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def _toplevel(path: Path) -> Path:
    try:
        return Path(_git(path, "rev-parse", "--show-toplevel").strip())
    except ReleaseError as error:
        raise ReleaseError(f"{path} is not in a git repository: {error}") from error


def _git(repository: Path, *args: str) -> str:
    try:
        result = subprocess.run(
            ["git", *args], cwd=repository, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as error:
        stderr = getattr(error, "stderr", "") or ""
        raise ReleaseError(f"`git {' '.join(args)}` failed: {stderr.strip() or error}") from error
    return result.stdout


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Check that a release tag is ready to push.",
        epilog="Every problem is reported; the exit status is 1 if there is any.",
    )
    parser.add_argument(
        "tag", nargs="?", help="the tag to check, vMAJOR.MINOR.PATCH (default: the tag at HEAD)"
    )
    parser.add_argument(
        "--repository",
        type=Path,
        default=ROOT,
        help="the repository to check (default: the one this script is in)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
