"""The documentation keeps up with the code: every setting, every public package.

The strict docs build (``nox -s docs``) checks the rest: links, anchors, and the API
reference rendered from the docstrings of what each ``__all__`` exports.
"""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

import pytest

import shadow_sdk
from shadow_sdk import ShadowSettings
from shadow_sdk._settings import LEGACY_VARIABLES

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_PAGE = ROOT / "docs" / "settings.md"
MIGRATING_PAGE = ROOT / "docs" / "migrating.md"

# `NAME`, or `PREFIX_<NAME>` for a setting read from a family of variables.
VARIABLE = re.compile(r"`([A-Z][A-Z0-9_]*?)(?:_<[A-Z]+>)?`")


def setting_variables() -> set[str]:
    """The environment variable of each field ShadowSettings reads, taken from the model."""
    prefix = ShadowSettings.model_config.get("env_prefix", "")
    variables = set()
    for name, field in ShadowSettings.model_fields.items():
        alias = field.validation_alias
        variables.add(alias.upper() if isinstance(alias, str) else f"{prefix}{name}".upper())
    return variables


def documented_variables() -> set[str]:
    """The variables named in the first column of the tables of docs/settings.md."""
    documented = set()
    for line in SETTINGS_PAGE.read_text().splitlines():
        if line.startswith("|"):
            documented.update(VARIABLE.findall(line.split("|")[1]))
    return documented


def replacements(page: Path) -> dict[str, set[str]]:
    """Each refused variable named in the first column of ``page``'s tables, and the
    variables the second column names beside it (but the variable itself)."""
    found: dict[str, set[str]] = {}
    for line in page.read_text().splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            for old in set(VARIABLE.findall(cells[1])) & set(LEGACY_VARIABLES):
                found[old] = set(VARIABLE.findall(cells[2])) - {old}
    return found


def public_packages() -> list[str]:
    """shadow_sdk and each of its public subpackages."""
    return ["shadow_sdk"] + [
        f"shadow_sdk.{module.name}"
        for module in pkgutil.iter_modules(shadow_sdk.__path__)
        if module.ispkg and not module.name.startswith("_")
    ]


def test_settings_page_lists_every_setting() -> None:
    """Each variable ShadowSettings reads has its row in docs/settings.md."""
    missing = setting_variables() - documented_variables()

    assert not missing, f"docs/settings.md does not list {sorted(missing)}"


def test_settings_page_lists_only_settings() -> None:
    """Each variable docs/settings.md lists is one ShadowSettings reads, or one it refuses."""
    unknown = documented_variables() - setting_variables() - set(LEGACY_VARIABLES)

    assert not unknown, f"docs/settings.md lists {sorted(unknown)}, which no setting reads"


def test_settings_page_names_every_refused_variable() -> None:
    """The variables of the system the kit replaces, which settings refuse, are each named."""
    missing = set(LEGACY_VARIABLES) - documented_variables()

    assert not missing, f"docs/settings.md does not say what to set instead of {sorted(missing)}"


def test_the_migration_guide_agrees_with_the_settings_page() -> None:
    """docs/migrating.md names every refused variable, each with what settings.md sets instead."""
    expected = replacements(SETTINGS_PAGE)

    assert set(expected) == set(LEGACY_VARIABLES)
    assert replacements(MIGRATING_PAGE) == expected


def test_the_settings_are_found_where_the_model_declares_them() -> None:
    """The names come from the model: its aliases and field names, not from a list here."""
    variables = setting_variables()

    assert {"TEMPORAL_ADDRESS", "TEMPORAL_GRPC_META", "REDIS_URL", "CODEC_KEYS"} <= variables
    assert len(variables) == len(ShadowSettings.model_fields)


@pytest.mark.parametrize("package", public_packages())
def test_api_reference_has_a_page_per_public_package(package: str) -> None:
    """A public package gets its reference page, in the navigation, rendering that package."""
    name = package.rpartition(".")[2]
    page = ROOT / "docs" / "reference" / f"{name}.md"

    assert page.is_file(), f"{package} has no API reference page {page.relative_to(ROOT)}"
    assert re.search(rf"^::: {re.escape(package)}$", page.read_text(), flags=re.MULTILINE)
    assert f"reference/{name}.md" in (ROOT / "mkdocs.yml").read_text()
