"""The generated service's Kubernetes manifests: valid, consistent, and safe by default.

Every kustomization (the base, both overlays, one that adds every component, and one that
adds every component but the Worker Controller's) is built with kustomize, and what it
produces is validated with ``kubernetes-validate --strict`` against the Kubernetes API's
own schemas: unknown fields, wrong types and missing required fields fail.
kubernetes-validate ships no schema for custom resources. The Prometheus Operator's
ServiceMonitor is checked here by hand, field by field, against the Service it scrapes and
the alerts it must agree with; the Temporal Worker Controller's TemporalWorkerDeployment
and TemporalConnection against the parts of their CRDs' schemas written down below, and
the TemporalWorkerDeployment's pod template by kubernetes-validate, as a PodTemplate. Building needs kustomize, or
kubectl, which bundles it, on PATH; neither comes from PyPI or Debian's stable release, so
where neither is installed the builds are skipped, saying so, and each manifest of the
base is still validated on its own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.rendering import render

from shadow_sdk import ShadowSettings

pytestmark = pytest.mark.slow

# The oldest Kubernetes the manifests support; they are also validated against the
# newest one kubernetes-validate knows.
OLDEST_KUBERNETES = "1.31.0"
# Kinds of custom resources, which kubernetes-validate has no schema for.
CUSTOM_KINDS = {"ServiceMonitor", "TemporalWorkerDeployment", "TemporalConnection"}
BUILDS = [
    "base",
    "overlays/dev",
    "overlays/prod",
    "every-component",
    "every-component-but-the-controller",
]
CONTROLLER = "worker-controller"
VARIANTS: dict[str, dict[str, Any]] = {
    "secure": {},
    "plain": {"encryption": False, "authorization": False, "project_name": "Payments Ledger"},
    "encryption-only": {"authorization": False},
    "authorization-only": {"encryption": False},
    "unscraped": {"metrics": False, "tracing": False},
    "database": {"database": True},
}
# Settings whose values are secrets: they come from mounted files, never from manifests.
SECRET_SETTINGS = {
    "CODEC_KEYS",
    "AUTH_HS256_SECRET",
    "AUTH_TOKEN",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS_CLIENT_KEY_DATA",
    "REDIS_URL",
}
# Fields of a ServiceMonitor endpoint and relabeling this test knows how to check.
ENDPOINT_FIELDS = {"port", "path", "interval", "scrapeTimeout", "relabelings"}
RELABELING_FIELDS = {"sourceLabels", "targetLabel", "action", "regex", "replacement"}
RELABEL_ACTIONS = {"replace", "keep", "drop", "labeldrop", "labelkeep", "labelmap"}

# The parts of the Temporal Worker Controller's CRD schemas (apiVersion temporal.io/v1alpha1)
# that the manifests use, as OpenAPI: from temporalio/temporal-worker-controller,
# helm/temporal-worker-controller/crds/temporal.io_temporalworkerdeployments.yaml at commit
# 06045051c0038a346a637b717e3986b2e4a7107f, and temporal.io_temporalconnections.yaml beside
# it at commit 009af804620914b045fed50f42f0b435f6a9bc79. The API server prunes unknown
# fields of a custom resource without an error, so here an unknown field fails. The pod
# template is a core PodTemplateSpec, validated by kubernetes-validate instead.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
GO_DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$"}
RAMP_STEP = {
    "type": "object",
    "required": ["pauseDuration", "rampPercentage"],
    "properties": {
        "pauseDuration": GO_DURATION,
        "rampPercentage": {"type": "integer", "minimum": 1, "maximum": 99},
    },
}
CRD_SPECS: dict[str, dict[str, Any]] = {
    "TemporalWorkerDeployment": {
        "type": "object",
        "required": ["rollout", "sunset", "template", "workerOptions"],
        "properties": {
            "replicas": {"type": "integer", "minimum": 0},
            "minReadySeconds": {"type": "integer"},
            "progressDeadlineSeconds": {"type": "integer"},
            "rollout": {
                "type": "object",
                "required": ["strategy"],
                "properties": {
                    "strategy": {"type": "string", "enum": ["Manual", "AllAtOnce", "Progressive"]},
                    "steps": {"type": "array", "items": RAMP_STEP},
                },
            },
            "sunset": {
                "type": "object",
                "required": [],
                "properties": {"scaledownDelay": GO_DURATION, "deleteDelay": GO_DURATION},
            },
            "template": {"type": "object"},
            "workerOptions": {
                "type": "object",
                "required": ["connectionRef", "temporalNamespace"],
                "properties": {
                    "connectionRef": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string", "pattern": DNS_LABEL}},
                    },
                    "temporalNamespace": {"type": "string", "minLength": 1},
                },
            },
        },
    },
    "TemporalConnection": {
        "type": "object",
        "required": ["hostPort"],
        "properties": {
            "hostPort": {"type": "string", "pattern": r"^[a-zA-Z0-9.-]+:[0-9]+$"},
            "mutualTLSSecretRef": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "pattern": DNS_LABEL}},
            },
        },
    },
}
PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
}


def scalar_problems(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Where a value of the right type breaks its schema's enum, pattern or bounds."""
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0):
            problems.append(f"{path}: {value!r} is shorter than {schema['minLength']}")
    if isinstance(value, int) and not schema.get("minimum", value) <= value:
        problems.append(f"{path}: {value} is below {schema['minimum']}")
    if isinstance(value, int) and not value <= schema.get("maximum", value):
        problems.append(f"{path}: {value} is above {schema['maximum']}")
    return problems


