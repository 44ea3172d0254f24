"""Settings of a worker service, read from the environment and validated at start-up.

:class:`ShadowSettings` is one flat model composed of a part per concern, each in a
module of its own that declares and checks its fields: connection (``TEMPORAL_*``),
worker (``WORKER_*``), versioning (``TEMPORAL_DEPLOYMENT_NAME``,
``TEMPORAL_WORKER_BUILD_ID``), operations (``METRICS_*``, ``LOG_*``, ``OTEL_*``), shared
state (``REDIS_URL``), codec (``CODEC_*``) and auth (``AUTH_*``). Settings are data:
nothing here imports :mod:`shadow_sdk.auth` or :mod:`shadow_sdk.codec`, whose
classes build their objects from settings with ``from_settings``.
"""

from shadow_sdk._settings._connection import HOST_PORT
from shadow_sdk._settings._problems import LEGACY_VARIABLES, problems_building
from shadow_sdk._settings._shadow import ShadowSettings
from shadow_sdk._settings._types import Seconds
from shadow_sdk._settings._worker import SHUTDOWN_MARGIN

__all__ = [
    "HOST_PORT",
    "LEGACY_VARIABLES",
    "SHUTDOWN_MARGIN",
    "Seconds",
    "ShadowSettings",
    "problems_building",
]
