"""Value types of settings, and how text from the environment becomes them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

import pydantic
import pydantic_settings
from pydantic import BeforeValidator, SecretStr


def _seconds(value: object) -> object:
    """Read plain numbers (``"30"``, ``"2.5"``) as seconds; pydantic takes ISO 8601 otherwise."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _comma_list(value: object) -> object:
    """Split ``"a, b"`` into ``["a", "b"]``; a JSON list is read as JSON."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            return _json_object(value)
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _json_object(value: object) -> object:
    """Parse a JSON object given as a string; pydantic checks the result's shape."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError('expected a JSON object such as {"name": "value"}') from None
    return value


Seconds = Annotated[timedelta, BeforeValidator(_seconds)]
"""A duration given in seconds (``30``, ``"2.5"``) or as ISO 8601 (``"PT1M"``)."""

SecretsByName = Annotated[
    dict[str, SecretStr], pydantic_settings.NoDecode, BeforeValidator(_json_object)
]
"""Secrets by name, from a JSON object (``{"name": "value"}``); the values are never shown."""

CommaList = Annotated[list[str], pydantic_settings.NoDecode, BeforeValidator(_comma_list)]
"""Strings given comma-separated (``"a, b"``) or as a JSON list."""


class SettingsPart(pydantic.BaseModel):
    """The settings of one concern; :class:`~shadow_sdk.ShadowSettings` inherits every part.

    A part declares its fields, checks each of them with field validators, and
    checks how its fields combine in :meth:`_problems`.
    """

    def _problems(self) -> list[str]:
        """Combinations of values that do not work, one ``VARIABLE: reason`` line each.

        Checked once every field is valid. Each part returns the problems of the
        parts after it in the method resolution order followed by its own
        (``[*super()._problems(), ...]``), so that one error lists them all.
        """
        return []


def reveal(secret: SecretStr | None) -> str | None:
    """The value of ``secret``, or ``None``."""
    return None if secret is None else secret.get_secret_value()
