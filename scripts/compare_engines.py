"""Render answer sets with copier and with cookiecutter, and fail unless they agree.

    python scripts/compare_engines.py [ANSWER SET ...] [--keep DIR]

Every answer set of ``scripts/answer-sets.toml`` (or those named) is rendered from this
checkout by ``copier copy`` and by ``cookiecutter --no-input``, with the same answers
(plus shadow-sdk from this checkout), and the two services compared: the same files, the
same bytes, the same modes, and answers files that record the same answers. ``nox -s
engines`` runs it. Both engines read the working tree; with uncommitted changes copier
records a commit of its own, so ``_commit`` is compared only in a clean checkout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ANSWER_SETS: dict[str, dict[str, str]] = tomllib.loads(
    (ROOT / "scripts" / "answer-sets.toml").read_text(encoding="utf-8")
)
SDK_FROM_CHECKOUT = {"sdk_source": "checkout", "sdk_checkout": str(ROOT)}
ANSWERS_FILE = ".copier-answers.yml"


def render_with_copier(destination: Path, answers: Mapping[str, str]) -> Path:
    """``copier copy`` this checkout's HEAD (with its uncommitted changes) into ``destination``."""
    data = [f"--data={key}={value}" for key, value in answers.items()]
    _run(
        [
            "copier",
            "copy",
            "--defaults",
            "--quiet",
            "--vcs-ref=HEAD",
            *data,
            str(ROOT),
            str(destination),
        ]
    )
    return destination


def render_with_cookiecutter(output: Path, answers: Mapping[str, str]) -> Path:
    """``cookiecutter --no-input`` this checkout into a new folder of ``output``; returns it.

    A config file of its own keeps cookiecutter's replay and clones out of ``$HOME``.
    """
    output.mkdir(parents=True, exist_ok=True)
    config = output / "cookiecutterrc.yaml"
    config.write_text(
        yaml.safe_dump(
            {"cookiecutters_dir": str(output / "clones"), "replay_dir": str(output / "replay")}
        ),
        encoding="utf-8",
    )
    project = output / "service"
    project.mkdir()
    extra = [f"{key}={value}" for key, value in answers.items()]
    _run(
        [
            "cookiecutter",
            "--no-input",
            "--config-file",
            str(config),
            "--output-dir",
            str(project),
            str(ROOT),
            *extra,
        ]
    )
    (service,) = project.iterdir()
    return service


def differences(by_copier: Path, by_cookiecutter: Path, *, compare_commit: bool) -> list[str]:
    """What differs between two rendered services, one line each; empty when they agree."""
    found: list[str] = []
    left, right = _files(by_copier), _files(by_cookiecutter)
    found += [f"only copier renders {path}" for path in sorted(left.keys() - right.keys())]
    found += [f"only cookiecutter renders {path}" for path in sorted(right.keys() - left.keys())]
    for path in sorted(left.keys() & right.keys()):
        if path == ANSWERS_FILE:
            continue
        if left[path].read_bytes() != right[path].read_bytes():
            found.append(f"{path} differs")
        elif left[path].stat().st_mode != right[path].stat().st_mode:
            found.append(f"{path} has another mode")
    recorded = [
        _answers(service / ANSWERS_FILE, compare_commit) for service in (by_copier, by_cookiecutter)
    ]
    for key in sorted(recorded[0].keys() | recorded[1].keys()):
        if recorded[0].get(key) != recorded[1].get(key):
            found.append(
                f"{ANSWERS_FILE} records {key}: {recorded[1].get(key)!r} "
                f"instead of {recorded[0].get(key)!r}"
            )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Compare the answer sets named (all by default); exit 1 on the first that differs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("answer_sets", nargs="*", choices=[[], *ANSWER_SETS], metavar="ANSWER SET")
    parser.add_argument("--keep", type=Path, help="render into this folder and keep it")
    arguments = parser.parse_args(argv)
    names = arguments.answer_sets or list(ANSWER_SETS)
    work = arguments.keep or Path(tempfile.mkdtemp(prefix="engines-"))
    failed = False
    try:
        for name in names:
            answers = {**SDK_FROM_CHECKOUT, **ANSWER_SETS[name]}
            clean = not _run(["git", "-C", str(ROOT), "status", "--porcelain"], capture=True)
            shutil.rmtree(work / name, ignore_errors=True)
            by_copier = render_with_copier(work / name / "copier", answers)
            by_cookiecutter = render_with_cookiecutter(work / name / "cookiecutter", answers)
            found = differences(by_copier, by_cookiecutter, compare_commit=clean)
            files = len(_files(by_copier))
            unchecked = "" if clean else ", _commit not compared: uncommitted changes"
            print(f"{name}: {'differs' if found else 'identical'} ({files} files{unchecked})")
            for line in found:
                print(f"  {line}")
            failed = failed or bool(found)
    finally:
        if arguments.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def _files(service: Path) -> dict[str, Path]:
    return {
        str(path.relative_to(service)): path
        for path in service.rglob("*")
        if path.is_file() or path.is_symlink()
    }


def _answers(path: Path, compare_commit: bool) -> dict[str, object]:
    recorded = dict(yaml.safe_load(path.read_text(encoding="utf-8")))
    if not compare_commit:
        recorded.pop("_commit", None)
    return recorded


def _run(command: list[str], *, capture: bool = False) -> str:
    environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    completed = subprocess.run(
        command, env=environment, capture_output=True, text=True, check=False
    )
    if completed.returncode:
        sys.exit(f"{' '.join(command[:2])} failed ({completed.returncode}):\n{completed.stderr}")
    return completed.stdout if capture else ""


if __name__ == "__main__":
    sys.exit(main())
