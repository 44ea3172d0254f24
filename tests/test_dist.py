"""The distributions of shadow-sdk: scripts/check_dist.py on real builds of this checkout.

A copy of this working tree is committed and tagged v1.4.2, then built with uv as
``nox -s build`` builds it. The good build passes; copies of it with something wrong
(a test inside, py.typed missing, an entry point gone, the wrong version) fail, each
with a sentence that names what is wrong.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers.repositories import copy_of_checkout, git
from helpers.tools import tool

pytestmark = pytest.mark.slow

TAG = "v1.4.2"
DIST_INFO = "shadow_sdk-1.4.2.dist-info"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout, tagged as a release."""
    repository = copy_of_checkout(tmp_path_factory.mktemp("kit") / "kit")
    git(repository, "tag", "-a", TAG, "--message=Release 1.4.2")
    return repository


@pytest.fixture(scope="module")
def built(release: Path) -> Path:
    """The release's wheel and sdist, built as `nox -s build` builds them."""
    dist = release / "build" / "dist"
    subprocess.run(
        [tool("uv"), "build", "--quiet", "--out-dir", str(dist)],
        cwd=release,
        check=True,
        timeout=300,
    )
    return dist


def check_dist(repository: Path, dist: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(repository / "scripts" / "check_dist.py"), str(dist), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def tampered(dist: Path, tmp_path: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of ``dist`` whose wheel has members added (bytes) or removed (None)."""
    copy = tmp_path / "dist"
    shutil.copytree(dist, copy)
    (wheel,) = copy.glob("*.whl")
    original = wheel.with_suffix(".orig")
    wheel.rename(original)
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(wheel, "w") as target:
        for item in source.infolist():
            if item.filename not in change:
                target.writestr(item, source.read(item))
        for name, data in change.items():
            if data is not None:
                target.writestr(name, data)
    original.unlink()
    return copy


def test_the_release_build_passes(release: Path, built: Path) -> None:
    """Version from the tag, py.typed, both entry points, every module, nothing else."""
    result = check_dist(release, built)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "  ok    shadow_sdk-1.4.2-py3-none-any.whl" in result.stdout
    assert "  ok    shadow_sdk-1.4.2.tar.gz" in result.stdout


def test_the_tag_given_must_be_the_built_version(release: Path, built: Path) -> None:
    """Checking a build against another tag fails, naming both versions."""
    result = check_dist(release, built, "v1.5.0")

    assert result.returncode == 1
    assert "built version 1.4.2, but the tag is v1.5.0" in result.stdout


def test_an_untagged_build_carries_a_development_version(tmp_path: Path) -> None:
    """A commit after the last tag builds a .dev version; never the fallback 0.0.0."""
    repository = copy_of_checkout(tmp_path / "kit")
    git(repository, "tag", "-a", TAG, "--message=Release 1.4.2")
    git(repository, "commit", "--quiet", "--allow-empty", "--message=After the release")
    subprocess.run(
        [tool("uv"), "build", "--quiet", "--out-dir", str(tmp_path / "dist")],
        cwd=repository,
        check=True,
        timeout=300,
    )

    result = check_dist(repository, tmp_path / "dist")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "shadow_sdk-1.4.3.dev1+g" in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tests/test_api.py": b"def test(): pass\n"}, "holds tests/test_api.py, which is not"),
        (
            {"shadow_sdk/__pycache__/_cli.cpython-311.pyc": b"\0"},
            "holds shadow_sdk/__pycache__/_cli.cpython-311.pyc",
        ),
        ({"shadow_sdk/py.typed": None}, "the wheel lacks shadow_sdk/py.typed"),
        ({"shadow_sdk/_worker.py": None}, "the wheel lacks shadow_sdk/_worker.py"),
        (
            {
                f"{DIST_INFO}/entry_points.txt": b"[console_scripts]\nshadow = shadow_sdk._cli:main\n"
            },
            "entry point [pytest11] shadow_sdk is None",
        ),
    ],
    ids=["a test", "bytecode", "no py.typed", "a module missing", "no pytest plugin"],
)
def test_a_wrong_wheel_fails_naming_what_is_wrong(
    release: Path, built: Path, tmp_path: Path, change: dict[str, bytes | None], message: str
) -> None:
    """Each defect of the wheel is reported as a sentence, and the check exits 1."""
    result = check_dist(release, tampered(built, tmp_path, change))

    assert result.returncode == 1
    assert message in result.stdout


def test_a_missing_sdist_fails(release: Path, built: Path, tmp_path: Path) -> None:
    """Both distributions are published: a folder with the wheel alone is refused."""
    dist = tmp_path / "dist"
    dist.mkdir()
    for wheel in built.glob("*.whl"):
        shutil.copy(wheel, dist)

    result = check_dist(release, dist)

    assert result.returncode == 1
    assert "expected one wheel and one sdist" in result.stdout
