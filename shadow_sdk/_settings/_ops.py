"""Operations settings: the ops server (``METRICS_*``), logs (``LOG_*``) and traces (``OTEL_*``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from shadow_sdk._settings._types import SettingsPart


class OpsSettings(SettingsPart):
    """What operators watch: probes and metrics, logs, traces."""

    metrics_host: str = "0.0.0.0"  # noqa: S104  Probes and scrapes come from outside the pod.
    """Address of the ops server (/metrics, /live, /ready, /health)."""
    metrics_port: Annotated[int, Field(ge=0, lt=65536)] | None = 9464
    """Port of the ops server; 0 picks a free one."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """Level of the process's logs."""
    log_format: Literal["text", "json"] = "text"
    """``text`` for people, ``json`` for log pipelines."""
    otel_exporter_otlp_endpoint: str | None = None
    """OTLP/HTTP endpoint for traces; unset: no tracing, at no cost."""
    otel_service_name: str | None = None
    """``service.name`` of the traces; unset: the task queue."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, level: object) -> object:
        return level.upper() if isinstance(level, str) else level
