"""The chunk store: documents, chunks and code mentions in one SQLite file (standard library),
written by index/storefile.py.

Row numbers of the `chunks` table are the row ids of the dense and lexical indexes.

A loaded store reads rows on demand: a query touches a few dozen chunks, and reading every
chunk into memory at load time would make a cold start grow with the corpus (100,000 chunks
took seconds). Each thread keeps its own read-only connection to the immutable file, and
recently read chunks and documents are cached. A chunk's text is read from the one or two
blocks of its document's text that hold it (index/textblocks.py).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Any, overload

from index.coderows import CodeRows
from index.storefile import entry_of, mentions_of
from index.textblocks import BLOCK_CHARS, block_count, join_blocks, slice_blocks
from ingest import Chunk, Document
from ingest.dates import PassageDate
from ingest.glossary import CodeEntry
from ingest.types import chunk_id

# A chunk's columns with its document's id, row, first text block and length.
_CHUNK_COLUMNS = (
    'c.row, d.id, c.number, c.start, c."end", x.text, c.page, c.last_page, c.mentions, '
    "d.row, d.first_block, d.length"
)
_CHUNK_TABLES = (
    "chunks c JOIN documents d ON d.row = c.document JOIN contexts x ON x.row = c.context"
)
# ...and the blocks holding its text (SQLite's integer division truncates, as Python's //
# does on offsets >= 0), one row a block.
_CHUNK_READ = (
    f"SELECT {_CHUNK_COLUMNS}, b.data FROM {_CHUNK_TABLES} LEFT JOIN text_blocks b "
    f"ON b.block BETWEEN d.first_block + c.start / {BLOCK_CHARS} "
    f'AND d.first_block + (c."end" - 1) / {BLOCK_CHARS} WHERE c.row = ? ORDER BY b.block'
)
_DOCUMENT_COLUMNS = "id, path, sha256, title, format, page_starts, first_block, length"
CACHED_CHUNKS = 4096
CACHED_DOCUMENTS = 256


def _chunk(row: Sequence[Any], text: str) -> Chunk:
    """A chunk from a row of `_CHUNK_COLUMNS` and its text."""
    start = row[3]
    return Chunk(
        id=chunk_id(row[1], row[2]),
        document_id=row[1],
        start=start,
        end=row[4],
        text=text,
        codes=mentions_of(row[8], start),
        context=row[5],
        page=row[6],
        last_page=row[7],
    )


def _document(row: Sequence[Any], text: str) -> Document:
    return Document(
        id=row[0],
        path=row[1],
        sha256=row[2],
        title=row[3],
        text=text,
        format=row[4],
        page_starts=tuple(json.loads(row[5])),
    )


class _Connections:
    """One read-only connection per thread (sqlite3 objects must stay in their thread)."""

    def __init__(self, path: Path) -> None:
        # immutable=1: a published snapshot never changes, so SQLite may skip its locks.
        self._uri = f"file:{path}?mode=ro&immutable=1"
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
            self._local.connection = connection
        return connection

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        return self.get().execute(sql, parameters).fetchall()


class ChunkRows(Sequence[Chunk]):
    """The chunks by row number, read on demand (a Sequence: len, [row], slices, iteration)."""

    def __init__(self, connections: _Connections, count: int) -> None:
        self._db = connections
        self._count = count
        self._cached = lru_cache(maxsize=CACHED_CHUNKS)(self._read)

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, row: int) -> Chunk: ...
    @overload
    def __getitem__(self, row: slice) -> list[Chunk]: ...
    def __getitem__(self, row: int | slice) -> Chunk | list[Chunk]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(self._count))]
        row = int(row)
        if row < 0:
            row += self._count
        if not 0 <= row < self._count:
            raise IndexError(f"chunk row {row} out of range")
        return self._cached(row)

    def _read(self, row: int) -> Chunk:
        found = self._db.query(_CHUNK_READ, (row,))
        first = found[0]
        blocks = [r[-1] for r in found if r[-1] is not None]
        text = slice_blocks(blocks, first[3] // BLOCK_CHARS, first[3], first[4])
        return _chunk(first, text)

    def __iter__(self) -> Iterator[Chunk]:
        """Every chunk in row order, read in one pass (for ingest and evaluation); each
        document's text is read once for a run of its chunks."""
        connection = self._db.get()
        text_of = _DocumentTexts(self._db)
        for row in connection.execute(
            f"SELECT {_CHUNK_COLUMNS} FROM {_CHUNK_TABLES} ORDER BY c.row"
        ):
            yield _chunk(row, text_of(row[9], row[10], row[11])[row[3] : row[4]])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]


class _DocumentTexts:
    """The text of the last document asked for, kept for the next chunks of the same one."""

    def __init__(self, connections: _Connections) -> None:
        self._db = connections
        self._row = -1
        self._text = ""

    def __call__(self, document_row: int, first_block: int, length: int) -> str:
        if document_row != self._row:
            self._text = _read_text(self._db, first_block, length)
            self._row = document_row
        return self._text


def _read_text(connections: _Connections, first_block: int, length: int) -> str:
    """A document's whole text (`length` characters) from its blocks."""
    blocks = connections.query(
        "SELECT data FROM text_blocks WHERE block >= ? AND block < ? ORDER BY block",
        (first_block, first_block + block_count(length)),
    )
    return join_blocks(b for (b,) in blocks)


