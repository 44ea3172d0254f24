"""Which environment variables a test must not inherit from the developer's shell."""

from __future__ import annotations

import pydantic

from shadow_sdk._settings import LEGACY_VARIABLES, ShadowSettings


def settings_variables() -> set[str]:
    """The variables ShadowSettings and its subclasses imported so far read, upper case.

    Aliases and ``env_prefix`` included, and the variables of the system the kit
    replaces, which settings refuse.
    """
    found = set(LEGACY_VARIABLES)
    classes: list[type[ShadowSettings]] = [ShadowSettings]
    while classes:
        settings = classes.pop()
        classes.extend(settings.__subclasses__())
        prefix = settings.model_config.get("env_prefix") or ""
        for name, field in settings.model_fields.items():
            found.add(f"{prefix}{name}".upper())
            alias = field.validation_alias
            choices = alias.choices if isinstance(alias, pydantic.AliasChoices) else [alias]
            found.update(choice.upper() for choice in choices if isinstance(choice, str))
    return found