def schema_problems(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Where ``value`` breaks ``schema``: the OpenAPI keywords CRD_SPECS uses, no more."""
    expected = PYTHON_TYPES[schema["type"]]
    if not isinstance(value, expected) or isinstance(value, bool):
        return [f"{path}: {value!r} is not of type {schema['type']}"]
    problems = scalar_problems(value, schema, path)
    if isinstance(value, dict) and "properties" in schema:
        problems += [f"{path}.{name}: required" for name in schema["required"] if name not in value]
        for name, item in value.items():
            if name not in schema["properties"]:
                problems.append(f"{path}.{name}: not in the CRD's schema")
            else:
                problems += schema_problems(item, schema["properties"][name], f"{path}.{name}")
    if isinstance(value, list):
        for index, item in enumerate(value):
            problems += schema_problems(item, schema["items"], f"{path}[{index}]")
    return problems


@dataclass(frozen=True)
class Service:
    root: Path
    slug: str
    encryption: bool
    authorization: bool
    metrics: bool
    database: bool

    @property
    def k8s(self) -> Path:
        return self.root / "deploy" / "k8s"


@pytest.fixture(scope="module", params=list(VARIANTS))
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Service:
    root = render(tmp_path_factory.mktemp(request.param) / "service", **VARIANTS[request.param])
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    return Service(
        root,
        answers["project_slug"],
        answers["encryption"],
        answers["authorization"],
        answers["metrics"],
        answers["database"],
    )


@pytest.fixture(scope="module")
def builds(service: Service) -> dict[str, list[dict[str, Any]]]:
    """What kustomize builds from the base, each overlay, and the base with components.

    The Worker Controller's component comes last, as its README asks: it takes the pod
    template as the others leave it.
    """
    components = sorted(
        (path.parent for path in service.k8s.glob("components/*/kustomization.yaml")),
        key=lambda path: (path.name == CONTROLLER, path.name),
    )
    directories = {name: service.k8s / name for name in BUILDS[:3]}
    for name, included in (
        ("every-component", components),
        ("every-component-but-the-controller", components[:-1]),
    ):
        directory = directories[name] = service.root.parent / name
        directory.mkdir(exist_ok=True)
        (directory / "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "resources": [os.path.relpath(service.k8s / "base", directory)],
                    "components": [os.path.relpath(path, directory) for path in included],
                }
            )
        )
    assert components[-1].name == CONTROLLER
    return {name: kustomize_build(directory) for name, directory in directories.items()}


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    if found := shutil.which("kustomize"):
        command = [found, "build", str(directory)]
    elif found := shutil.which("kubectl"):
        command = [found, "kustomize", str(directory)]
    else:
        pytest.skip(
            "kustomize, or kubectl which bundles it, is not on PATH: the kustomizations are "
            "not built here (each manifest of the base is still validated)"
        )
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr}"
    return list(yaml.safe_load_all(result.stdout))


def validator() -> Path:
    path = Path(sys.executable).parent / "kubernetes-validate"
    if not path.is_file():
        pytest.fail(f"kubernetes-validate is not installed next to {sys.executable}")
    return path


def one(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [resource for resource in resources if resource["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def workload(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The Deployment, or on the Worker Controller's route the TemporalWorkerDeployment."""
    (found,) = [r for r in resources if r["kind"] in {"Deployment", "TemporalWorkerDeployment"}]
    return found


def pod_template(resources: list[dict[str, Any]]) -> dict[str, Any]:
    template: dict[str, Any] = workload(resources)["spec"]["template"]
    return template


def worker_container(resources: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any]
    (container,) = pod_template(resources)["spec"]["containers"]
    return container


def environment(resources: list[dict[str, Any]]) -> dict[str, str]:
    """The worker's environment: its ConfigMap, overridden by the container's own env."""
    container = worker_container(resources)
    (source,) = container["envFrom"]
    config = one(resources, "ConfigMap")
    assert source["configMapRef"]["name"] == config["metadata"]["name"]
    # DATABASE_URL, read once at start-up, is the one variable taken from a Secret.
    own = [item for item in container.get("env", []) if database_url_reference(item) is None]
    # Secrets reach the worker as mounted files, which can be rotated; never as variables.
    assert all("value" in item for item in own), own
    data: dict[str, str] = config["data"]
    return data | {item["name"]: item["value"] for item in own}


def database_url_reference(item: dict[str, Any]) -> dict[str, Any] | None:
    """``item`` when it is DATABASE_URL taken by reference from the database's Secret."""
    reference = item.get("valueFrom", {}).get("secretKeyRef", {})
    if item.get("name") == "DATABASE_URL" and reference.get("key") == "url":
        return item
    return None


def validate(manifests: Path, count: int) -> None:
    """Run kubernetes-validate --strict on ``manifests``: ``count`` resources must pass."""
    for versions in (["-k", OLDEST_KUBERNETES], []):
        result = subprocess.run(
            [validator(), "--strict", *versions, manifests],
            capture_output=True,
            text=True,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        # A WARN is a kind or apiVersion it has no schema for, which would pass unchecked.
        assert "WARN" not in output, output
        assert output.count(" passed for resource ") == count, output


@pytest.mark.parametrize("build", BUILDS)
def test_every_build_is_valid_kubernetes(
    build: str, builds: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """Each kustomization builds, and kubernetes-validate --strict accepts every resource.

    A TemporalWorkerDeployment's pod template is validated as the core PodTemplate it is.
    """
    resources = [resource for resource in builds[build] if resource["kind"] not in CUSTOM_KINDS]
    if workload(builds[build])["kind"] == "TemporalWorkerDeployment":
        resources.append(
            {
                "apiVersion": "v1",
                "kind": "PodTemplate",
                "metadata": {"name": "worker"},
                "template": pod_template(builds[build]),
            }
        )
    manifests = tmp_path / "manifests.yaml"
    manifests.write_text(yaml.safe_dump_all(resources))

    validate(manifests, len(resources))


def test_every_manifest_of_the_base_is_valid_kubernetes(service: Service) -> None:
    """Without building anything: kubernetes-validate --strict accepts each base manifest."""
    paths = sorted((service.k8s / "base").glob("*.yaml"))
    paths.remove(service.k8s / "base" / "kustomization.yaml")

    assert {yaml.safe_load(path.read_text())["kind"] for path in paths} >= {
        "Deployment",
        "Service",
        "ServiceAccount",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    for path in paths:
        validate(path, 1)


def test_kustomizations_list_existing_files_and_every_file_is_listed(service: Service) -> None:
    """Each file a kustomization names exists, and each manifest is part of a kustomization."""
    listed: set[Path] = set()
    for path in sorted(service.k8s.rglob("kustomization.yaml")):
        kustomization = yaml.safe_load(path.read_text())
        assert not {"bases", "commonLabels", "patchesStrategicMerge", "patchesJson6902"} & set(
            kustomization
        ), f"{path}: fields kustomize 5 deprecates"
        assert "secretGenerator" not in kustomization, f"{path}: secrets are created beside"
        names = kustomization.get("resources", []) + kustomization.get("components", [])
        names += kustomization.get("configurations", [])
        names += [patch["path"] for patch in kustomization.get("patches", []) if "path" in patch]
        for generator in kustomization.get("configMapGenerator", []):
            names += generator.get("envs", [])
            names += [name.rpartition("=")[2] for name in generator.get("files", [])]
        for name in names:
            target = (path.parent / name).resolve()
            assert target.is_file() or (target / "kustomization.yaml").is_file(), (
                f"{path} lists {name}, which is neither a file nor a kustomization"
            )
            listed.add(target)

    manifests = {
        path.resolve()
        for path in service.k8s.rglob("*")
        if path.is_file() and path.name not in {"kustomization.yaml", "README.md"}
    }
    assert manifests - listed == set()
    for overlay in ("dev", "prod"):
        overlay_kustomization = yaml.safe_load(
            (service.k8s / "overlays" / overlay / "kustomization.yaml").read_text()
        )
        assert "../../base" in overlay_kustomization["resources"]
        assert overlay_kustomization["namespace"] == service.slug


@pytest.mark.parametrize("build", BUILDS)
def test_probes_ask_live_and_ready_on_the_metrics_port(
    build: str, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """Liveness and start-up ask /live, readiness /ready, on the port METRICS_PORT names."""
    container = worker_container(builds[build])
    (port,) = container["ports"]

    assert port == {
        "name": "metrics",
        "containerPort": int(environment(builds[build])["METRICS_PORT"]),
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/live", "port": "metrics"}
    assert container["startupProbe"]["httpGet"] == {"path": "/live", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}


@pytest.mark.parametrize("build", BUILDS)
def test_grace_period_outlasts_the_whole_shutdown(
    build: str, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """terminationGracePeriodSeconds covers the shutdown cap, with the SDK's own defaults."""
    env = environment(builds[build])
    variables = {
        "worker_graceful_shutdown_timeout": "WORKER_GRACEFUL_SHUTDOWN_TIMEOUT",
        "worker_shutdown_timeout": "WORKER_SHUTDOWN_TIMEOUT",
    }
    # What the worker would read from this environment, the SDK's defaults elsewhere.
    settings = ShadowSettings.model_validate(
        {field: env[name] for field, name in variables.items() if name in env}
    )
    graceful = settings.worker_graceful_shutdown_timeout.total_seconds()
    cap = settings.shutdown_cap().total_seconds()
    pod = pod_template(builds[build])["spec"]

    assert "lifecycle" not in worker_container(builds[build])  # no preStop to add
    assert pod["terminationGracePeriodSeconds"] >= cap + 5 > graceful


@pytest.mark.parametrize("build", BUILDS)
def test_secrets_are_mounted_by_reference_only(
    build: str, service: Service, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """No Secret carries data, no secret is a plain setting, and every secret file is mounted."""
    resources = builds[build]
    for secret in (resource for resource in resources if resource["kind"] == "Secret"):
        assert not {"data", "stringData"} & set(secret), secret["metadata"]["name"]
    env = environment(resources)
    assert not SECRET_SETTINGS & set(env)

    pod = pod_template(resources)["spec"]
    secrets = {volume["name"]: volume["secret"] for volume in pod["volumes"] if "secret" in volume}
    mounts = {mount["mountPath"]: mount for mount in worker_container(resources)["volumeMounts"]}
    secret_mounts = {path: mount for path, mount in mounts.items() if mount["name"] in secrets}
    for path, mount in secret_mounts.items():
        # A subPath mount is never updated: rotated keys and tokens would not arrive.
        assert "subPath" not in mount, path
        assert mount["readOnly"] is True, path
    for name, value in env.items():
        if value.startswith("/run/secrets/"):
            assert any(value.startswith(f"{path}/") or value == path for path in secret_mounts), (
                f"{name}={value} is in no mounted secret"
            )

    expected: set[str] = set()
    if service.encryption:
        expected.add(f"{service.slug}-codec-keys")
        assert env["CODEC_KEYS_DIR"] in secret_mounts
    if service.authorization:
        expected.add(f"{service.slug}-auth")
        assert {"AUTH_JWKS_PATH", "AUTH_TOKEN_FILE"} <= set(env)
    if build.startswith("every-component"):
        expected |= {f"{service.slug}-temporal-api-key", f"{service.slug}-temporal-tls"}
    assert {secret["secretName"] for secret in secrets.values()} == expected
    assert ("CODEC_KEYS_DIR" in env) is service.encryption
    assert ("AUTH_TOKEN_FILE" in env) is service.authorization


@pytest.mark.parametrize("build", BUILDS)
def test_labels_and_selectors_agree(
    build: str, service: Service, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """Service, PDB, NetworkPolicy, HPA and ServiceMonitor all find the worker's pods.

    On the Worker Controller's route they find the pods of every build: the controller
    adds labels of its own to each build's selector, and keeps the template's.
    """
    resources = builds[build]
    deployment = workload(resources)
    selector = {"app.kubernetes.io/name": service.slug, "app.kubernetes.io/component": "worker"}
    pod = deployment["spec"]["template"]

    if deployment["kind"] == "Deployment":
        assert deployment["spec"]["selector"]["matchLabels"] == selector
    for resource in resources:
        assert resource["metadata"]["labels"].items() >= selector.items(), resource["kind"]
    assert pod["metadata"]["labels"].items() >= selector.items()
    assert one(resources, "Service")["spec"]["selector"] == selector
    assert one(resources, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    assert one(resources, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"] == selector
    (spread,) = pod["spec"]["topologySpreadConstraints"]
    assert spread["labelSelector"]["matchLabels"] == selector
    assert pod["spec"]["serviceAccountName"] == one(resources, "ServiceAccount")["metadata"]["name"]
    for autoscaler in (
        resource for resource in resources if resource["kind"] == "HorizontalPodAutoscaler"
    ):
        assert autoscaler["spec"]["scaleTargetRef"] == {
            "apiVersion": deployment["apiVersion"],
            "kind": deployment["kind"],
            "name": deployment["metadata"]["name"],
        }


def test_scrape_job_finds_the_pods(
    service: Service, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """deploy/observability's scrape job keeps the pods by the label and port they have."""
    if not service.metrics:
        pytest.skip("deploy/observability comes with the metrics answer")
    scrape = yaml.safe_load((service.root / "deploy/observability/prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    keep = {
        rule["source_labels"][0]: rule["regex"]
        for rule in job["relabel_configs"]
        if rule.get("action") == "keep"
    }
    pod = one(builds["overlays/prod"], "Deployment")["spec"]["template"]

    assert re.fullmatch(
        keep["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
        pod["metadata"]["labels"]["app.kubernetes.io/name"],
    )
    (port,) = worker_container(builds["overlays/prod"])["ports"]
    assert re.fullmatch(
        keep["__meta_kubernetes_pod_container_port_number"], str(port["containerPort"])
    )


def test_service_monitor_scrapes_the_metrics_port(
    service: Service, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """The ServiceMonitor, checked by hand for want of its CRD's schema, matches the Service."""
    if not service.metrics:
        pytest.skip("no ServiceMonitor without the metrics answer (see the next test)")
    prod = builds["overlays/prod"]
    monitor = one(prod, "ServiceMonitor")
    metrics_service = one(prod, "Service")
    alerts = (service.root / "deploy/observability/alerts.yml").read_text()

    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) == {"selector", "endpoints"}
    assert (
        metrics_service["metadata"]["labels"].items()
        >= monitor["spec"]["selector"]["matchLabels"].items()
    )
    # Without jobLabel, the job is the Service's name, which the alerts select on.
    assert f'job="{metrics_service["metadata"]["name"]}"' in alerts
    (endpoint,) = monitor["spec"]["endpoints"]
    assert set(endpoint) <= ENDPOINT_FIELDS
    assert endpoint["port"] in {port["name"] for port in metrics_service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert re.fullmatch(r"\d+[smh]", endpoint["interval"])
    for relabeling in endpoint["relabelings"]:
        assert set(relabeling) <= RELABELING_FIELDS
        assert relabeling.get("action", "replace") in RELABEL_ACTIONS
    # Temporal's metrics keep their own `namespace` label (the Temporal namespace).
    assert endpoint["relabelings"] == [
        {"sourceLabels": ["namespace"], "targetLabel": "kubernetes_namespace"},
        {"action": "labeldrop", "regex": "namespace"},
    ]
    for build in ("base", "overlays/dev"):
        assert not [resource for resource in builds[build] if resource["kind"] in CUSTOM_KINDS]


def test_without_metrics_nothing_asks_for_prometheus(
    service: Service, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """The ServiceMonitor (and its CRD) come with the metrics answer, and only with it."""
    kinds = {resource["kind"] for build in builds.values() for resource in build}

    assert ("ServiceMonitor" in kinds) is service.metrics
    assert (service.k8s / "components" / "service-monitor").exists() is service.metrics


@pytest.mark.parametrize("build", BUILDS)
def test_worker_runs_unprivileged_on_a_read_only_filesystem(
    build: str, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """Non-root as UID 10001, no privileges to gain, no capabilities, no API token."""
    pod = pod_template(builds[build])["spec"]
    container = worker_container(builds[build])

    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["automountServiceAccountToken"] is False
    assert one(builds[build], "ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]  # noqa: S108
    assert (
        container["resources"]["requests"].keys()
        == container["resources"]["limits"].keys()
        == {"cpu", "memory"}
    )


@pytest.mark.parametrize("build", BUILDS)
def test_network_policy_admits_scrapes_and_needed_egress_only(
    build: str, service: Service, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """Ingress to the metrics port only; egress to DNS, Temporal, OTLP/HTTP (and PostgreSQL)."""
    resources = builds[build]
    policy = one(resources, "NetworkPolicy")["spec"]
    (ingress,) = policy["ingress"]
    egress = {
        (port["port"], port["protocol"]) for rule in policy["egress"] for port in rule["ports"]
    }
    temporal_port = int(environment(resources)["TEMPORAL_ADDRESS"].rpartition(":")[2])

    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    database = {(5432, "TCP")} if service.database else set()
    assert egress == {(53, "UDP"), (53, "TCP"), (temporal_port, "TCP"), (4318, "TCP")} | database


def test_overlays_size_dev_small_and_prod_safe(builds: dict[str, list[dict[str, Any]]]) -> None:
    """Dev: one small debug worker; prod: autoscaled, drain-proof and on a pinned image."""
    dev, prod = builds["overlays/dev"], builds["overlays/prod"]
    dev_deployment, prod_deployment = one(dev, "Deployment"), one(prod, "Deployment")

    assert dev_deployment["spec"]["replicas"] == 1
    assert not [resource for resource in dev if resource["kind"] == "HorizontalPodAutoscaler"]
    assert environment(dev)["LOG_LEVEL"] == "DEBUG"
    assert environment(prod)["LOG_LEVEL"] == "INFO"
    assert environment(dev)["LOG_FORMAT"] == environment(prod)["LOG_FORMAT"] == "json"

    # The autoscaler owns the replica count; a PDB as strict as its minimum blocks drains.
    assert "replicas" not in prod_deployment["spec"]
    autoscaler = one(prod, "HorizontalPodAutoscaler")["spec"]
    budget = one(prod, "PodDisruptionBudget")["spec"]
    assert "maxUnavailable" not in budget
    assert 1 <= budget["minAvailable"] < autoscaler["minReplicas"] < autoscaler["maxReplicas"]
    registry, _, tag = worker_container(prod)["image"].rpartition(":")
    assert "/" in registry
    assert tag
    assert tag != "latest"

    for build in BUILDS:
        budget = one(builds[build], "PodDisruptionBudget")["spec"]
        assert len({"minAvailable", "maxUnavailable"} & set(budget)) == 1, build


def test_the_crd_check_finds_unknown_wrong_and_missing_fields() -> None:
    """The checker the next test relies on fails what the API server would prune or refuse."""
    spec = {"rollout": {"strategy": "Canary", "steps": [{"rampPercentage": 100}]}, "replica": 2}

    assert schema_problems(spec, CRD_SPECS["TemporalWorkerDeployment"], "spec") == [
        "spec.sunset: required",
        "spec.template: required",
        "spec.workerOptions: required",
        "spec.rollout.strategy: 'Canary' is not one of ['Manual', 'AllAtOnce', 'Progressive']",
        "spec.rollout.steps[0].pauseDuration: required",
        "spec.rollout.steps[0].rampPercentage: 100 is above 99",
        "spec.replica: not in the CRD's schema",
    ]


def test_worker_controller_resources_follow_their_crds(
    builds: dict[str, list[dict[str, Any]]],
) -> None:
    """Every field of both resources is in its CRD's schema, of its type; required ones are set."""
    for kind, spec in CRD_SPECS.items():
        resource = one(builds["every-component"], kind)
        assert resource["apiVersion"] == "temporal.io/v1alpha1"
        assert set(resource) == {"apiVersion", "kind", "metadata", "spec"}
        assert re.fullmatch(DNS_LABEL, resource["metadata"]["name"])
        assert schema_problems(resource["spec"], spec, "spec") == [], kind


def test_worker_controller_route_runs_the_same_pods(
    service: Service, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """The controller's route runs the pods the Deployment would, against the same Temporal.

    The component replaces the Deployment and its autoscaler and keeps everything else;
    the controller sets TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE from the TemporalConnection
    and the TemporalWorkerDeployment, which must agree with worker.env, and sets the
    deployment name and build id itself, which nothing else may.
    """
    controlled = builds["every-component"]
    plain = builds["every-component-but-the-controller"]
    versions = one(controlled, "TemporalWorkerDeployment")
    connection = one(controlled, "TemporalConnection")
    env = environment(controlled)
    kinds = {resource["kind"] for resource in controlled}

    assert pod_template(controlled) == pod_template(plain)
    assert kinds == {r["kind"] for r in plain} - {"Deployment", "HorizontalPodAutoscaler"} | {
        "TemporalWorkerDeployment",
        "TemporalConnection",
    }
    assert versions["spec"]["workerOptions"]["connectionRef"] == {
        "name": connection["metadata"]["name"]
    }
    assert connection["spec"]["hostPort"] == env["TEMPORAL_ADDRESS"]
    assert versions["spec"]["workerOptions"]["temporalNamespace"] == env["TEMPORAL_NAMESPACE"]
    assert not {"TEMPORAL_DEPLOYMENT_NAME", "TEMPORAL_WORKER_BUILD_ID"} & set(env)
    assert versions["metadata"]["name"] == service.slug
    assert versions["spec"]["replicas"] >= 2
    rollout = versions["spec"]["rollout"]
    ramps = [step["rampPercentage"] for step in rollout.get("steps", [])]
    assert ramps == sorted(set(ramps))
    assert (rollout["strategy"] == "Progressive") is bool(ramps)


@pytest.mark.parametrize("build", BUILDS)
def test_the_database_url_comes_from_its_secret_by_reference(
    build: str, service: Service, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """With a database, DATABASE_URL is a secretKeyRef, in no ConfigMap; without, it is absent."""
    resources = builds[build]
    env = worker_container(resources).get("env", [])
    references = [item for item in env if item["name"] == "DATABASE_URL"]

    assert "DATABASE_URL" not in one(resources, "ConfigMap")["data"]
    if service.database:
        assert references == [
            {
                "name": "DATABASE_URL",
                "valueFrom": {"secretKeyRef": {"name": f"{service.slug}-database", "key": "url"}},
            }
        ]
    else:
        assert references == []
    # Migrations never run as a worker starts.
    assert "initContainers" not in pod_template(resources)["spec"]


def test_migrations_run_as_a_job_of_the_release_image(service: Service, tmp_path: Path) -> None:
    """migrate/ builds one valid Job: alembic upgrade head, unprivileged, on the prod image."""
    migrate = service.k8s / "migrate"
    if not service.database:
        assert not migrate.exists()
        return
    resources = kustomize_build(migrate)
    job = one(resources, "Job")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    prod = kustomize_build(service.k8s / "overlays" / "prod")
    manifests = tmp_path / "job.yaml"
    manifests.write_text(yaml.safe_dump_all(resources))

    validate(manifests, 1)
    assert len(resources) == 1
    assert job["metadata"]["namespace"] == service.slug
    assert container["command"] == ["alembic", "upgrade", "head"]
    assert container["image"] == worker_container(prod)["image"]
    assert [database_url_reference(item) for item in container["env"]] == container["env"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
