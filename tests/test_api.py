from __future__ import annotations

import ast
import importlib
import importlib.metadata
import types
from pathlib import Path

import pytest

import shadow_sdk

PUBLIC_MODULES = [
    "shadow_sdk",
    "shadow_sdk.auth",
    "shadow_sdk.codec",
    "shadow_sdk.observability",
    "shadow_sdk.resilience",
    "shadow_sdk.testing",
]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_all_lists_exactly_the_public_names(module_name: str) -> None:
    """Each public module exports what __all__ says, nothing private, nothing twice."""
    module = importlib.import_module(module_name)

    public = {
        name
        for name, value in vars(module).items()
        # pytest rewrites asserts in its plugins' packages and adds "@py_builtins" and the like.
        if name[0] not in "_@" and not isinstance(value, types.ModuleType)
    }
    # Names a module imports when first asked for (its __getattr__) must resolve too.
    lazy = {name for name in module.__all__ if name not in vars(module)}
    public |= {name for name in lazy if callable(getattr(module, name))}

    assert len(module.__all__) == len(set(module.__all__))  # Ruff keeps the order (RUF022).
    assert set(module.__all__) - {"__version__"} == public


def test_every_public_object_is_exported_once() -> None:
    """No object is reachable under two public names across the public modules."""
    seen: dict[int, str] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, str | tuple):
                continue
            assert id(obj) not in seen, f"{module_name}.{name} is also {seen[id(obj)]}"
            seen[id(obj)] = f"{module_name}.{name}"


def test_version_matches_the_installed_distribution() -> None:
    """__version__ is the version pip and uv see."""
    assert shadow_sdk.__version__ == importlib.metadata.version("shadow-sdk")


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_temporalio_uses(source: str) -> list[str]:
    """Private temporalio modules imported and private names reached, in ``source``."""
    uses = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("temporalio"):
            names = [node.module or "", *(alias.name for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith("temporalio")]
        elif isinstance(node, ast.Attribute) and ast.unparse(node).startswith("temporalio."):
            names = [ast.unparse(node)]
        else:
            continue
        uses += [name for name in names if any(map(is_private, name.split(".")))]
    return uses


def test_the_sdk_uses_no_private_temporalio_names() -> None:
    """temporalio may change its private modules in any release; the SDK must not break."""
    package = Path(shadow_sdk.__file__).parent
    uses = {
        str(path.relative_to(package)): found
        for path in sorted(package.rglob("*.py"))
        if (found := private_temporalio_uses(path.read_text()))
    }

    assert private_temporalio_uses("temporalio.converter.Converter.__init__(x)") == []
    assert private_temporalio_uses("import temporalio.worker._x\ntemporalio.workflow._D") == [
        "temporalio.worker._x",
        "temporalio.workflow._D",
    ]
    assert uses == {}
