"""The routes by which a generated service gets shadow-sdk, each proven end to end.

A copy of this checkout, committed and tagged as release v0.7.0, stands in for the kit's
repository on a hosting service. From it:

- the *index* route: the release's wheel, built and checked by ``nox -s build``, is served
  by a PEP 503 index on a loopback port; a service rendered to use that index locks,
  syncs with ``--locked`` and passes its tests, and a higher version of shadow-sdk on
  another index that uv consults first is never picked (without the pin, it would be:
  the attack is shown);
- the *git* route: the repository, served as a ``file://`` remote, is rendered from its
  URL; the service locks shadow-sdk to the tag's commit, syncs and passes its tests;
- ``copier check-update`` finds newer releases of a service generated from a git URL and
  from an absolute path.

The *checkout* route is what every other template test and ``nox -s template`` use.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import subprocess
import sys
import threading
import tomllib
import warnings
from pathlib import Path

import copier
import pytest
import yaml
from helpers.repositories import copy_of_checkout, git
from helpers.services import run as run_in
from helpers.tools import tool

pytestmark = pytest.mark.slow

RELEASE = "v0.7.0"
# The service's own tests need the task processing example only: it has workflow,
# activity and end-to-end command tests, and keeps this module at about a minute a route.
ANSWERS = {"examples": ["task_processing"], "deployment": []}


def run(*command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``cwd`` as a developer would; fail with its output if it fails."""
    result = run_in(cwd, *command, **env)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result


def build_wheel(repository: Path, destination: Path) -> Path:
    run(tool("uv"), "build", "--wheel", "--quiet", "--out-dir", str(destination), cwd=repository)
    (wheel,) = destination.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's files (as git sees them, changes included), committed and tagged."""
    repository = copy_of_checkout(tmp_path_factory.mktemp("kit") / "shadow-temporal-kit")
    git(repository, "tag", "-a", RELEASE, "--message=Release 0.7.0")
    return repository


