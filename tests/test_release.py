"""Releasing: scripts/check_release.py run on tagged copies of this checkout.

Each test checks a real git repository holding this working tree's files: the script
builds it with uv and renders its template with copier, as ``nox -s release`` does.
The paths check gets two releases: v0.1.0 adds two files to the template (one in the
package, one for services without encryption), and v0.2.0 renames the first, or
renders the second only with metrics too, with or without a migration or changelog line.
The histories check gets a v0.2.0 that records a shipped history again in its place and
drops another, or records it again beside the old one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from helpers.repositories import copy_of_checkout, git

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_release.py"

SECTION = """\
## [0.2.0] - 2026-11-26

### Added

- `nox -s release`.

### Generated services

- The README says how to update.

### Updating

- `copier update` changes README.md only.
"""
LINK = "[0.2.0]: https://example.com/shadow-kit/releases/tag/v0.2.0\n"


def check_release(repository: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--repository", str(repository), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


RUNBOOK = "src/{{ package_name }}/runbook.md"
OPERATIONS = "src/{{ package_name }}/operations.md"
PLAINTEXT = "{% if not encryption %}PLAINTEXT.md{% endif %}"
PLAINTEXT_WITH_METRICS = "{% if not encryption and metrics %}PLAINTEXT.md{% endif %}"
MOVE_RUNBOOK = {
    "version": "v0.2.0",
    "when": "{{ _stage == 'after' }}",
    "command": [
        "{{ _copier_python }}",
        "{{ _copier_conf.src_path }}/migrations/move_file.py",
        RUNBOOK,
        OPERATIONS,
        "{{ _copier_conf.answers_file }}",
    ],
}


HISTORIES = "template/tests/replay/histories/"
SCHEDULED = HISTORIES + "{% if 'scheduled' in examples %}scheduled.json{% endif %}"
SCHEDULED_V2 = HISTORIES + "{% if 'scheduled' in examples %}scheduled-v2.json{% endif %}"
TASK_PROCESSING = (
    HISTORIES + "{% if 'task_processing' in examples %}task_processing.json{% endif %}"
)


def recorded_again(path: Path) -> str:
    """The history at ``path`` as a new recording of the same run has it: at another time."""
    history = json.loads(path.read_text())
    assert history["events"][0]["eventTime"] != "2026-11-26T09:00:00Z"
    history["events"][0]["eventTime"] = "2026-11-26T09:00:00Z"
    return json.dumps(history, indent=2) + "\n"


def release_changelog(repository: Path, section: str) -> None:
    """Put ``section`` below Unreleased in place of its entries, link it, and commit."""
    path = repository / "CHANGELOG.md"
    head, _, rest = path.read_text().partition("## [Unreleased]\n")
    following = re.search(r"^(## \[|\[[^\]]+\]: )", rest, flags=re.MULTILINE)
    tail = rest[following.start() :] if following else ""
    path.write_text(f"{head}## [Unreleased]\n\n{section}\n{tail}{LINK}")
    git(repository, "commit", "--quiet", "--all", "--message=Release 0.2.0")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This working tree's files, tracked or new, committed in a repository of their own."""
    return copy_of_checkout(tmp_path_factory.mktemp("release") / "checkout")


@pytest.fixture(scope="module")
def released(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout with a changelog section for 0.2.0, tagged v0.2.0."""
    repository = tmp_path_factory.mktemp("released") / "repository"
    git(checkout.parent, "clone", "--quiet", str(checkout), str(repository))
    release_changelog(repository, SECTION)
    git(repository, "tag", "--annotate", "v0.2.0", "--message=Release 0.2.0")
    return repository


def clone(repository: Path, tmp_path: Path) -> Path:
    """A copy of ``repository`` this test may change, tags included."""
    git(tmp_path, "clone", "--quiet", str(repository), str(tmp_path / "clone"))
    return tmp_path / "clone"


@pytest.fixture(scope="module")
def first_release(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout with a runbook in the package and a note for unencrypted services: v0.1.0."""
    repository = tmp_path_factory.mktemp("first") / "repository"
    git(checkout.parent, "clone", "--quiet", str(checkout), str(repository))
    steps = "".join(f"{step}. Check the worker's /ready, then its logs.\n" for step in range(12))
    (repository / "template" / RUNBOOK).write_text(f"# Runbook\n\n{steps}")
    (repository / "template" / PLAINTEXT).write_text("Temporal stores these payloads as sent.\n")
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "--message=Add a runbook and a plaintext note")
    git(repository, "tag", "--annotate", "v0.1.0", "--message=Release 0.1.0")
    return repository


