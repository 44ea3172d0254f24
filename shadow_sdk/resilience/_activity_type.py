"""The activity type that ``@activity.defn`` gave a callable, for names in keys and reports.

temporalio has no public way to ask a callable for its activity type: the
decorator stores a definition on the function under
``__temporal_activity_definition``, an instance of a private class that the
worker and ``workflow.execute_activity`` read. This is the one place where
shadow_sdk reads it, by attribute and duck typing rather than by importing the
private class, so that a change of shape in temporalio degrades to the
function's own name instead of an error.
"""

from __future__ import annotations

_DEFINITION = "__temporal_activity_definition"


def activity_definition(fn: object) -> tuple[bool, str | None]:
    """Whether ``fn`` is an activity, and its type (``None`` for a dynamic activity)."""
    definition = getattr(fn, _DEFINITION, None)
    if definition is None:
        return False, None
    name = getattr(definition, "name", None)
    return True, name if isinstance(name, str) and name else None
