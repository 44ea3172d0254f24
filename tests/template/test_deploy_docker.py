"""The generated service's Dockerfile and Compose stack: linted, valid, and consistent.

No Docker engine is needed. hadolint lints the Dockerfile (any finding fails, down to
level info), check-jsonschema validates compose.yaml against the Compose specification,
and shellcheck checks the shell scripts compose.yaml runs. What those tools cannot see is
checked here by reading the files: that every mounted file exists, that ports, probes and
scrape targets agree with the worker's settings, that secrets only ever come from the
environment, that every image is pinned, and what the build context lets in.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.rendering import render
from helpers.tools import tool

from shadow_sdk import ShadowSettings

pytestmark = pytest.mark.slow

# The cap on the whole shutdown defaults to the graceful timeout plus this margin.

VARIANTS: dict[str, dict[str, Any]] = {
    "secure": {},
    "plain": {"encryption": False, "authorization": False, "metrics": False, "tracing": False},
    "encryption-only": {"authorization": False, "tracing": False},
    "authorization-only": {"encryption": False, "metrics": False},
    "custom": {
        "project_name": "Payments Ledger",
        "package_name": "ledger",
        "description": "Books settled payments into the general ledger.",
        "temporal_namespace": "payments",
        "task_queue": "ledger-tasks",
        "python_version": "3.13",
        "deployment": ["compose"],
    },
    "image-only": {"deployment": []},
    "database": {"database": True, "examples": ["task_processing"]},
}
STACKS = [name for name, answers in VARIANTS.items() if answers.get("deployment") != []]
METRICS_PORT = ShadowSettings.model_fields["metrics_port"].default
# The SDK's defaults, whatever this process's environment says.
SHUTDOWN_CAP = ShadowSettings.model_construct().shutdown_cap()
# Settings whose values are secrets: compose.yaml may only take them from the environment.
SECRET_SETTINGS = ("CODEC_KEYS", "AUTH_HS256_SECRET", "AUTH_TOKEN")
# The jobs that set Temporal up run once and exit; every other service runs on.
ONE_SHOTS = {"temporal-schema", "temporal-namespace"}
# With a database, its migrations run once too, before the worker.
MIGRATE = "migrate"


@dataclass(frozen=True)
class Service:
    root: Path
    answers: dict[str, Any]

    @property
    def slug(self) -> str:
        slug: str = self.answers["project_slug"]
        return slug

    def dockerfile(self) -> list[tuple[str, str]]:
        """(KEYWORD, arguments) of each instruction, continuation lines joined."""
        lines = (self.root / "Dockerfile").read_text().splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
        return [
            (keyword.upper(), arguments.strip())
            for keyword, arguments in re.findall(
                r"^(\w+)\s+(.*)$", re.sub(r"\\\n\s*", " ", text), re.MULTILINE
            )
        ]

    def final_stage(self) -> list[tuple[str, str]]:
        instructions = self.dockerfile()
        starts = [index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
        return instructions[starts[-1] :]

    def instructions(self, keyword: str) -> list[str]:
        return [arguments for key, arguments in self.final_stage() if key == keyword]

    def instruction(self, keyword: str) -> str:
        (found,) = self.instructions(keyword)
        return found


@dataclass(frozen=True)
class Stack(Service):
    compose: dict[str, Any]

    @property
    def services(self) -> dict[str, Any]:
        services: dict[str, Any] = self.compose["services"]
        return services

    @property
    def one_shots(self) -> set[str]:
        return ONE_SHOTS | ({MIGRATE} if self.answers["database"] else set())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Service]:
    services = {}
    for name, answers in VARIANTS.items():
        root = render(tmp_path_factory.mktemp(name) / "service", **answers)
        services[name] = Service(root, yaml.safe_load((root / ".copier-answers.yml").read_text()))
    return services


@pytest.fixture(params=list(VARIANTS))
def service(request: pytest.FixtureRequest, rendered: dict[str, Service]) -> Service:
    return rendered[request.param]


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, rendered: dict[str, Service]) -> Stack:
    service = rendered[request.param]
    compose = yaml.safe_load((service.root / "compose.yaml").read_text())
    return Stack(service.root, service.answers, compose)


def run(*command: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, input=stdin, capture_output=True, text=True, check=False
    )


def test_dockerfile_passes_hadolint(service: Service, tmp_path: Path) -> None:
    """hadolint, with no configuration of the machine's, finds nothing at all."""
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: info\n")

    result = run(
        tool("hadolint"), "--config", str(config), "--no-color", "Dockerfile", cwd=service.root
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "hadolint ignore" not in (service.root / "Dockerfile").read_text()


def test_image_runs_the_console_script_as_a_fixed_non_root_user(service: Service) -> None:
    """The entrypoint is the service's command in exec form, run as the UID Kubernetes runs."""
    scripts = tomllib.loads((service.root / "pyproject.toml").read_text())["project"]["scripts"]
    user, group = (int(number) for number in service.instruction("USER").split(":"))

    assert yaml.safe_load(service.instruction("ENTRYPOINT")) == [service.slug]
    assert service.slug in scripts
    assert yaml.safe_load(service.instruction("CMD")) == ["worker"]
    assert service.instruction("STOPSIGNAL") == "SIGTERM"
    assert user != 0
    assert group != 0
    deployment = service.root / "deploy/k8s/base/deployment.yaml"
    assert deployment.exists() is ("kubernetes" in service.answers["deployment"])
    if deployment.exists():
        pod = yaml.safe_load(deployment.read_text())["spec"]["template"]["spec"]
        assert (user, group) == (
            pod["securityContext"]["runAsUser"],
            pod["securityContext"]["runAsGroup"],
        )


def test_image_builds_from_the_lock_without_development_tools(service: Service) -> None:
    """uv installs the locked runtime dependencies; the final stage takes only the venv.

    With a database it takes pyproject.toml too: Alembic's configuration, nothing else.
    """
    syncs = [a for keyword, a in service.dockerfile() if keyword == "RUN" and "uv sync" in a]
    final = service.final_stage()
    copies = [arguments for keyword, arguments in final if keyword == "COPY"]

    assert len(syncs) == 2
    for sync in syncs:
        assert "--locked" in sync
        assert "--no-default-groups" in sync
        assert "--mount=type=cache,target=/root/.cache/uv" in sync
    assert [keyword for keyword, _ in final].count("RUN") == 1
    assert "uv" not in service.instruction("RUN")
    alembic = ["--from=build /app/pyproject.toml /app/pyproject.toml"]
    assert copies == [
        "--from=build /app/.venv /app/.venv",
        *(alembic if service.answers["database"] else []),
    ]


@pytest.mark.parametrize(
    ("answers", "build_image"),
    [
        ({"sdk_source": "git"}, "python:3.12-trixie"),
        ({"sdk_source": "index"}, "python:3.12-slim-trixie"),
    ],
    ids=["git", "index"],
)
def test_only_the_build_stage_has_what_the_sdk_route_needs(
    tmp_path: Path, answers: dict[str, str], build_image: str
) -> None:
    """The git route builds on the full image, which has git; the final stage stays slim.

    Either route may need credentials: a netrc build secret reaches both uv syncs and
    never a layer.
    """
    root = render(tmp_path / "service", python_version="3.12", **answers)
    service = Service(root, yaml.safe_load((root / ".copier-answers.yml").read_text()))
    froms = [arguments for keyword, arguments in service.dockerfile() if keyword == "FROM"]
    syncs = [a for keyword, a in service.dockerfile() if keyword == "RUN" and "uv sync" in a]

    assert froms[-2:] == [f"{build_image} AS build", "python:3.12-slim-trixie"]
    assert all("--mount=type=secret,id=netrc,target=/root/.netrc" in sync for sync in syncs)
    assert "netrc" not in " ".join(arguments for _, arguments in service.final_stage())


def test_image_labels_carry_the_answers(service: Service) -> None:
    """The OCI labels read back exactly as answered."""
    labels = dict(re.findall(r'([\w.]+)="([^"]*)"', service.instruction("LABEL")))
    answers = service.answers

    assert labels == {
        "org.opencontainers.image.title": answers["project_name"],
        "org.opencontainers.image.description": answers["description"],
        "org.opencontainers.image.authors": f"{answers['author_name']} <{answers['author_email']}>",
        "org.opencontainers.image.revision": "${BUILD_ID}",
    }


def test_image_serves_its_probes_on_the_ops_port(service: Service) -> None:
    """The image exposes the worker's ops port and checks /live on it."""
    assert service.instruction("EXPOSE") == str(METRICS_PORT)
    assert f"METRICS_PORT={METRICS_PORT}" in service.instructions("ENV")[0]
    assert "os.environ['METRICS_PORT']" in service.instruction("HEALTHCHECK")
    assert "/live'" in service.instruction("HEALTHCHECK")


def test_image_carries_its_build_id_from_a_late_build_argument(service: Service) -> None:
    """BUILD_ID becomes TEMPORAL_WORKER_BUILD_ID in the final stage only, after every layer.

    Declared after the last RUN and COPY, a new build id reuses every cached layer. Not
    passed, it is empty, which the worker reads as unset (tests/test_settings.py).
    """
    final = service.final_stage()
    keywords = [keyword for keyword, _ in final]
    declared = keywords.index("ARG")
    header = (service.root / "Dockerfile").read_text().split("\nFROM ")[0]

    assert service.instruction("ARG") == 'BUILD_ID=""'
    assert [a for k, a in service.dockerfile() if k == "ARG"] == ['BUILD_ID=""']
    assert not {"RUN", "COPY", "ADD"} & set(keywords[declared:])
    assert service.instructions("ENV")[-1] == 'TEMPORAL_WORKER_BUILD_ID="${BUILD_ID}"'
    assert keywords.index("LABEL") > declared
    assert "--build-arg BUILD_ID=$(git rev-parse --short HEAD)" in header


def docker_ignores(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's patterns keep ``path`` out of the build context.

    As Docker decides: the last pattern that matches the path or one of its parent
    folders wins, and ``!`` lets a path back in.
    """
    ignored = False
    parts = path.split("/")
    for pattern in patterns:
        glob = pattern.removeprefix("!").strip("/")
        regex = "".join(
            {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
            for token in re.findall(r"\*\*/|\*\*|\*|\?|[^*?]+", glob)
        )
        if any(re.fullmatch(regex, "/".join(parts[:end])) for end in range(1, len(parts) + 1)):
            ignored = not pattern.startswith("!")
    return ignored


def test_build_context_holds_the_project_and_no_secrets(service: Service) -> None:
    """What the build needs is in the build context; .env and local state are not."""
    lines = (service.root / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    bound = re.findall(r"source=([^,\s]+)", " ".join(a for _, a in service.dockerfile()))
    package = service.answers["package_name"]
    # Everything hatchling reads to build the wheel, and the lock.
    needed = ["pyproject.toml", "uv.lock", "README.md", f"src/{package}/cli.py", *bound]
    if (service.root / "LICENSE").exists():
        needed.append("LICENSE")

    for path in needed:
        assert not docker_ignores(path, patterns), path
    for path in [
        ".env",
        ".venv/bin/python",
        ".git/config",
        "tests/test_cli.py",
        ".copier-answers.yml",
        f"src/{package}/__pycache__/cli.cpython-311.pyc",
    ]:
        assert docker_ignores(path, patterns), path


def test_compose_files_follow_the_deployment_answer(service: Service) -> None:
    """compose.yaml and its configuration come with the compose deployment only."""
    compose = "compose" in service.answers["deployment"]

    assert (service.root / "Dockerfile").is_file()
    assert (service.root / "compose.yaml").exists() is compose
    assert (service.root / "deploy/compose").exists() is (compose and service.answers["metrics"])


def test_compose_file_follows_the_compose_specification(stack: Stack) -> None:
    """compose.yaml validates against the Compose specification's JSON schema."""
    result = run(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        "compose.yaml",
        cwd=stack.root,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_shell_scripts_pass_shellcheck(stack: Stack) -> None:
    """The scripts that set up Temporal's databases and namespace pass shellcheck."""
    scripts = {
        name: definition["command"][0].replace("$$", "$")
        for name, definition in stack.services.items()
        if definition.get("entrypoint", [None])[0] == "/bin/sh"
    }

    assert set(scripts) == ONE_SHOTS
    for name, script in scripts.items():
        result = run(tool("shellcheck"), "--shell=sh", "-", cwd=stack.root, stdin=script)
        assert result.returncode == 0, f"{name}:\n{result.stdout}"


def test_optional_services_follow_their_answers(stack: Stack) -> None:
    """The codec server, Prometheus with Grafana, and Jaeger come with their features."""
    answers = stack.answers
    worker = stack.services["worker"]["environment"]

    assert ("codec-server" in stack.services) is answers["encryption"]
    assert ("prometheus" in stack.services) is answers["metrics"]
    assert ("grafana" in stack.services) is answers["metrics"]
    assert ("alertmanager" in stack.services) is answers["metrics"]
    assert ("jaeger" in stack.services) is answers["tracing"]
    assert ("OTEL_EXPORTER_OTLP_ENDPOINT" in worker) is answers["tracing"]
    assert ("CODEC_KEYS" in worker) is answers["encryption"]
    assert ("AUTH_HS256_SECRET" in worker) is answers["authorization"]
    assert ("app-postgresql" in stack.services) is answers["database"]
    assert (MIGRATE in stack.services) is answers["database"]
    assert ("DATABASE_URL" in worker) is answers["database"]


def test_every_image_is_pinned(stack: Stack) -> None:
    """Every base image and service image names a version; none floats on latest."""
    froms = [a.split() for keyword, a in stack.dockerfile() if keyword == "FROM"]
    stages = {words[-1] for words in froms if len(words) == 3}
    images = [words[0] for words in froms if words[0] not in stages]
    images += [definition["image"] for definition in stack.services.values()]
    python = f"python:{stack.answers['python_version']}-"

    for image in images:
        name, _, tag = image.rpartition(":")
        assert name, f"{image} has no tag"
        assert "/" not in tag, f"{image} has no tag"
        assert tag != "latest", image
    assert sum(image.startswith(python) for image in images) == 2


def test_worker_ports_and_probes_use_the_ops_port(stack: Stack) -> None:
    """compose.yaml publishes the ops port, checks /ready on it, and Prometheus scrapes it."""
    worker = stack.services["worker"]

    assert worker["ports"] == [f"127.0.0.1:{METRICS_PORT}:{METRICS_PORT}"]
    assert f"http://127.0.0.1:{METRICS_PORT}/ready'" in " ".join(worker["healthcheck"]["test"])
    if stack.answers["metrics"]:
        config = yaml.safe_load((stack.root / "deploy/compose/prometheus.yml").read_text())
        (job,) = config["scrape_configs"]
        assert job["job_name"] == stack.slug
        assert job["static_configs"][0]["targets"] == [f"worker:{METRICS_PORT}"]


def test_worker_may_drain_before_it_is_killed(stack: Stack) -> None:
    """Compose waits longer than the worker's shutdown cap before it sends SIGKILL."""
    grace = stack.services["worker"]["stop_grace_period"]

    assert re.fullmatch(r"\d+s", grace)
    assert int(grace[:-1]) > SHUTDOWN_CAP.total_seconds()


def test_worker_runs_read_only_and_unprivileged(stack: Stack) -> None:
    """The worker and codec server get a read-only root, no capabilities, no new privileges."""
    for name in {"worker", "codec-server"} & set(stack.services):
        definition = stack.services[name]
        assert definition["read_only"] is True, name
        assert definition["cap_drop"] == ["ALL"], name
        assert definition["security_opt"] == ["no-new-privileges:true"], name


def test_web_ui_decodes_through_the_codec_server(stack: Stack) -> None:
    """With encryption, the UI calls a codec server that admits the UI's origin."""
    ui = stack.services["temporal-ui"]

    assert ("TEMPORAL_CODEC_ENDPOINT" in ui["environment"]) is stack.answers["encryption"]
    if stack.answers["encryption"]:
        codec = stack.services["codec-server"]
        port = codec["command"][codec["command"].index("--port") + 1]
        (published,) = ui["ports"]
        assert codec["entrypoint"] == ["shadow", "codec-server"]
        assert codec["image"] == stack.services["worker"]["image"]
        assert ui["environment"]["TEMPORAL_CODEC_ENDPOINT"] == f"http://localhost:{port}"
        origins = codec["environment"]["CODEC_SERVER_CORS_ORIGINS"].split(",")
        assert f"http://localhost:{published.split(':')[1]}" in origins
        assert f"localhost:{port}/{stack.answers['temporal_namespace']}/decode'" in " ".join(
            codec["healthcheck"]["test"]
        )


def test_secrets_come_only_from_the_environment(stack: Stack) -> None:
    """Each secret setting is a ${VARIABLE} of its own name; no key or token is written down."""
    text = (stack.root / "compose.yaml").read_text()

    for name, definition in stack.services.items():
        for setting in SECRET_SETTINGS:
            value = definition.get("environment", {}).get(setting)
            if value is not None:
                assert re.fullmatch(rf"\$\{{{setting}(:?[-?][^}}$]*)?\}}", value), (name, value)
    # A base64 AES-256 key, and the header of a JWT.
    assert not re.search(r"[A-Za-z0-9+/]{43}=", text)
    assert "eyJ" not in text


def test_dependencies_exist_and_are_waited_for(stack: Stack) -> None:
    """A service waits for another to be healthy, or to have finished its one job.

    Each one-shot job is waited for by a service that runs on, or `docker compose up
    --wait` would count its exit as a failure.
    """
    waited_for = set()
    for name, definition in stack.services.items():
        for target, dependency in definition.get("depends_on", {}).items():
            assert target in stack.services, f"{name} depends on missing {target}"
            if target in stack.one_shots:
                assert dependency == {"condition": "service_completed_successfully"}
                assert name not in stack.one_shots
                waited_for.add(target)
            else:
                assert dependency == {"condition": "service_healthy"}

    assert waited_for == stack.one_shots


def test_every_long_running_service_has_a_healthcheck(stack: Stack) -> None:
    """Only the one-shot setup jobs go without a healthcheck, and they publish no port."""
    unchecked = {name for name, s in stack.services.items() if "healthcheck" not in s}

    assert unchecked == stack.one_shots
    assert not any("ports" in stack.services[name] for name in stack.one_shots)


def test_mounted_files_exist_and_agree(stack: Stack) -> None:
    """Each mounted file is in the service; Prometheus and Grafana find what they load."""
    mounts: dict[str, Path] = {}
    for definition in stack.services.values():
        for volume in definition.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (stack.root / source).is_file(), source
                mounts[target] = stack.root / source

    assert (stack.root / stack.services["worker"]["build"] / "Dockerfile").is_file()
    assert bool(mounts) is stack.answers["metrics"]
    if stack.answers["metrics"]:
        prometheus = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
        provisioning = "/etc/grafana/provisioning"
        (datasource,) = yaml.safe_load(
            mounts[f"{provisioning}/datasources/prometheus.yml"].read_text()
        )["datasources"]
        (provider,) = yaml.safe_load(
            mounts[f"{provisioning}/dashboards/{stack.slug}.yml"].read_text()
        )["providers"]
        for rule_file in prometheus["rule_files"]:
            assert mounts[f"/etc/prometheus/{rule_file}"].name == rule_file
        dashboards = [t for t in mounts if t.startswith(provider["options"]["path"] + "/")]
        assert [mounts[target].name for target in dashboards] == ["dashboard.json"]
        assert datasource["url"] == "http://prometheus:9090"


def test_worker_connects_to_services_of_the_stack(stack: Stack) -> None:
    """The worker's addresses name services of this file; its namespace is the one created."""
    environment = stack.services["worker"]["environment"]
    addresses = [environment["TEMPORAL_ADDRESS"], environment["REDIS_URL"]]
    if stack.answers["database"]:
        addresses.append(environment["DATABASE_URL"].rpartition("@")[2])
    if stack.answers["tracing"]:
        addresses.append(environment["OTEL_EXPORTER_OTLP_ENDPOINT"])

    for address in addresses:
        assert re.sub(r"^\w+://", "", address).split(":")[0] in stack.services, address
    assert environment["TEMPORAL_NAMESPACE"] == stack.answers["temporal_namespace"]
    assert environment["TEMPORAL_TASK_QUEUE"] == stack.answers["task_queue"]
    script = stack.services["temporal-namespace"]["command"][0]
    assert f"--namespace {stack.answers['temporal_namespace']}" in script


def test_the_database_is_the_services_own_and_migrated_before_the_worker(stack: Stack) -> None:
    """Beside Temporal's PostgreSQL, one of its own; the worker starts after the migrations ran.

    The migrate job runs ``alembic upgrade head`` from the worker's image, with the
    worker's DATABASE_URL, once the database is healthy.
    """
    if not stack.answers["database"]:
        assert "migrate" not in stack.services
        return
    database, migrate = stack.services["app-postgresql"], stack.services[MIGRATE]
    worker = stack.services["worker"]
    volumes = [volume.split(":")[0] for volume in database["volumes"]]
    temporal_volumes = [volume.split(":")[0] for volume in stack.services["postgresql"]["volumes"]]
    dockerfile = (stack.root / "Dockerfile").read_text()

    assert volumes == ["app-postgresql"]
    assert set(stack.compose["volumes"]) == {"postgresql", "app-postgresql"}
    assert not set(volumes) & set(temporal_volumes)
    assert migrate["image"] == worker["image"]
    assert [*migrate["entrypoint"], *migrate["command"]] == ["alembic", "upgrade", "head"]
    assert migrate["environment"]["DATABASE_URL"] == worker["environment"]["DATABASE_URL"]
    assert migrate["depends_on"] == {"app-postgresql": {"condition": "service_healthy"}}
    assert worker["depends_on"][MIGRATE] == {"condition": "service_completed_successfully"}
    # Alembic's configuration is in pyproject.toml, which the image carries for it.
    assert "COPY --from=build /app/pyproject.toml /app/pyproject.toml" in dockerfile
    pyproject = tomllib.loads((stack.root / "pyproject.toml").read_text())
    package = stack.answers["package_name"]
    assert pyproject["tool"]["alembic"]["script_location"] == f"{package}:migrations"
    assert (stack.root / "src" / package / "migrations" / "env.py").is_file()