def second_release(
    first: Path,
    destination: Path,
    *,
    rename: bool = False,
    narrow: bool = False,
    migrations: tuple[dict[str, object], ...] = (),
    updating: str = "",
    change: Callable[[Path], object] | None = None,
) -> Path:
    """``first`` released again as v0.2.0: the runbook renamed, or the note narrowed.

    ``migrations`` go into copier.yml, ``updating`` into the changelog's ### Updating;
    ``change`` changes the repository's files in any other way.
    """
    repository = clone(first, destination)
    if change is not None:
        change(repository)
        git(repository, "add", "--all")
    if rename:
        git(repository, "mv", f"template/{RUNBOOK}", f"template/{OPERATIONS}")
    if narrow:
        git(repository, "mv", f"template/{PLAINTEXT}", f"template/{PLAINTEXT_WITH_METRICS}")
    if migrations:
        config = yaml.safe_load((repository / "copier.yml").read_text())
        config.setdefault("_migrations", []).extend(migrations)
        (repository / "copier.yml").write_text(yaml.safe_dump(config, sort_keys=False, width=100))
    release_changelog(repository, SECTION + updating)
    git(repository, "tag", "--annotate", "v0.2.0", "--message=Release 0.2.0")
    return repository


@pytest.fixture(scope="module")
def losing(
    first_release: Path, tmp_path_factory: pytest.TempPathFactory
) -> subprocess.CompletedProcess[str]:
    """The check's report of a v0.2.0 that renames and narrows without saying so.

    A migration of v0.1.0 (which updates to v0.2.0 do not run) moves the runbook, and
    the changelog mentions the rename without saying the file is deleted: neither counts.
    """
    repository = second_release(
        first_release,
        tmp_path_factory.mktemp("losing"),
        rename=True,
        narrow=True,
        migrations=({**MOVE_RUNBOOK, "version": "v0.1.0"},),
        updating="- `src/<package>/runbook.md` is now `src/<package>/operations.md`.\n",
    )
    return check_release(repository, "v0.2.0")


@pytest.fixture(scope="module")
def checked(released: Path) -> subprocess.CompletedProcess[str]:
    """The check of the good release, the repository's first."""
    return check_release(released, "v0.2.0")


def test_a_good_release_passes(checked: subprocess.CompletedProcess[str]) -> None:
    """Tag at a clean HEAD, version, changelog and the template's SDK pin all agree."""
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "FAIL" not in checked.stdout
    assert "the build derives 0.2.0" in checked.stdout
    assert "services generated from v0.2.0 depend on shadow-sdk>=0.2.0,<0.3" in checked.stdout
    assert "v0.2.0 is ready: push it with `git push origin v0.2.0`." in checked.stdout


def test_a_first_release_skips_the_paths_check(
    checked: subprocess.CompletedProcess[str],
) -> None:
    """No earlier release tag: no service can lose a file by updating, and the check says so."""
    assert "skip  paths      no release tag before v0.2.0: no service to update\n" in (
        checked.stdout
    )
    assert "skip  histories  no release tag before v0.2.0: no history shipped\n" in (checked.stdout)


def test_the_tag_at_head_is_checked_by_default(released: Path) -> None:
    """Without an argument the script checks the tag HEAD carries."""
    result = check_release(released)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Release v0.2.0 of ")


