"""TLS, mutual TLS and API keys as real handshakes: nginx terminates TLS before the dev server.

Every connection is configured the way services configure it, by ``TEMPORAL_*`` variables
read by ``ShadowSettings``; workers and clients then run a workflow through the terminator,
or are refused by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.tls_terminator import Authority, Gateway, Terminator, find_nginx, nginx_terminator
from helpers.workflows import SlowStepWorkflow, slow_step
from temporalio.testing import WorkflowEnvironment

from shadow_sdk import ShadowSettings, ShadowWorker, connect

NGINX = find_nginx()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        NGINX is None,
        reason="nginx is not installed: these tests need a real TLS terminator "
        "(Debian: apt-get install nginx; .ci/run installs it when it runs as root)",
    ),
]

API_KEY = "tls-test-api-key-7f3a"


@dataclass(frozen=True)
class Pki:
    """Throwaway certificates: a CA the clients trust, and one they do not."""

    ca: Path
    server: Terminator
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    """A client certificate from the untrusted CA."""
    stranger_key: Path
    imposter: Terminator
    """A server certificate for the right names, from the untrusted CA."""


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    directory = tmp_path / "pki"
    directory.mkdir()
    trusted, untrusted = Authority.create("trusted-ca"), Authority.create("untrusted-ca")
    server_cert, server_key = trusted.issue(directory, "temporal", server=True)
    client_cert, client_key = trusted.issue(directory, "worker", server=False)
    stranger_cert, stranger_key = untrusted.issue(directory, "stranger", server=False)
    imposter_cert, imposter_key = untrusted.issue(directory, "imposter", server=True)
    return Pki(
        ca=trusted.write(directory),
        server=Terminator(server_cert, server_key),
        client_cert=client_cert,
        client_key=client_key,
        stranger_cert=stranger_cert,
        stranger_key=stranger_key,
        imposter=Terminator(imposter_cert, imposter_key),
    )


@pytest.fixture
def gateway(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> Iterator[Callable[[Terminator], Gateway]]:
    """Start nginx in front of this test's dev server; every one started is stopped."""
    assert NGINX is not None
    upstream = dev_server_env.client.service_client.config.target_host
    numbers = itertools.count()
    with contextlib.ExitStack() as started:

        def start(terminator: Terminator) -> Gateway:
            directory = tmp_path / f"nginx-{next(numbers)}"
            return started.enter_context(nginx_terminator(NGINX, directory, upstream, terminator))

        yield start


def settings_from(
    monkeypatch: pytest.MonkeyPatch, gateway: Gateway, **variables: str | Path
) -> ShadowSettings:
    """ShadowSettings read from the environment, as a service reads them."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", gateway.address)
    monkeypatch.setenv("TEMPORAL_TASK_QUEUE", f"tls-{uuid.uuid4()}")
    for name, value in variables.items():
        monkeypatch.setenv(name, str(value))
    return ShadowSettings()


async def run_workflow_through(settings: ShadowSettings) -> str:
    """Connect a worker and, separately, a client with ``settings``; run a workflow with an
    activity: two TLS connections, each call of both through the terminator."""
    worker_client = await connect(settings)
    client = await connect(settings)
    async with ShadowWorker(
        worker_client, settings, workflows=[SlowStepWorkflow], activities=[slow_step]
    ):
        return await client.execute_workflow(
            SlowStepWorkflow.run,
            0.1,
            id=f"tls-{uuid.uuid4()}",
            task_queue=str(settings.temporal_task_queue),
        )


async def requests_of(gateway: Gateway, method: str) -> list[str]:
    """The access log's lines of calls to ``method``, once there is one (nginx writes a line
    just after it answers, so the caller may see the answer first)."""
    async with asyncio.timeout(10):
        while True:
            lines = [line for line in gateway.access_log() if f"WorkflowService/{method} " in line]
            if lines:
                return lines
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    "variables",
    [
        {"TEMPORAL_TLS": "true", "TEMPORAL_TLS_SERVER_CA_CERT_PATH": "{ca}"},
        {"TEMPORAL_TLS_SERVER_CA_CERT_DATA": "{ca_pem}", "TEMPORAL_TLS_SERVER_NAME": "localhost"},
    ],
    ids=["ca-file-ip-address", "ca-data-server-name"],
)
async def test_server_tls_carries_a_worker_and_a_client(
    gateway: Callable[[Terminator], Gateway],
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
) -> None:
    """The server's certificate is checked against the CA, by IP address or by server name."""
    terminator = gateway(pki.server)
    values = {"ca": str(pki.ca), "ca_pem": pki.ca.read_text()}
    settings = settings_from(
        monkeypatch,
        terminator,
        **{name: value.format(**values) for name, value in variables.items()},
    )

    assert await run_workflow_through(settings) == "finished"

    starts = await requests_of(terminator, "StartWorkflowExecution")
    assert await requests_of(terminator, "PollActivityTaskQueue")
    assert all(line.endswith(" 200") for line in starts), starts
    calls = terminator.access_log()
    assert all(line.startswith("TLSv1.3 NONE ") for line in calls), calls


