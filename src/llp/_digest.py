"""Short content digests for names and keys (study names, report folders, settings)."""

from __future__ import annotations

import hashlib


def short_digest(text: str, length: int = 8) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``text`` (UTF-8; lone
    surrogates are kept, so any Python string has a digest).

    >>> short_digest("llp")
    '742f5d59'
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]