@pytest.fixture(scope="module")
def remote(kit: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The kit as a hosting service would serve it: a bare repository behind a URL."""
    bare = tmp_path_factory.mktemp("hosting") / "shadow-temporal-kit.git"
    git(kit.parent, "clone", "--quiet", "--bare", str(kit), str(bare))
    return bare.as_uri()


class PackageIndex:
    """A PEP 503 simple index on a loopback port, serving the wheels it is given.

    It records every path requested, to show where uv really looked.
    """

    def __init__(self, root: Path, wheels: list[Path]) -> None:
        self.requests: list[str] = []
        files = root / "files"
        project = root / "simple" / "shadow-sdk"
        files.mkdir(parents=True)
        project.mkdir(parents=True)
        links = []
        for wheel in wheels:
            shutil.copy(wheel, files / wheel.name)
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            links.append(f'<a href="../../files/{wheel.name}#sha256={digest}">{wheel.name}</a>')
        (project / "index.html").write_text(
            "<!DOCTYPE html>\n<html><body>\n" + "<br>\n".join(links) + "\n</body></html>\n"
        )
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: object, **kwargs: object) -> None:
                super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

            def log_message(self, format: str, *args: object) -> None:
                requests.append(self.path)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PackageIndex:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def wheels(kit: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The release's wheel, and a look-alike of a higher version with code of its own.

    The release's is the wheel a release publishes: ``nox -s build -- v0.7.0`` builds it
    and checks its metadata, contents and version.
    """
    run(tool("nox"), "--non-interactive", "-s", "build", "--", RELEASE, cwd=kit)
    (release,) = (kit / "build" / "dist").glob("*.whl")
    impostor = tmp_path_factory.mktemp("impostor") / "kit"
    git(kit.parent, "clone", "--quiet", str(kit), str(impostor))
    (impostor / "shadow_sdk" / "_impostor.py").write_text("STOLEN = True\n")
    git(impostor, "add", "--all")
    git(impostor, "commit", "--quiet", "--message=Not the kit")
    git(impostor, "tag", "v0.7.99")
    return {"release": release, "impostor": build_wheel(impostor, impostor.parent / "dist")}


def render(template: str, destination: Path, **answers: object) -> Path:
    """Render the kit's release as a team would: from its URL or path, at the release tag."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            template,
            str(destination),
            data={**ANSWERS, **answers},
            vcs_ref=RELEASE,
            defaults=True,
            quiet=True,
        )
    git(destination, "init", "--quiet")
    return destination


def locked_sdk(service: Path) -> dict[str, object]:
    lock = tomllib.loads((service / "uv.lock").read_text())
    (package,) = [package for package in lock["package"] if package["name"] == "shadow-sdk"]
    return dict(package)


def lock_sync_and_test(service: Path, **env: str) -> None:
    """What the service's README asks for on day one, then its own tests."""
    uv = tool("uv")
    run(uv, "lock", cwd=service, **env)
    run(uv, "sync", "--locked", cwd=service, **env)
    result = run(uv, "run", "--locked", "pytest", "-q", "-p", "no:cacheprovider", cwd=service)
    assert " passed" in result.stdout, result.stdout


def test_the_index_route_installs_the_release_from_that_index(
    remote: str, wheels: dict[str, Path], tmp_path: Path
) -> None:
    """Locked to the index's file and hash, synced with --locked, and the service's tests pass."""
    with PackageIndex(tmp_path / "index", [wheels["release"]]) as index:
        service = render(remote, tmp_path / "service", sdk_source="index", sdk_index_url=index.url)
        lock_sync_and_test(service)

    sdk = locked_sdk(service)
    digest = hashlib.sha256(wheels["release"].read_bytes()).hexdigest()
    assert sdk["version"] == "0.7.0"
    assert sdk["source"] == {"registry": index.url}
    assert [wheel["hash"] for wheel in sdk["wheels"]] == [f"sha256:{digest}"]  # type: ignore[attr-defined]
    assert "/simple/shadow-sdk/" in index.requests


def test_a_same_named_package_elsewhere_is_never_picked(
    remote: str, wheels: dict[str, Path], tmp_path: Path
) -> None:
    """An index uv asks first offers shadow-sdk 0.7.99: the pinned index still wins.

    The same service without the pin takes the impostor: the attack is real.
    """
    with (
        PackageIndex(tmp_path / "index", [wheels["release"]]) as index,
        PackageIndex(tmp_path / "elsewhere", [wheels["impostor"]]) as elsewhere,
    ):
        service = render(remote, tmp_path / "service", sdk_source="index", sdk_index_url=index.url)
        run(tool("uv"), "lock", cwd=service, UV_INDEX=elsewhere.url)
        pinned = locked_sdk(service)

        unpinned = tmp_path / "unpinned"
        shutil.copytree(service, unpinned, ignore=shutil.ignore_patterns("uv.lock", ".git"))
        pyproject = (unpinned / "pyproject.toml").read_text()
        start = pyproject.index("[tool.uv.sources]")
        end = pyproject.index("[tool.pytest.ini_options]")
        (unpinned / "pyproject.toml").write_text(pyproject[:start] + pyproject[end:])
        run(tool("uv"), "lock", cwd=unpinned, UV_INDEX=elsewhere.url)

    assert (pinned["version"], pinned["source"]) == ("0.7.0", {"registry": index.url})
    assert locked_sdk(unpinned)["version"] == "0.7.99"
    assert locked_sdk(unpinned)["source"] == {"registry": elsewhere.url}


def test_the_git_route_installs_the_release_from_the_kits_repository(
    remote: str, kit: Path, tmp_path: Path
) -> None:
    """Rendered from the kit's URL, the service clones shadow-sdk at the tag, locked to its commit."""
    service = render(remote, tmp_path / "service")

    pyproject = tomllib.loads((service / "pyproject.toml").read_text())
    assert pyproject["tool"]["uv"]["sources"]["shadow-sdk"] == {"git": remote, "tag": RELEASE}
    assert "shadow-sdk[redis,tracing]>=0.7.0,<0.8" in pyproject["project"]["dependencies"]
    lock_sync_and_test(service)
    commit = git(kit, "rev-parse", f"{RELEASE}^{{commit}}").strip()
    sdk = locked_sdk(service)
    assert sdk["version"] == "0.7.0"
    assert sdk["source"] == {"git": f"{remote}?tag={RELEASE}#{commit}"}


def check_update(service: Path) -> dict[str, object]:
    result = run(
        sys.executable, "-m", "copier", "check-update", "--output-format", "json", cwd=service
    )
    found: dict[str, object] = json.loads(result.stdout)
    return found


@pytest.mark.parametrize("source", ["git URL", "absolute path"])
def test_check_update_finds_the_next_release(remote: str, tmp_path: Path, source: str) -> None:
    """A service knows where its template lives: check-update sees a newer release appear."""
    hosting = tmp_path / "hosting.git"
    work = tmp_path / "work"
    git(tmp_path, "clone", "--quiet", "--bare", remote, str(hosting))
    git(tmp_path, "clone", "--quiet", str(hosting), str(work))
    template = hosting.as_uri() if source == "git URL" else str(work)
    service = render(template, tmp_path / "service")
    git(service, "add", "--all")
    git(service, "commit", "--quiet", "--message=Generate")
    answers = yaml.safe_load((service / ".copier-answers.yml").read_text())

    before = check_update(service)
    (work / "template" / "CHANGES.md").write_text("A fix.\n")
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "--message=A fix")
    git(work, "tag", "-a", "v0.8.0", "--message=Release 0.8.0")
    git(work, "push", "--quiet", "origin", "HEAD", "v0.8.0")
    after = check_update(service)

    assert answers["_src_path"] == template
    assert (before["update_available"], before["current_version"]) == (False, "0.7.0")
    assert (after["update_available"], after["latest_version"]) == (True, "0.8.0")
