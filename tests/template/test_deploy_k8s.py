"""The generated service's Kubernetes manifests: valid, consistent, and safe by default.

Every kustomization (the base, both overlays, and one that adds every component) is built
with kustomize, and what it produces is validated with ``kubernetes-validate --strict``
against the Kubernetes API's own schemas: unknown fields, wrong types and missing
required fields fail. kubernetes-validate ships no schema for the Prometheus Operator's
ServiceMonitor (a CRD), so that one is checked here by hand, field by field, against the
Service it scrapes and the alerts it must agree with. Building needs kustomize, or
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
from rendering import render

from shadow_sdk import ShadowSettings

pytestmark = pytest.mark.slow

# The oldest Kubernetes the manifests support; they are also validated against the
# newest one kubernetes-validate knows.
OLDEST_KUBERNETES = "1.31.0"
# Kinds of custom resources, which kubernetes-validate has no schema for.
CUSTOM_KINDS = {"ServiceMonitor"}
BUILDS = ["base", "overlays/dev", "overlays/prod", "every-component"]
VARIANTS: dict[str, dict[str, Any]] = {
    "secure": {},
    "plain": {"encryption": False, "authorization": False, "project_name": "Payments Ledger"},
    "encryption-only": {"authorization": False},
    "authorization-only": {"encryption": False},
    "unscraped": {"metrics": False, "tracing": False},
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


@dataclass(frozen=True)
class Service:
    root: Path
    slug: str
    encryption: bool
    authorization: bool
    metrics: bool

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
    )


@pytest.fixture(scope="module")
def builds(service: Service) -> dict[str, list[dict[str, Any]]]:
    """What kustomize builds from the base, each overlay, and the base with every component."""
    every_component = service.root.parent / "every-component"
    every_component.mkdir(exist_ok=True)
    components = sorted(path.parent for path in service.k8s.glob("components/*/kustomization.yaml"))
    (every_component / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(service.k8s / "base", every_component)],
                "components": [os.path.relpath(path, every_component) for path in components],
            }
        )
    )
    directories = {name: service.k8s / name for name in BUILDS[:-1]}
    directories["every-component"] = every_component
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


def worker_container(resources: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any]
    (container,) = one(resources, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def environment(resources: list[dict[str, Any]]) -> dict[str, str]:
    """The worker's environment: its ConfigMap, overridden by the container's own env."""
    container = worker_container(resources)
    (source,) = container["envFrom"]
    config = one(resources, "ConfigMap")
    assert source["configMapRef"]["name"] == config["metadata"]["name"]
    own = container.get("env", [])
    # Secrets reach the worker as mounted files, which can be rotated; never as variables.
    assert all("value" in item for item in own), own
    data: dict[str, str] = config["data"]
    return data | {item["name"]: item["value"] for item in own}


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
    """Each kustomization builds, and kubernetes-validate --strict accepts every resource."""
    resources = [resource for resource in builds[build] if resource["kind"] not in CUSTOM_KINDS]
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
    pod = one(builds[build], "Deployment")["spec"]["template"]["spec"]

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

    pod = one(resources, "Deployment")["spec"]["template"]["spec"]
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
    if build == "every-component":
        expected |= {f"{service.slug}-temporal-api-key", f"{service.slug}-temporal-tls"}
    assert {secret["secretName"] for secret in secrets.values()} == expected
    assert ("CODEC_KEYS_DIR" in env) is service.encryption
    assert ("AUTH_TOKEN_FILE" in env) is service.authorization


@pytest.mark.parametrize("build", BUILDS)
def test_labels_and_selectors_agree(
    build: str, service: Service, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """Service, PDB, NetworkPolicy, HPA and ServiceMonitor all find the Deployment's pods."""
    resources = builds[build]
    deployment = one(resources, "Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod = deployment["spec"]["template"]

    assert selector == {
        "app.kubernetes.io/name": service.slug,
        "app.kubernetes.io/component": "worker",
    }
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
    pod = one(builds[build], "Deployment")["spec"]["template"]["spec"]
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
    build: str, builds: dict[str, list[dict[str, Any]]]
) -> None:
    """Ingress to the metrics port only; egress to DNS, Temporal's port and OTLP/HTTP."""
    resources = builds[build]
    policy = one(resources, "NetworkPolicy")["spec"]
    (ingress,) = policy["ingress"]
    egress = {
        (port["port"], port["protocol"]) for rule in policy["egress"] for port in rule["ports"]
    }
    temporal_port = int(environment(resources)["TEMPORAL_ADDRESS"].rpartition(":")[2])

    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert egress == {(53, "UDP"), (53, "TCP"), (temporal_port, "TCP"), (4318, "TCP")}


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
