from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from shadow_sdk.testing import DevServer

pytestmark = [pytest.mark.filterwarnings("default"), pytest.mark.slow]  # Runs inner suites.

INNER_TESTS = """
async def test_environment(temporal_env, temporal_client):
    print("time-skipping" if temporal_env.supports_time_skipping else "real time")
    print("address", temporal_client.service_client.config.target_host)
    assert "shadow_sdk.ShadowPlugin" in [p.name() for p in temporal_client.config()["plugins"]]

def test_task_queue(task_queue):
    print("queue", task_queue)
"""


@pytest.fixture
def inner_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_inner=INNER_TESTS)
    return pytester


@pytest.fixture
def running_server() -> Iterator[str]:
    """A dev server started the way an operator would, outside the test process."""
    with DevServer() as server:
        yield server.address


def test_time_skipping_is_the_default(inner_suite: pytest.Pytester) -> None:
    """Without the option, temporal_env is a time-skipping server with ShadowPlugin."""
    result = inner_suite.runpytest("-s")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*time-skipping*"])


def test_local_selects_a_dev_server(inner_suite: pytest.Pytester) -> None:
    """--temporal-environment=local gives each test a dev server."""
    result = inner_suite.runpytest("-s", "--temporal-environment=local")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*real time*"])


def test_an_address_selects_a_running_server(
    inner_suite: pytest.Pytester, running_server: str
) -> None:
    """--temporal-environment=HOST:PORT runs the suite against that server."""
    result = inner_suite.runpytest("-s", f"--temporal-environment={running_server}")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*address {running_server}*"])


def test_task_queues_are_unique_and_readable(inner_suite: pytest.Pytester) -> None:
    """Each test's queue starts with its name and differs between runs."""
    first = inner_suite.runpytest("-s", "-k", "task_queue")
    second = inner_suite.runpytest("-s", "-k", "task_queue")

    queues = [
        match[1]
        for result in (first, second)
        for match in re.finditer(r"queue (\S+)", result.stdout.str())
    ]
    assert len(queues) == 2
    assert all(queue.startswith("test_task_queue-") for queue in queues)
    assert queues[0] != queues[1]


def test_an_unknown_environment_is_a_usage_error(inner_suite: pytest.Pytester) -> None:
    """A typo in --temporal-environment stops the run instead of being taken for an address."""
    result = inner_suite.runpytest("--temporal-environment=time_skipping")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--temporal-environment='time_skipping': expected*"])


def test_without_pytest_asyncio_pytest_still_runs(inner_suite: pytest.Pytester) -> None:
    """Disabling pytest-asyncio removes the server fixtures, nothing else."""
    result = inner_suite.runpytest("-p", "no:asyncio", "-k", "task_queue")

    result.assert_outcomes(passed=1, deselected=1)


def test_isolated_environment_hides_the_developers_configuration(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TEMPORAL_* and settings variables disappear and HOME points at an empty directory."""
    monkeypatch.setenv("TEMPORAL_API_KEY", "developer-key")
    monkeypatch.setenv("WORKER_MAX_CONCURRENT_ACTIVITIES", "3")
    monkeypatch.setenv("UNRELATED", "kept")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_isolation="""
        import os
        from pathlib import Path

        def test_isolated(isolated_environment):
            assert "TEMPORAL_API_KEY" not in os.environ
            assert "WORKER_MAX_CONCURRENT_ACTIVITIES" not in os.environ
            assert os.environ["UNRELATED"] == "kept"
            assert Path.home() == isolated_environment
            assert list(isolated_environment.iterdir()) == []
        """
    )

    result = pytester.runpytest()

    result.assert_outcomes(passed=1)


def test_isolated_environment_hides_a_services_own_settings(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The variables of a service's Settings subclass are hidden too, aliases and prefixes."""
    monkeypatch.setenv("ORDERS_API_URL", "http://developer-laptop:8080")
    monkeypatch.setenv("LEGACY_ORDERS_TOKEN", "developer-token")
    monkeypatch.setenv("BILLING_REGION", "eu-developer")
    monkeypatch.setenv("UNRELATED", "kept")
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(
        """
        import pydantic
        import pydantic_settings
        from shadow_sdk import ShadowSettings

        class Settings(ShadowSettings):
            orders_api_url: str = "http://orders:8080"
            orders_token: str = pydantic.Field(
                "", validation_alias=pydantic.AliasChoices("ORDERS_TOKEN", "LEGACY_ORDERS_TOKEN")
            )

        class BillingSettings(Settings):
            model_config = pydantic_settings.SettingsConfigDict(env_prefix="BILLING_")
            region: str = "eu"
        """
    )
    pytester.makepyfile(
        test_isolation="""
        import os

        def test_isolated(isolated_environment):
            assert "ORDERS_API_URL" not in os.environ
            assert "LEGACY_ORDERS_TOKEN" not in os.environ
            assert "BILLING_REGION" not in os.environ
            assert os.environ["UNRELATED"] == "kept"
        """
    )

    result = pytester.runpytest()

    result.assert_outcomes(passed=1)