class _TextOnFirstUse:
    """A document's text, read once: a descriptor without __set__, so the text stored in the
    instance (on first use, or by a constructor given every field) is what later reads find.
    Two threads reading it at once each read the same text; no lock is held meanwhile."""

    def __get__(self, document: Any, owner: type | None = None) -> Any:
        if document is None:
            return self
        text = document._read_text()
        document.__dict__["text"] = text
        return text


class StoredDocument(Document):
    """A document of the store whose text is read (its blocks inflated) on first use: a hit
    needs its document's id and title, seldom its text, and the text of a large PDF takes
    milliseconds to inflate. Equal to the Document with the same fields; built with every
    field (as `dataclasses.replace` does), it is an ordinary Document."""

    @classmethod
    def lazy(cls, document: Document, read_text: Callable[[], str]) -> StoredDocument:
        stored = cls.__new__(cls)
        for name in _DOCUMENT_FIELDS:
            if name != "text":
                object.__setattr__(stored, name, getattr(document, name))
        object.__setattr__(stored, "_read_text", read_text)
        return stored

    text = _TextOnFirstUse()  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Document):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _DOCUMENT_FIELDS)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in _DOCUMENT_FIELDS))


_DOCUMENT_FIELDS = tuple(f.name for f in fields(Document))


class DocumentMap(Mapping[str, Document]):
    """The documents by id, read on demand (a Mapping)."""

    def __init__(self, connections: _Connections) -> None:
        self._db = connections
        found = connections.query("SELECT id, row FROM documents ORDER BY row")
        self._ids = [r[0] for r in found]
        self.rows: dict[str, int] = dict(found)
        self._cached = lru_cache(maxsize=CACHED_DOCUMENTS)(self._read)

    def __getitem__(self, document_id: str) -> Document:
        if document_id not in self.rows:
            raise KeyError(document_id)
        return self._cached(document_id)

    def _read(self, document_id: str) -> Document:
        found = self._db.query(
            f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE id = ?", (document_id,)
        )
        row = found[0]
        return StoredDocument.lazy(_document(row, ""), lambda: _read_text(self._db, row[6], row[7]))

    def _of(self, row: Sequence[Any]) -> Document:
        return _document(row, _read_text(self._db, row[6], row[7]))

    def __contains__(self, document_id: object) -> bool:
        return document_id in self.rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def values(self) -> list[Document]:  # type: ignore[override]
        """Every document in ingest order."""
        return [
            self._of(row)
            for row in self._db.query(f"SELECT {_DOCUMENT_COLUMNS} FROM documents ORDER BY row")
        ]


class Glossary(Mapping[str, CodeEntry]):
    """The glossary by code: codes and mention counts in memory, entries read on demand."""

    def __init__(self, connections: _Connections) -> None:
        self._db = connections
        self.counts: dict[str, int] = dict(
            connections.query("SELECT code, mentions FROM glossary ORDER BY code")
        )
        # Codes the corpus writes on its own somewhere: the only ones an answer may point to.
        self.standalone: frozenset[str] = frozenset(
            code for (code,) in connections.query("SELECT code FROM glossary WHERE standalone > 0")
        )
        self._cached = lru_cache(maxsize=CACHED_DOCUMENTS)(self._read)

    def __getitem__(self, code: str) -> CodeEntry:
        if code not in self.counts:
            raise KeyError(code)
        return self._cached(code)

    def _read(self, code: str) -> CodeEntry:
        found = self._db.query("SELECT entry FROM glossary WHERE code = ?", (code,))
        return entry_of(found[0][0])

    def __contains__(self, code: object) -> bool:
        return code in self.counts

    def __iter__(self) -> Iterator[str]:
        return iter(self.counts)

    def __len__(self) -> int:
        return len(self.counts)


class ChunkStore:
    """A published store, read on demand: chunks by row, documents by id, the glossary."""

    def __init__(self, path: Path, rows_by_code: CodeRows) -> None:
        self._db = _Connections(path)
        count = self._db.query("SELECT COUNT(*) FROM chunks")[0][0]
        self.chunks = ChunkRows(self._db, int(count))
        self.documents = DocumentMap(self._db)
        self.glossary = Glossary(self._db)
        self.rows_by_code = rows_by_code  # arrays written at ingest (index/coderows.py)

    @classmethod
    def load(cls, path: Path, rows_by_code: CodeRows) -> ChunkStore:
        if not path.is_file():
            raise FileNotFoundError(path)
        return cls(path, rows_by_code)

    def rows_of_document(self, document_id: str) -> list[int]:
        """The chunk rows of one document, in text order."""
        document = self.documents.rows.get(document_id)
        rows = self._db.query(
            'SELECT row FROM chunks WHERE document = ? ORDER BY start, "end"', (document,)
        )
        return [int(r[0]) for r in rows]

    def known_codes(self) -> set[str]:
        return set(self.glossary.counts)

    def dates_of(self, chunk_ids: Sequence[str]) -> dict[str, PassageDate]:
        """The year each chunk speaks for (by chunk id), with the words it was read from."""
        found = {}
        for wanted in chunk_ids:
            document_id, _, number = wanted.rpartition("#")
            dated = self._db.query(
                "SELECT d.year, d.words, d.source FROM chunks c JOIN dates d ON d.row = c.date "
                "WHERE c.document = ? AND c.number = ?",
                (self.documents.rows.get(document_id), int(number) if number.isdigit() else -1),
            )
            if dated:
                found[wanted] = PassageDate(*dated[0])
        return found