def test_without_a_tag_at_head_it_asks_for_one(checkout: Path) -> None:
    """An untagged HEAD and no argument: nothing to check, and the message says what to do."""
    result = check_release(checkout)

    assert result.returncode == 1
    assert "HEAD has no tag, and no tag was given" in result.stderr
    assert "nox -s release -- vX.Y.Z" in result.stderr


def test_a_tag_not_at_head_fails(released: Path, tmp_path: Path) -> None:
    """A commit after the tag: the release would not be what was checked."""
    repository = clone(released, tmp_path)
    git(repository, "commit", "--quiet", "--allow-empty", "--message=After the release")
    head = git(repository, "rev-parse", "HEAD")[:12]

    result = check_release(repository, "v0.2.0")

    assert result.returncode == 1
    assert re.search(
        rf"FAIL  tag +v0\.2\.0 points at \w{{12}}, not at HEAD \({head}\)", result.stdout
    )
    assert "FAIL  version    the build derives version 0.2.1.dev1+g" in result.stdout
    assert "ok    changelog" in result.stdout


def test_a_dirty_tree_fails(released: Path, tmp_path: Path) -> None:
    """Changed and untracked files: the build would not be that of the tagged commit."""
    repository = clone(released, tmp_path)
    with (repository / "README.md").open("a") as readme:
        readme.write("\nNot committed.\n")
    (repository / "notes.txt").write_text("Not tracked.\n")

    result = check_release(repository, "v0.2.0")

    assert result.returncode == 1
    assert "FAIL  tree       the working tree is not clean (README.md, notes.txt)" in result.stdout
    assert "FAIL  version    the build derives version 0.2.1.dev0+g" in result.stdout
    assert "ok    tag" in result.stdout


def test_a_missing_changelog_section_fails(checkout: Path, tmp_path: Path) -> None:
    """Tagged without a changelog section: the release would not say what it brings."""
    repository = clone(checkout, tmp_path)
    git(repository, "tag", "v0.2.0")

    result = check_release(repository, "v0.2.0")

    assert result.returncode == 1
    assert "FAIL  changelog  CHANGELOG.md has no section for 0.2.0" in result.stdout
    assert "FAIL  changelog  CHANGELOG.md has no link reference for 0.2.0" in result.stdout
    for passed in ("tag", "tree", "version", "template"):
        assert f"ok    {passed} " in result.stdout
    assert result.stdout.endswith("v0.2.0 is not ready: 2 problems above.\n")


@pytest.mark.parametrize(
    ("section", "problems"),
    [
        (
            "## [0.2.0] - 2026-11-26\n\n### Added\n\n- `nox -s release`.\n",
            [
                "the section for 0.2.0 has no `### Generated services`",
                "the section for 0.2.0 has no `### Updating`",
            ],
        ),
        (
            SECTION.replace("- `copier update` changes README.md only.\n", ""),
            ["`### Updating` of 0.2.0 is empty"],
        ),
        (
            SECTION.replace(" - 2026-11-26", ""),
            ["the heading `## [0.2.0]` (line"],
        ),
    ],
    ids=["no subsections", "empty subsection", "no date"],
)
def test_a_section_without_what_the_convention_requires_fails(
    checkout: Path, tmp_path: Path, section: str, problems: list[str]
) -> None:
    """Each release section says what changed for services and what an update does, dated."""
    repository = clone(checkout, tmp_path)
    release_changelog(repository, section)
    git(repository, "tag", "v0.2.0")

    result = check_release(repository, "v0.2.0")

    assert result.returncode == 1
    for problem in problems:
        assert f"FAIL  changelog  {problem}" in result.stdout
    assert result.stdout.count("FAIL") == len(problems), result.stdout


@pytest.mark.parametrize("tag", ["0.2.0", "v0.2", "v0.2.0-rc.1", "v01.2.0"])
def test_a_malformed_tag_fails(released: Path, tmp_path: Path, tag: str) -> None:
    """Only vMAJOR.MINOR.PATCH releases: the SDK version and the template pin need it."""
    repository = clone(released, tmp_path)
    git(repository, "tag", tag)

    result = check_release(repository, tag)

    assert result.returncode == 1
    assert f"FAIL  tag        {tag!r} is not a release tag: name it vMAJOR.MINOR.PATCH" in (
        result.stdout
    )
    assert "skip  template   needs a vMAJOR.MINOR.PATCH tag" in result.stdout


