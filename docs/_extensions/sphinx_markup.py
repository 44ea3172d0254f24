"""Render shadow_sdk's docstring markup in the API reference.

shadow_sdk's docstrings are Google style with the reStructuredText markup that
temporalio's docstrings use too: roles (``:class:`KeyRing```,
``:meth:`~shadow_sdk.ShadowWorker.run```), literal blocks introduced by ``::``, and
``.. warning::``. mkdocstrings renders Markdown, so this Griffe extension rewrites
that markup once the package is loaded, before any docstring is parsed:

* a role whose target, resolved from where the docstring is, is an object the
  reference renders becomes a cross-reference to it; any other target (temporalio,
  the standard library, a private helper) becomes inline code;
* a bare target that resolves to nothing is logged as a warning, which fails the
  strict build, so that a renamed method leaves no stale reference behind;
* ``text::`` and its indented block become ``text:`` and a code block, and
  ``.. warning::`` becomes a Google ``Warning:`` admonition.

It also warns about every name in an ``__all__`` that has no docstring: the
reference renders documented objects only, so it would leave that name out.
"""

from __future__ import annotations

import builtins
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`(?P<body>[^`]+)`")
TITLED = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")
DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. (?P<kind>warning|note|seealso)::\s*$")

logger = griffe.get_logger("shadow_sdk.docs")


class SphinxMarkup(griffe.Extension):
    """Rewrites the docstrings of a package, once it is loaded, from reST markup to Markdown."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """See base class."""
        public = _public_paths(pkg)
        for obj in _objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _markdown(obj.docstring.value, obj, public)


def _objects(obj: griffe.Object) -> list[griffe.Object]:
    """``obj`` and everything defined in it (aliases are documented where they point)."""
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias:
            found += _objects(member)
    return found


def _public_paths(pkg: griffe.Module) -> dict[str, str]:
    """Where the reference renders each object: canonical path to the exported path."""
    public: dict[str, str] = {}

    def add(obj: griffe.Object | griffe.Alias, path: str) -> None:
        try:
            canonical = obj.canonical_path
            target = obj.final_target if obj.is_alias else obj
        except griffe.AliasResolutionError:
            return
        # Only what has a docstring is rendered, and so can be linked to.
        if not target.has_docstrings:
            return
        public.setdefault(canonical, path)
        if target.is_class:
            for name, member in target.members.items():
                if not name.startswith("_"):
                    add(member, f"{path}.{name}")

    modules = [
        module
        for module in _objects(pkg)
        if module.is_module and not any(part.startswith("_") for part in module.path.split("."))
    ]
    for module in modules:
        for name in module.exports or ():
            if isinstance(name, str) and name in module.members:
                add(module.members[name], f"{module.path}.{name}")
                if f"{module.path}.{name}" not in public.values():
                    logger.warning(
                        "%s: %s exports %s, which has no docstring: the API reference "
                        "would leave it out",
                        module.relative_filepath,
                        module.path,
                        name,
                    )
    return public


def _markdown(text: str, obj: griffe.Object, public: dict[str, str]) -> str:
    lines = []
    for line in text.split("\n"):
        if directive := DIRECTIVE.match(line):
            lines.append(f"{directive['indent']}{directive['kind'].title()}:")
        elif line.rstrip().endswith("::"):
            # The indented block that follows is a code block in Markdown already.
            if introduction := line.rstrip()[:-2].rstrip():
                lines.append(f"{introduction}:")
        else:
            lines.append(line)
    return ROLE.sub(lambda role: _reference(role["body"], obj, public), "\n".join(lines))


def _reference(body: str, obj: griffe.Object, public: dict[str, str]) -> str:
    if titled := TITLED.match(body):
        title, target = titled["title"], titled["target"]
    else:
        target = body.lstrip("~")
        title = target.rpartition(".")[2] if body.startswith("~") else target
    path = _resolve(target, obj)
    if path is None:
        # Names of other libraries (and builtins) are left as code; a name of this
        # package, or a bare name that should be in scope, is a mistake.
        own = target.split(".")[0] == obj.package.name
        if own or ("." not in target and not hasattr(builtins, target)):
            logger.warning(
                "%s: the docstring of %s refers to %r, which does not exist",
                obj.relative_filepath,
                obj.path,
                target,
            )
    elif path in public:
        return f"[`{title}`][{public[path]}]"
    return f"`{title}`"


def _resolve(target: str, obj: griffe.Object) -> str | None:
    """The canonical path of ``target`` as written in the docstring of ``obj``.

    ``None`` when its first name is not in scope there, or when it names an object of
    this package that does not exist.
    """
    first, _, rest = target.partition(".")
    try:
        path = obj.resolve(first)
    except griffe.NameResolutionError:
        if first != obj.package.name:
            return None
        path = first
    path = f"{path}.{rest}" if rest else path
    try:
        return obj.modules_collection[path].canonical_path
    except KeyError:
        return None if path.split(".")[0] == obj.package.name else path
    except griffe.AliasResolutionError:
        return path
