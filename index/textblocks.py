"""Document texts in the chunk store, in compressed blocks: one copy of every text.

A chunk's text is `document.text[start:end]`, so the store keeps only the documents' texts,
each cut into blocks of `BLOCK_CHARS` characters (code points, as Python indexes a str) and
each block deflated on its own. Reading a chunk inflates the one or two blocks its offsets
fall in, whatever the size of its document: SQLite's `substr` on a whole text walks the
UTF-8 from the start and reads every overflow page first (4 ms a chunk in the middle of a
2 MB PDF, against microseconds here).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

# Changing either changes the stored bytes: a new snapshot format (index/snapshot.py).
BLOCK_CHARS = 1024
_LEVEL = 6
_WBITS = -15  # raw deflate: no zlib header or checksum a block (SQLite pages carry none either)


def split_blocks(text: str) -> list[bytes]:
    """`text` as deflated blocks of BLOCK_CHARS characters (an empty text has none)."""
    return [
        _deflate(text[at : at + BLOCK_CHARS].encode("utf-8"))
        for at in range(0, len(text), BLOCK_CHARS)
    ]


def block_count(length: int) -> int:
    """How many blocks hold a text of `length` characters."""
    return -(-length // BLOCK_CHARS)


def blocks_of(start: int, end: int) -> tuple[int, int]:
    """The first and last block (within its document) that hold characters start:end; an
    empty span gives last < first."""
    return start // BLOCK_CHARS, (end - 1) // BLOCK_CHARS


def join_blocks(blocks: Iterable[bytes]) -> str:
    """The text of consecutive blocks."""
    return "".join(zlib.decompress(b, _WBITS).decode("utf-8") for b in blocks)


def slice_blocks(blocks: Sequence[bytes], first: int, start: int, end: int) -> str:
    """Characters start:end of a document, from its blocks numbered `first` onwards (those
    `blocks_of(start, end)` named)."""
    if end <= start:
        return ""
    offset = first * BLOCK_CHARS
    return join_blocks(blocks)[start - offset : end - offset]


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS)
    return compressor.compress(data) + compressor.flush()
