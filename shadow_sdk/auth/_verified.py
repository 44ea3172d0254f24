"""Tokens already verified: a bounded cache, so that a caller's every call does not pay again.

A client sends the same token with every call until it renews it, and verifying a
signature is the expensive part of verifying a token. The cache is keyed by the
SHA-256 of the whole token, signature included: a token forged with the same claims
differs in its signature, misses, and is verified (and refused) like any other. It
holds only tokens that passed every check, and never answers for a token past its
``exp``: the time claims are judged again, against the caller's ``now``, on every hit.
A verifier's keys are fixed when it is made, so a key change means a new verifier, and
a new, empty cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shadow_sdk.auth._tokens import Identity

DEFAULT_SIZE = 1024
"""Tokens remembered by default: about 0.5 MiB with typical claims."""


@dataclass(frozen=True)
class VerifiedToken:
    """What a verification found: the identity, and the time claims to judge again."""

    identity: Identity
    expires: float
    issued: float
    not_before: float | None


class VerifiedTokens:
    """The ``size`` tokens verified most recently, by the SHA-256 of the token.

    Safe to share between threads: an activity's thread and the event loop may verify
    at the same time.
    """

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 0:
            raise ValueError(f"size={size!r}: must be 0 (no cache) or more")
        self.size = size
        self._entries: OrderedDict[bytes, VerifiedToken] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str) -> VerifiedToken | None:
        """The verification of ``token``, if it is remembered."""
        if not self.size:
            return None
        digest = _digest(token)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is not None:
                self._entries.move_to_end(digest)
            return entry

    def put(self, token: str, entry: VerifiedToken) -> None:
        """Remember ``token``'s verification, forgetting the least recently used beyond size."""
        if not self.size:
            return
        digest = _digest(token)
        with self._lock:
            self._entries[digest] = entry
            self._entries.move_to_end(digest)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget(self, token: str) -> None:
        """Drop ``token``, as once it expired."""
        with self._lock:
            self._entries.pop(_digest(token), None)

    def __len__(self) -> int:
        return len(self._entries)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