def test_a_tag_that_does_not_exist_fails(released: Path) -> None:
    """Checking before tagging names the command that tags."""
    result = check_release(released, "v0.3.0")

    assert result.returncode == 1
    assert "FAIL  tag        v0.3.0 does not exist: commit the release, then `git tag -a" in (
        result.stdout
    )
    assert "CHANGELOG.md has no section for 0.3.0" in result.stdout
    assert "skip  template   needs the tag v0.3.0 to exist" in result.stdout


def test_a_file_renamed_without_a_migration_fails(
    losing: subprocess.CompletedProcess[str],
) -> None:
    """copier would delete the old path with the service's edits: the report gives the fix."""
    assert losing.returncode == 1, losing.stdout + losing.stderr
    assert (
        "FAIL  paths      src/<package>/runbook.md (answer sets defaults, custom, plain, "
        "controls) is rendered by v0.1.0 but not by v0.2.0: `copier update` would delete "
        "it, and a service's edits with it.\n"
        "                   Git sees it renamed to src/<package>/operations.md: add to "
        "_migrations in copier.yml:\n"
        "                     - version: v0.2.0\n"
        "                       when: \"{{ _stage == 'after' }}\"\n"
        "                       command:\n"
        '                         - "{{ _copier_python }}"\n'
        '                         - "{{ _copier_conf.src_path }}/migrations/move_file.py"\n'
        '                         - "src/{{ package_name }}/runbook.md"\n'
        '                         - "src/{{ package_name }}/operations.md"\n'
        '                         - "{{ _copier_conf.answers_file }}"\n'
        "                   If it is deleted on purpose, add to ### Updating of 0.2.0 in "
        "CHANGELOG.md:\n"
        "                     - `copier update` deletes `src/<package>/runbook.md`, which "
        "the template no longer generates.\n"
    ) in losing.stdout
    for passed in ("tag", "tree", "version", "changelog", "template"):
        assert f"ok    {passed} " in losing.stdout
    assert losing.stdout.endswith("v0.2.0 is not ready: 2 problems above.\n")


def test_a_file_an_answer_no_longer_renders_is_caught(
    losing: subprocess.CompletedProcess[str],
) -> None:
    """A condition narrowed between releases loses the file of the services it now excludes."""
    assert losing.returncode == 1, losing.stdout + losing.stderr
    assert (
        "FAIL  paths      PLAINTEXT.md (answer set plain) is rendered by v0.1.0 but not by "
        "v0.2.0 (which still renders it for controls): `copier update` would delete it"
    ) in losing.stdout
    assert "- `copier update` deletes `PLAINTEXT.md` from services whose answers no " in (
        losing.stdout
    )
    assert '- "<its new path>"' in losing.stdout


def test_a_move_migration_keeps_the_release_passing(first_release: Path, tmp_path: Path) -> None:
    """The rename runs migrations/move_file.py on updates from v0.1.0: nothing is lost."""
    repository = second_release(first_release, tmp_path, rename=True, migrations=(MOVE_RUNBOOK,))

    result = check_release(repository, "v0.2.0")

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(
        r"ok    paths      every path v0\.1\.0 renders for the answer sets defaults, custom, "
        r"plain, controls is rendered by v0\.2\.0 too, or moved by _migrations \(1\), or "
        r"deleted as ### Updating says \(0\)\n",
        result.stdout,
    )


def test_a_move_migration_to_a_path_not_rendered_fails(first_release: Path, tmp_path: Path) -> None:
    """A typo in the migration's target would carry the service's edits into a stray file."""
    typo = {**MOVE_RUNBOOK, "command": [*MOVE_RUNBOOK["command"][:3], OPERATIONS + "x",
                                        MOVE_RUNBOOK["command"][4]]}  # fmt: skip
    repository = second_release(first_release, tmp_path, rename=True, migrations=(typo,))

    result = check_release(repository, "v0.2.0")

    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "a migration moves src/release_train/runbook.md to src/release_train/operations.mdx, "
        "which v0.2.0 does not render for the answer set controls"
    ) in result.stdout


