"""Bounded caches of what a passage says whatever the question is (its sentences' words, its
codes' roles, a mention's verdict and nearest words): the same passages come back question
after question while a snapshot serves.

Entries are keyed by `passage_key`, which holds the passage's text beside its id and offsets,
so that a document edited in place (the same id and offsets, other words) is read afresh;
a string's hash is computed once per string. A cache is emptied when it reaches its bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest import Chunk

LIMIT = 16384


def passage_key(chunk: Chunk) -> tuple[str, int, int, int, str]:
    """A passage's part of a cache key (not the Chunk itself: hashing a frozen dataclass
    hashes every field and mention on every call)."""
    return (chunk.id, chunk.start, chunk.end, len(chunk.codes), chunk.text)


def cached(cache: dict, key: object, make: Callable[[], Any], limit: int = LIMIT) -> Any:
    """`cache[key]`, made on first use; the cache is emptied when it holds `limit` entries."""
    found = cache.get(key)
    if found is None:
        if len(cache) >= limit:
            cache.clear()
        found = cache[key] = make()
    return found