@pytest.mark.parametrize("form", ["path", "data"])
async def test_mutual_tls_with_the_client_certificate_runs_the_workflow(
    gateway: Callable[[Terminator], Gateway], pki: Pki, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    """The terminator verifies the client's certificate and sees who it is."""
    terminator = gateway(Terminator(pki.server.certificate, pki.server.key, client_ca=pki.ca))
    client: dict[str, str | Path]
    if form == "path":
        client = {
            "TEMPORAL_TLS_CLIENT_CERT_PATH": pki.client_cert,
            "TEMPORAL_TLS_CLIENT_KEY_PATH": pki.client_key,
        }
    else:
        client = {
            "TEMPORAL_TLS_CLIENT_CERT_DATA": pki.client_cert.read_text(),
            "TEMPORAL_TLS_CLIENT_KEY_DATA": pki.client_key.read_text(),
        }
    settings = settings_from(
        monkeypatch, terminator, TEMPORAL_TLS_SERVER_CA_CERT_PATH=pki.ca, **client
    )

    assert await run_workflow_through(settings) == "finished"

    assert await requests_of(terminator, "PollWorkflowTaskQueue")
    assert await requests_of(terminator, "RespondActivityTaskCompleted")
    calls = terminator.access_log()
    assert all(line.startswith('TLSv1.3 SUCCESS "CN=worker" ') for line in calls), calls


@pytest.mark.parametrize(
    ("certificate", "refusal"),
    [(None, "client certificate required"), ("stranger", "client certificate not trusted")],
    ids=["without-certificate", "certificate-of-another-ca"],
)
async def test_mutual_tls_refuses_a_client_without_a_trusted_certificate(
    gateway: Callable[[Terminator], Gateway],
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    certificate: str | None,
    refusal: str,
) -> None:
    """The refusal reaches the caller as a gRPC status that says what is missing."""
    terminator = gateway(Terminator(pki.server.certificate, pki.server.key, client_ca=pki.ca))
    client = (
        {
            "TEMPORAL_TLS_CLIENT_CERT_PATH": pki.stranger_cert,
            "TEMPORAL_TLS_CLIENT_KEY_PATH": pki.stranger_key,
        }
        if certificate
        else {}
    )
    settings = settings_from(
        monkeypatch, terminator, TEMPORAL_TLS_SERVER_CA_CERT_PATH=pki.ca, **client
    )

    with pytest.raises(RuntimeError, match=rf'code: Unauthenticated, message: "{refusal}"'):
        await connect(settings)

    # Refused by nginx (HTTP 204 carrying the gRPC status), never passed to Temporal.
    refused = await requests_of(terminator, "GetSystemInfo")
    assert all(line.endswith(" 204") for line in refused), refused


@pytest.mark.parametrize(
    ("server", "variables", "error"),
    [
        ("imposter", {"TEMPORAL_TLS_SERVER_CA_CERT_PATH": "{ca}"}, "UnknownIssuer"),
        ("server", {"TEMPORAL_TLS": "true"}, "UnknownIssuer"),
        (
            "server",
            {
                "TEMPORAL_TLS_SERVER_CA_CERT_PATH": "{ca}",
                "TEMPORAL_TLS_SERVER_NAME": "temporal.example.com",
            },
            "NotValidForName",
        ),
    ],
    ids=["signed-by-another-ca", "private-ca-not-given", "other-server-name"],
)
async def test_an_untrusted_server_certificate_is_refused(
    gateway: Callable[[Terminator], Gateway],
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    server: str,
    variables: dict[str, str],
    error: str,
) -> None:
    """The client ends the handshake: not one request reaches the terminator's backend."""
    terminator = gateway(getattr(pki, server))
    settings = settings_from(
        monkeypatch,
        terminator,
        **{name: value.format(ca=pki.ca) for name, value in variables.items()},
    )

    with pytest.raises(RuntimeError, match=rf"InvalidCertificate\({error}"):
        await connect(settings)

    assert terminator.access_log() == []


@pytest.mark.parametrize("source", ["TEMPORAL_API_KEY", "TEMPORAL_API_KEY_FILE"])
async def test_an_api_key_over_tls_is_accepted_by_the_gateway(
    gateway: Callable[[Terminator], Gateway],
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    source: str,
) -> None:
    """Workers and clients send the key with every call, the long polls included."""
    terminator = gateway(Terminator(pki.server.certificate, pki.server.key, api_key=API_KEY))
    key: str | Path = API_KEY
    if source == "TEMPORAL_API_KEY_FILE":
        key = tmp_path / "api-key"
        key.write_text(f"{API_KEY}\n")
    settings = settings_from(
        monkeypatch, terminator, TEMPORAL_TLS_SERVER_CA_CERT_PATH=pki.ca, **{source: key}
    )

    assert await run_workflow_through(settings) == "finished"

    assert await requests_of(terminator, "PollActivityTaskQueue")
    assert await requests_of(terminator, "RespondActivityTaskCompleted")


@pytest.mark.parametrize("key", [None, "tls-test-api-key-wrong"], ids=["missing", "wrong"])
async def test_a_missing_or_wrong_api_key_is_refused(
    gateway: Callable[[Terminator], Gateway],
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    key: str | None,
) -> None:
    terminator = gateway(Terminator(pki.server.certificate, pki.server.key, api_key=API_KEY))
    variables = {"TEMPORAL_API_KEY": key} if key else {}
    settings = settings_from(
        monkeypatch, terminator, TEMPORAL_TLS_SERVER_CA_CERT_PATH=pki.ca, **variables
    )

    with pytest.raises(
        RuntimeError, match=r'code: Unauthenticated, message: "missing or invalid API key"'
    ):
        await connect(settings)
