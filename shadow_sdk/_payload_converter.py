"""The payload converter ShadowPlugin installs: pydantic's, its type adapters shared.

temporalio makes a new payload converter for every workflow run, and
``temporalio.contrib.pydantic`` keeps its cache of ``pydantic.TypeAdapter`` per
converter, so every run built the adapter of each type it decoded again: a schema
generated and compiled, about a millisecond a type, the largest single cost the
converter added to a short workflow. Here one cache serves the whole process.
"""

from __future__ import annotations

import functools
from typing import Any

import pydantic
import temporalio.api.common.v1
import temporalio.contrib.pydantic
import temporalio.converter

_TYPE_ADAPTERS = functools.lru_cache(maxsize=128)(pydantic.TypeAdapter)
"""The process's type adapters by type hint, least recently used evicted first.

128, because the cache keeps what it holds alive. Fed a new class on every run (see
below), a process grew 10.5 MiB over 5,000 runs and then stayed flat over 5,000 more
(measured after malloc_trim; 16.6 MiB with 1,024 entries, 1.3 MiB with a cache per
converter); a service with its types passed through holds one entry per type.

A type defined in a workflow's own module is a new class in every run (the sandbox
executes the module again), so it still misses; the types a workflow takes and
returns belong in a module imported through ``imports_passed_through()``.
"""


class _SharedAdapterJSONConverter(temporalio.contrib.pydantic.PydanticJSONPlainPayloadConverter):
    """Pydantic's JSON converter, with the process's type adapters."""

    def from_payload(
        self, payload: temporalio.api.common.v1.Payload, type_hint: type | None = None
    ) -> Any:
        """See base class."""
        hint = Any if type_hint is None else type_hint
        try:
            adapter = _TYPE_ADAPTERS(hint)
        except TypeError:
            try:
                hash(hint)
            except TypeError:  # An unhashable hint (Annotated metadata, say): not cached.
                adapter = pydantic.TypeAdapter(hint)
            else:
                raise
        return adapter.validate_json(payload.data)


class PydanticPayloadConverter(temporalio.contrib.pydantic.PydanticPayloadConverter):
    """``temporalio.contrib.pydantic.PydanticPayloadConverter``, sharing its type adapters.

    It converts exactly as that converter does (JSON through pydantic, the other
    default encodings unchanged); only the cache of type adapters is one per process.
    """

    def __init__(self) -> None:
        json_converter = _SharedAdapterJSONConverter()
        defaults = temporalio.converter.DefaultPayloadConverter.default_encoding_payload_converters
        temporalio.converter.CompositePayloadConverter.__init__(
            self,
            *(
                json_converter
                if isinstance(converter, temporalio.converter.JSONPlainPayloadConverter)
                else converter
                for converter in defaults
            ),
        )
