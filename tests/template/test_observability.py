"""The generated service's alerts, dashboard and scrape job use only what workers export."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from helpers.rendering import render
from helpers.workflows import OutcomeWorkflow, flaky_step
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import MetricMeter

from shadow_sdk import ShadowPlugin, ShadowSettings, ShadowWorker
from shadow_sdk.auth import (
    AuthInterceptor,
    Authorizer,
    Policy,
    TokenIssuer,
    TokenVerifier,
)
from shadow_sdk.codec import EncryptionCodec, KeyRing
from shadow_sdk.observability import (
    OpsServer,
    TemporalMetricsCollector,
    create_runtime,
    registry_for,
)
from shadow_sdk.resilience import CircuitBreaker, CircuitOpenError, ResultCache
from shadow_sdk.testing import OpsClient, Scrape, connect_caller, start_dev_server

pytestmark = pytest.mark.slow

SECRET = "observability-assets-secret-of-32-bytes"
WORKER_KEY = KeyRing({"worker-key": bytes(32)})
# Labels Prometheus adds to every series of the scrape job, besides the metric's own.
PROMETHEUS_ONLY = {"up"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("observability") / "service")


@pytest.fixture(scope="module")
def emitted() -> Scrape:
    """/metrics of a worker that ran workflows to each outcome, refused a call and met an
    unreadable payload: every metric the SDK emits shows up at least once."""
    return asyncio.run(_run_everything())


async def _run_everything() -> Scrape:
    issuer = TokenIssuer(hs256_secret=SECRET)
    authorizer = Authorizer(TokenVerifier(hs256_secret=SECRET), Policy.default())
    runtime, buffer = create_runtime()
    worker_plugin = ShadowPlugin(
        codec=EncryptionCodec(WORKER_KEY),
        auth=AuthInterceptor(token=issuer.issue("worker", ["admin"]), authorizer=authorizer),
    )
    task_queue = f"assets-{uuid.uuid4()}"
    async with (
        await start_dev_server(plugin=worker_plugin, runtime=runtime) as env,
        OpsServer(
            registry=registry_for(TemporalMetricsCollector(buffer)), host="127.0.0.1", port=0
        ) as ops_server,
        ShadowWorker(
            env.client,
            ShadowSettings(temporal_task_queue=task_queue),
            workflows=[OutcomeWorkflow],
            activities=[flaky_step],
        ),
    ):
        ops = OpsClient(f"http://127.0.0.1:{ops_server.port}")

        async def caller(token: str | None, keys: KeyRing) -> Client:
            auth = AuthInterceptor(token=token) if token else None
            plugin = ShadowPlugin(codec=EncryptionCodec(keys), auth=auth)
            return await connect_caller(env.client, plugin)

        operator = await caller(issuer.issue("operator", ["operator"]), WORKER_KEY)
        anonymous = await caller(None, WORKER_KEY)
        stranger = await caller(
            issuer.issue("stranger", ["admin"]), KeyRing({"other": bytes(range(32))})
        )
        for client, outcome in [(operator, "complete"), (operator, "fail"), (anonymous, "fail")]:
            with contextlib.suppress(WorkflowFailureError):
                await client.execute_workflow(
                    OutcomeWorkflow.run, outcome, id=str(uuid.uuid4()), task_queue=task_queue
                )
        unreadable = await stranger.start_workflow(
            OutcomeWorkflow.run, "complete", id=str(uuid.uuid4()), task_queue=task_queue
        )
        async with asyncio.timeout(30):
            while not (await ops.scrape()).value("shadow_codec_errors_total"):
                await asyncio.sleep(0.2)
        await operator.get_workflow_handle(unreadable.id).terminate()
        await _use_resilience_helpers(runtime.metric_meter)
        return await ops.scrape()


async def _fail() -> None:
    raise ConnectionError("dependency down")


async def _lookup(customer: str) -> str:
    return customer.upper()


async def _use_resilience_helpers(meter: MetricMeter) -> None:
    """Open a circuit and hit a cache, so that their metrics are emitted too."""
    breaker = CircuitBreaker("payments", consecutive_failures=1, metric_meter=meter)
    for _ in range(2):
        with contextlib.suppress(ConnectionError, CircuitOpenError):
            await breaker.call(_fail)
    lookup = ResultCache("customers", metric_meter=meter).cached(ttl=timedelta(minutes=1))(_lookup)
    for _ in range(2):
        await lookup("ada")


def selectors(expression: str) -> Iterator[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []
    promql_parser.walk(
        promql_parser.parse(expression),
        pre_visit=lambda node: (
            found.append(node) if isinstance(node, promql_parser.VectorSelector) else None
        ),
    )
    return iter(found)


def groupings(expression: str) -> Iterator[str]:
    labels: list[str] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            labels.extend(node.modifier.labels)

    promql_parser.walk(promql_parser.parse(expression), pre_visit=visit)
    return iter(labels)


def target_labels(service: Path) -> set[str]:
    """Labels the scrape job attaches to every series: job, and what relabelling adds."""
    config = yaml.safe_load((service / "deploy/observability/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    return {"job"} | {
        rule["target_label"] for rule in job["relabel_configs"] if "target_label" in rule
    }


def check_expression(expression: str, emitted: Scrape, extra_labels: set[str]) -> None:
    """Each metric the expression selects is emitted, with each label it matches on."""
    used_labels: set[str] = set()
    for selector in selectors(expression):
        name = selector.name
        if name in PROMETHEUS_ONLY:
            continue
        label_sets = emitted.label_sets(name)
        assert label_sets, f"{name} is not emitted (in {expression!r})"
        available = set().union(*label_sets) | extra_labels
        used_labels |= available
        for matcher in selector.matchers.matchers:
            assert matcher.name in available, f"{name} has no label {matcher.name!r}"
    for label in groupings(expression):
        assert label in used_labels | extra_labels, f"no selected metric has label {label!r}"


def alert_rules(service: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load((service / "deploy/observability/alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alert_rules_parse_and_use_emitted_metrics(service: Path, emitted: Scrape) -> None:
    rules = alert_rules(service)

    assert {rule["alert"] for rule in rules} >= {
        "WorkerDown",
        "WorkflowFailureRateHigh",
        "ActivityScheduleToStartHigh",
        "PayloadDecryptionFailing",
        "CircuitOpen",
    }
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        if "for" in rule:
            promql_parser.parse_duration(rule["for"])
        check_expression(rule["expr"], emitted, target_labels(service))


@pytest.mark.parametrize(
    ("expression", "complaint"),
    [
        ("sum(rate(shadow_activities_total[5m])", "unclosed left parenthesis"),
        ("rate(shadow_workflow_closed_total[5m])", "shadow_workflow_closed_total is not emitted"),
        ('shadow_activities_total{workflow_type="x"}', "has no label 'workflow_type'"),
        ("sum by (run_id) (shadow_workflows_started_total)", "no selected metric has label"),
    ],
)
def test_the_check_refuses_what_workers_do_not_export(
    expression: str, complaint: str, emitted: Scrape
) -> None:
    """The checks above are not vacuous: a typo in a name, a label or the syntax fails."""
    with pytest.raises((ValueError, AssertionError), match=re.escape(complaint)):
        check_expression(expression, emitted, {"job"})


def test_dashboard_queries_use_emitted_metrics(service: Path, emitted: Scrape) -> None:
    dashboard = json.loads((service / "deploy/observability/dashboard.json").read_text())
    expressions = [
        target["expr"].replace("$__rate_interval", "5m")
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    variables = [
        variable["query"]["query"]
        for variable in dashboard["templating"]["list"]
        if variable["type"] == "query"
    ]

    assert len(expressions) >= 10
    for expression in expressions:
        check_expression(expression, emitted, target_labels(service))
    for query in variables:
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", query)
        assert match, query
        metric, label = match.groups()
        check_expression(metric, emitted, target_labels(service))
        assert label in target_labels(service) | set().union(
            *emitted.label_sets(next(selectors(metric)).name)
        )


def test_the_scrape_job_finds_the_ops_port_and_the_alerts(service: Path) -> None:
    config = yaml.safe_load((service / "deploy/observability/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    port_rule = next(
        rule
        for rule in job["relabel_configs"]
        if rule["source_labels"] == ["__meta_kubernetes_pod_container_port_number"]
    )

    assert job["job_name"] == "example-worker"
    assert port_rule == {
        "source_labels": ["__meta_kubernetes_pod_container_port_number"],
        "regex": str(ShadowSettings().metrics_port),
        "action": "keep",
    }
    assert config["rule_files"] == ["alerts.yml"]
    assert {f'up{{job="{job["job_name"]}"}} == 0'} <= {
        rule["expr"] for rule in alert_rules(service)
    }
