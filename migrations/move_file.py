"""A copier migration that carries a service's own edits of a file the template moved.

copier cannot follow a move by itself. It merges path by path, without rename detection:
an update writes the file at its new path as the new template has it, and deletes the
old path, edits and all. Moving the file before the update (a ``before`` migration) does
not help: the old version of the template has nothing at the new path, so copier merges
against an empty file and every line the service changed becomes a conflict.

So this script runs *after* the update and merges three versions of the file at its new
path with ``git merge-file``, as copier merges files that stayed in place:

- the service's own version, from its last commit (copier updates clean trees only, so
  that commit is the service before the update);
- the old template's version, rendered again from the answers and template commit that
  that commit records;
- the new template's version, which the update has just written at the new path.

The service's edits and the template's changes both arrive; lines that both changed are
left between conflict markers, the service's version first, as copier leaves them. A
file the service had deleted stays deleted. The template runs it from ``copier.yml``::

    _migrations:
      - version: v0.2.0
        when: "{{ _stage == 'after' }}"
        command:
          - "{{ _copier_python }}"
          - "{{ _copier_conf.src_path }}/migrations/move_file.py"
          - deploy/observability/alerts.yml
          - deploy/observability/rules/alerts.yml

Usage: ``move_file.py OLD NEW [ANSWERS_FILE]``, from the service's folder.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import copier
import yaml


def committed(path: str) -> bytes | None:
    """The file at ``path`` (relative to the current folder) in the last commit, or None."""
    shown = subprocess.run(["git", "show", f"HEAD:./{path}"], capture_output=True, check=False)
    return shown.stdout if shown.returncode == 0 else None


def render_old_template(answers_file: str, destination: Path) -> None:
    """Render the template as the last commit's answers file records it, into ``destination``."""
    recorded = committed(answers_file)
    if recorded is None:
        raise SystemExit(f"move_file.py: the last commit has no {answers_file}")
    answers = yaml.safe_load(recorded)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            answers["_src_path"],
            destination,
            data={key: value for key, value in answers.items() if not key.startswith("_")},
            vcs_ref=answers["_commit"],
            answers_file=answers_file,
            defaults=True,
            quiet=True,
            skip_tasks=True,
            unsafe=True,
        )


def move(old: str, new: str, answers_file: str = ".copier-answers.yml") -> int:
    """Carry the service's version of ``old`` into the template's new ``new``."""
    mine = committed(old)
    with tempfile.TemporaryDirectory() as folder:
        render_old_template(answers_file, Path(folder))
        base = Path(folder, old)
        if not base.is_file():
            return 0  # The old template did not render it: nothing moved.
        target = Path(new)
        for leftover in (Path(old), Path(f"{old}.rej")):
            leftover.unlink(missing_ok=True)
        if mine is None:
            # The service had deleted the file: keep it deleted under its new name too.
            target.unlink(missing_ok=True)
            print(f"{old} was deleted: not creating {new}", file=sys.stderr)
            return 0
        if not target.is_file():
            # The new template has no such file: give the service its own back.
            Path(old).write_bytes(mine)
            print(f"{new} is not in the template: kept {old}", file=sys.stderr)
            return 0
        theirs = Path(folder, "after-updating")
        theirs.write_bytes(target.read_bytes())
        target.write_bytes(mine)
        labels = ("before updating", "last update", "after updating")
        merged = subprocess.run(
            ["git", "merge-file", *(f"-L{label}" for label in labels), "--", new, base, theirs],
            check=False,
        )
    if merged.returncode < 0 or merged.returncode > 127:
        raise SystemExit(f"move_file.py: git merge-file failed on {new}")
    conflicts = f" with {merged.returncode} conflict(s) to resolve" if merged.returncode else ""
    print(f"moved {old} to {new}, your changes merged{conflicts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(move(*sys.argv[1:]))
