"""The compose stack's Alertmanager: a valid config that routes each alert by its severity.

amtool and Alertmanager come from Debian's ``prometheus-alertmanager`` package (.ci/run
installs it). Without them these tests are skipped, saying so, except under CI, where
they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from helpers.rendering import render

from shadow_sdk.testing import BackgroundProcess, free_port

pytestmark = pytest.mark.slow

IN_CI = bool(os.environ.get("CI"))
SEVERITIES = {"critical", "warning"}


def binary(*names: str) -> Path:
    """The first of ``names`` on PATH; a skip (a failure under CI) naming the package if none."""
    for name in names:
        if found := shutil.which(name):
            return Path(found)
    reason = f"{names[0]} is not installed: apt-get install prometheus-alertmanager"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("alerting") / "service")


@pytest.fixture(scope="module")
def config(service: Path) -> Path:
    return service / "deploy/compose/alertmanager.yml"


@pytest.fixture
def amtool() -> Path:
    return binary("amtool")


def alert_rules(service: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load((service / "deploy/observability/alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def route(amtool: Path, config: Path, *labels: str) -> str:
    """The receiver(s) amtool says an alert with ``labels`` reaches."""
    result = subprocess.run(
        [amtool, "config", "routes", "test", "--config.file", config, *labels],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_alertmanager_config_passes_amtool(amtool: Path, config: Path) -> None:
    """Alertmanager's own checker accepts the file the stack mounts."""
    result = subprocess.run(
        [amtool, "check-config", config], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_reaches_the_receiver_of_its_severity(
    amtool: Path, config: Path, service: Path
) -> None:
    """Each rule carries a severity the routes know; amtool routes it to that receiver."""
    rules = alert_rules(service)
    reached = {
        rule["alert"]: route(
            amtool, config, f"alertname={rule['alert']}", f"severity={rule['labels']['severity']}"
        )
        for rule in rules
    }

    assert {rule["labels"]["severity"] for rule in rules} == SEVERITIES
    assert reached == {rule["alert"]: rule["labels"]["severity"] for rule in rules}


def test_critical_alerts_repeat_sooner_than_warnings(config: Path) -> None:
    """A critical alert is sent sooner and repeated more often than a warning."""
    document = yaml.safe_load(config.read_text())
    root = document["route"]
    routes = {child["receiver"]: {**root, **child} for child in root["routes"]}

    def seconds(duration: str) -> int:
        units = {"s": 1, "m": 60, "h": 3600}
        return int(duration[:-1]) * units[duration[-1]]

    for setting in ("group_wait", "repeat_interval"):
        assert seconds(routes["critical"][setting]) < seconds(routes["warning"][setting])


def test_prometheus_sends_alerts_to_the_stacks_alertmanager(service: Path) -> None:
    """Prometheus' alerting target is the compose service that mounts this config."""
    prometheus = yaml.safe_load((service / "deploy/compose/prometheus.yml").read_text())
    compose = yaml.safe_load((service / "compose.yaml").read_text())
    (manager,) = prometheus["alerting"]["alertmanagers"]
    (static,) = manager["static_configs"]
    alertmanager = compose["services"]["alertmanager"]

    assert static["targets"] == ["alertmanager:9093"]
    assert "127.0.0.1:9093:9093" in alertmanager["ports"]
    assert (
        "./deploy/compose/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"
        in alertmanager["volumes"]
    )
    assert "alertmanager" in compose["services"]["prometheus"]["depends_on"]


async def test_a_running_alertmanager_delivers_each_severity_to_its_webhook(
    config: Path, tmp_path: Path
) -> None:
    """Alerts posted to a real Alertmanager arrive at the critical and warning webhooks."""
    alertmanager = binary("prometheus-alertmanager", "alertmanager")
    received: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    async with webhook_receiver(received) as receiver_port:
        local = local_config(config, receiver_port, tmp_path)
        port = free_port()
        process = BackgroundProcess(
            [
                str(alertmanager),
                f"--config.file={local}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            log=tmp_path / "alertmanager.log",
        )
        with process.start(until=None):
            await asyncio.to_thread(process.wait_until_listening, port)
            async with aiohttp.ClientSession() as session:
                response = await session.post(
                    f"http://127.0.0.1:{port}/api/v2/alerts",
                    json=[
                        {"labels": {"alertname": "WorkerDown", "severity": "critical"}},
                        {"labels": {"alertname": "CircuitOpen", "severity": "warning"}},
                    ],
                )
                assert response.status == 200, await response.text()
            async with asyncio.timeout(30):
                deliveries = dict([await received.get(), await received.get()])

    assert set(deliveries) == {"/critical", "/warning"}
    for path, alertname in [("/critical", "WorkerDown"), ("/warning", "CircuitOpen")]:
        body = deliveries[path]
        assert body["receiver"] == path.strip("/")
        assert [alert["labels"]["alertname"] for alert in body["alerts"]] == [alertname]
        assert body["status"] == "firing"


def local_config(config: Path, receiver_port: int, directory: Path) -> Path:
    """The stack's file, with its webhooks on this machine's loopback, not the Docker host.

    Without the batching waits too, which would only slow the test down.
    """
    text = config.read_text().replace("host.docker.internal:5001", f"127.0.0.1:{receiver_port}")
    document = yaml.safe_load(text)
    for route_ in [document["route"], *document["route"]["routes"]]:
        route_["group_wait"] = "0s"
    local = directory / "alertmanager.yml"
    local.write_text(yaml.safe_dump(document))
    return local


@contextlib.asynccontextmanager
async def webhook_receiver(
    received: asyncio.Queue[tuple[str, dict[str, Any]]],
) -> AsyncIterator[int]:
    """An HTTP server on a loopback port that queues each webhook POST as (path, JSON)."""

    async def receive(request: web.Request) -> web.Response:
        await received.put((request.path, json.loads(await request.read())))
        return web.Response()

    app = web.Application()
    app.router.add_post("/{receiver}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield port
    finally:
        await runner.cleanup()