def test_a_changelog_line_deleting_the_file_keeps_the_release_passing(
    first_release: Path, tmp_path: Path
) -> None:
    """Dropped on purpose, and ### Updating says so: services' owners read it before updating."""
    repository = second_release(
        first_release,
        tmp_path,
        narrow=True,
        updating="- `copier update` deletes `PLAINTEXT.md` from services without metrics.\n",
    )

    result = check_release(repository, "v0.2.0")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "or moved by _migrations (0), or deleted as ### Updating says (1)" in result.stdout


@pytest.fixture(scope="module")
def rewriting(
    first_release: Path, tmp_path_factory: pytest.TempPathFactory
) -> subprocess.CompletedProcess[str]:
    """The check's report of a v0.2.0 that changes one shipped history and drops another.

    The scheduled history is recorded again in its place; the task_processing one goes,
    and ### Updating says so: that excuses a deleted path, never a history.
    """

    def rewrite(repository: Path) -> None:
        (repository / SCHEDULED).write_text(recorded_again(repository / SCHEDULED))
        (repository / TASK_PROCESSING).unlink()

    repository = second_release(
        first_release,
        tmp_path_factory.mktemp("rewriting"),
        change=rewrite,
        updating="- `copier update` deletes `tests/replay/histories/task_processing.json`.\n",
    )
    return check_release(repository, "v0.2.0")


def test_a_shipped_history_changed_fails(rewriting: subprocess.CompletedProcess[str]) -> None:
    """Services replay it for runs the older code started: the report names it and the fix."""
    assert rewriting.returncode == 1, rewriting.stdout + rewriting.stderr
    assert (
        "FAIL  histories  tests/replay/histories/scheduled.json (answer sets defaults, "
        "controls), which v0.1.0 ships, is changed in v0.2.0: histories are append-only, "
        "since services replay each one for the runs that older code started.\n"
        "                   Restore it as v0.1.0 has it: `git checkout v0.1.0 -- "
        f'"{SCHEDULED}"`.\n'
        "                   Then record the new history beside it under a new name: "
        "`nox -s histories -- scheduled --as scheduled-v2` in a service rendered from this "
        f"checkout, added to the template as `{SCHEDULED_V2}`.\n"
    ) in rewriting.stdout
    for passed in ("tag", "tree", "version", "changelog", "template", "paths"):
        assert f"ok    {passed} " in rewriting.stdout
    assert rewriting.stdout.endswith("v0.2.0 is not ready: 2 problems above.\n")


def test_a_shipped_history_gone_fails(rewriting: subprocess.CompletedProcess[str]) -> None:
    """A history the previous release shipped must be there still, whatever the changelog says."""
    assert rewriting.returncode == 1, rewriting.stdout + rewriting.stderr
    assert (
        "FAIL  histories  tests/replay/histories/task_processing.json (answer sets defaults, "
        "plain), which v0.1.0 ships, is missing from v0.2.0: histories are append-only"
    ) in rewriting.stdout
    assert f'`git checkout v0.1.0 -- "{TASK_PROCESSING}"`' in rewriting.stdout


def test_a_new_history_beside_the_shipped_one_passes(first_release: Path, tmp_path: Path) -> None:
    """A new recording under a new name leaves the shipped history as it was: the fix.

    Seven histories: the six examples', and the ledger's of the answer set with a database.
    """

    def record_beside(repository: Path) -> None:
        (repository / SCHEDULED_V2).write_text(recorded_again(repository / SCHEDULED))

    repository = second_release(first_release, tmp_path, change=record_beside)

    result = check_release(repository, "v0.2.0")

    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "ok    histories  every history v0.1.0 renders (7) is rendered by v0.2.0 as it was; "
        "1 new beside them\n"
    ) in result.stdout
