"""Check the built distributions of shadow-sdk: ``nox -s build`` runs it after ``uv build``.

``twine check --strict`` checks the metadata (it runs first, in the session); this script
checks what the files hold, in the folder given:

1. exactly one wheel and one sdist of ``shadow-sdk``, of the same version;
2. the version the tag gives: the tag given as argument, else a ``vX.Y.Z`` tag at
   HEAD; untagged, a development version, never the build backend's fallback;
3. the wheel holds every module of ``shadow_sdk/`` that git tracks, ``py.typed``, the
   ``shadow`` console script and the ``pytest11`` entry point of the test fixtures;
4. neither holds tests, caches, bytecode, environments or files of the repository that
   are not the SDK's (the template, the docs, the noxfile).

Every problem is reported before the script exits 1.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "shadow_sdk"
TAG = re.compile(r"v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
FALLBACK_VERSION = Version("0.0.0")
"""What hatch-vcs builds without git: a release must never carry it."""
ENTRY_POINTS = {
    ("console_scripts", "shadow"): "shadow_sdk._cli:main",
    ("pytest11", "shadow_sdk"): "shadow_sdk.testing.pytest_plugin",
}
FORBIDDEN = re.compile(
    r"(^|/)(tests?|template|docs|benchmarks|scripts|migrations|build|dist|\.git|\.github|\.nox|"
    r"\.venv|__pycache__|\.mypy_cache|\.pytest_cache|\.ruff_cache)(/|$)"
    r"|\.py[co]$|(^|/)(noxfile\.py|copier\.yml|mkdocs\.yml|\.coverage|\.env)$"
)
"""Paths that are not the SDK's: its tests and tools, caches, bytecode, the template."""
SDIST_FILES = ("PKG-INFO", "pyproject.toml", "README.md", "LICENSE", f"{PACKAGE}/py.typed")


def main(argv: Sequence[str] | None = None) -> int:
    """Check the distributions in the folder given; return the process's exit status."""
    args = _parse(argv)
    problems = check(args.dist, args.tag)
    for problem in problems:
        print(f"  FAIL  {problem}")
    if problems:
        print(f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in {args.dist}.")
        return 1
    for path in sorted(args.dist.iterdir()):
        if path.suffix in {".whl", ".gz"}:
            print(f"  ok    {path.name} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


def check(dist: Path, tag: str | None) -> list[str]:
    """Everything wrong with the wheel and sdist in ``dist``, as sentences."""
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        return [
            f"expected one wheel and one sdist in {dist}, found "
            f"{[path.name for path in [*wheels, *sdists]] or 'none'}: build with `uv build`"
        ]
    try:
        name, version, _, _ = parse_wheel_filename(wheels[0].name)
        sdist_name, sdist_version = parse_sdist_filename(sdists[0].name)
    except (InvalidWheelFilename, InvalidSdistFilename) as error:
        return [str(error)]
    problems = []
    if name != "shadow-sdk" or sdist_name != "shadow-sdk":
        problems.append(f"the distributions are {name} and {sdist_name}, not shadow-sdk")
    if version != sdist_version:
        problems.append(f"the wheel is version {version}, the sdist {sdist_version}")
    problems += _check_version(version, tag or _tag_at_head())
    problems += _check_wheel(wheels[0], version)
    problems += _check_sdist(sdists[0])
    return problems


def _check_version(version: Version, tag: str | None) -> list[str]:
    if tag is not None:
        if not TAG.fullmatch(tag):
            return [f"{tag!r} is not a release tag vMAJOR.MINOR.PATCH"]
        if version != Version(tag[1:]):
            return [
                f"built version {version}, but the tag is {tag}: build from a clean checkout "
                "of the tag, with its git history (`fetch-depth: 0` in CI)"
            ]
        return []
    if version == FALLBACK_VERSION:
        return [
            f"built version {version}, the build backend's fallback: the build did not see "
            "the repository's git history"
        ]
    if not version.is_devrelease:
        return [f"built version {version} without a tag at HEAD: expected a development version"]
    return []


def _check_wheel(wheel: Path, version: Version) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = f"shadow_sdk-{version}.dist-info"
        try:
            entry_points_text = archive.read(f"{dist_info}/entry_points.txt").decode()
            metadata = HeaderParser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
        except KeyError as error:
            return [f"the wheel has no {error.args[0]}"]
    problems = [f"the wheel holds {name}, which is not the SDK's" for name in _forbidden(names)]
    if metadata["Version"] != str(version):
        problems.append(f"the wheel's METADATA says version {metadata['Version']}")
    modules = {f"{PACKAGE}/py.typed", *_tracked_modules()}
    problems += [f"the wheel lacks {module}" for module in sorted(modules - set(names))]
    entry_points = _entry_points(entry_points_text)
    for key, target in ENTRY_POINTS.items():
        if (found := entry_points.get(key)) != target:
            group, name = key
            problems.append(f"the wheel's entry point [{group}] {name} is {found!r}, not {target}")
    return problems


def _check_sdist(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as archive:
        top, *_ = archive.getnames()[0].split("/")
        names = [str(PurePosixPath(name).relative_to(top)) for name in archive.getnames()[1:]]
    problems = [f"the sdist holds {name}, which is not the SDK's" for name in _forbidden(names)]
    problems += [f"the sdist lacks {name}" for name in SDIST_FILES if name not in names]
    return problems


def _entry_points(text: str) -> dict[tuple[str, str], str]:
    """``entry_points.txt`` as {(group, name): target}."""
    found = {}
    group = ""
    for line in map(str.strip, text.splitlines()):
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1]
        elif "=" in line:
            name, _, target = line.partition("=")
            found[group, name.strip()] = target.strip()
    return found


def _forbidden(names: list[str]) -> list[str]:
    return [name for name in names if FORBIDDEN.search(name)]


def _tracked_modules() -> list[str]:
    """The SDK's modules as git tracks them, in wheel form (``shadow_sdk/x.py``)."""
    listed = _git("ls-files", "--", f"{PACKAGE}/*.py")
    return listed.split() if listed is not None else []


def _tag_at_head() -> str | None:
    tags = _git("tag", "--points-at", "HEAD")
    releases = [tag for tag in (tags or "").split() if TAG.fullmatch(tag)]
    return releases[0] if len(releases) == 1 else None


def _git(*args: str) -> str | None:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else None


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Check the built distributions of shadow-sdk.")
    parser.add_argument("dist", type=Path, help="the folder `uv build` wrote them to")
    parser.add_argument(
        "tag", nargs="?", help="the release tag they must carry (default: a tag at HEAD)"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
