"""The chunk store: documents, chunks and code mentions in one SQLite file (standard library).

Row numbers of the `chunks` table are the row ids of the dense and lexical indexes.

A loaded store reads rows on demand: a query touches a few dozen chunks, and reading every
chunk into memory at load time would make a cold start grow with the corpus (100,000 chunks
took seconds). Each thread keeps its own read-only connection to the immutable file, and
recently read chunks and documents are cached.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any, overload

from index.coderows import CodeRows
from ingest import Chunk, CodeMention, Document
from ingest.dates import PassageDate
from ingest.glossary import CodeEntry, Descriptor, build_glossary
from ingest.history import CodeChange

_SCHEMA = """
CREATE TABLE documents (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL, title TEXT NOT NULL,
    text TEXT NOT NULL, format TEXT NOT NULL, page_starts TEXT NOT NULL
);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, document_id TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL, context TEXT NOT NULL,
    page INTEGER, last_page INTEGER
);
CREATE TABLE mentions (
    chunk_row INTEGER NOT NULL, code TEXT NOT NULL, system TEXT NOT NULL,
    category TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    modifiers TEXT NOT NULL, role TEXT NOT NULL, from_range INTEGER NOT NULL,
    names_section INTEGER NOT NULL
);
CREATE INDEX mentions_code ON mentions(code);
CREATE INDEX mentions_row ON mentions(chunk_row);
CREATE TABLE dates (
    row INTEGER PRIMARY KEY, year INTEGER, words TEXT NOT NULL, source TEXT NOT NULL
);
CREATE TABLE glossary (
    code TEXT PRIMARY KEY, mentions INTEGER NOT NULL, standalone INTEGER NOT NULL,
    entry TEXT NOT NULL
);
"""


def write_store(
    path: Path,
    documents: Sequence[Document],
    chunks: Sequence[Chunk],
    dates: Sequence[PassageDate] = (),
) -> None:
    """Write a new store file at `path` (which must not exist yet); `dates`, one per chunk,
    are the years the passages speak for (ingest/dates.py)."""
    connection = sqlite3.connect(path)
    try:
        connection.executescript(_SCHEMA)
        connection.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (d.id, d.path, d.sha256, d.title, d.text, d.format, json.dumps(d.page_starts))
                for d in documents
            ],
        )
        connection.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (row, c.id, c.document_id, c.start, c.end, c.text, c.context, c.page, c.last_page)
                for row, c in enumerate(chunks)
            ],
        )
        connection.executemany(
            "INSERT INTO mentions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    row,
                    m.code,
                    m.system,
                    m.category,
                    m.start,
                    m.end,
                    json.dumps(list(m.modifiers)),
                    m.role,
                    int(m.from_range),
                    int(m.names_section),
                )
                for row, c in enumerate(chunks)
                for m in c.codes
            ],
        )
        connection.executemany(
            "INSERT INTO dates VALUES (?, ?, ?, ?)",
            [(row, d.year, d.words, d.source) for row, d in enumerate(dates)],
        )
        connection.executemany(
            "INSERT INTO glossary VALUES (?, ?, ?, ?)",
            [
                (code, entry.mentions, entry.standalone, json.dumps(asdict(entry)))
                for code, entry in sorted(build_glossary(documents, chunks).items())
            ],
        )
        connection.commit()
    finally:
        connection.close()


def _entry_of(raw: str) -> CodeEntry:
    data = json.loads(raw)
    data["descriptors"] = [Descriptor(**d) for d in data["descriptors"]]
    data["related"] = [(code, count) for code, count in data["related"]]
    data["changes"] = [
        CodeChange(**{**c, "replacements": tuple(c["replacements"])})
        for c in data.get("changes", ())
    ]
    return CodeEntry(**data)


_CHUNK_COLUMNS = 'row, id, document_id, start, "end", text, context, page, last_page'
_MENTION_COLUMNS = (
    'chunk_row, code, system, category, start, "end", modifiers, role, from_range, names_section'
)
_DOCUMENT_COLUMNS = "id, path, sha256, title, text, format, page_starts"
CACHED_CHUNKS = 4096
CACHED_DOCUMENTS = 256


def _mention(row: Sequence[Any]) -> CodeMention:
    return CodeMention(
        code=row[1],
        system=row[2],
        category=row[3],
        start=row[4],
        end=row[5],
        modifiers=tuple(json.loads(row[6])),
        role=row[7],
        from_range=bool(row[8]),
        names_section=bool(row[9]),
    )


def _chunk(row: Sequence[Any], mentions: Sequence[CodeMention]) -> Chunk:
    return Chunk(
        id=row[1],
        document_id=row[2],
        start=row[3],
        end=row[4],
        text=row[5],
        codes=tuple(mentions),
        context=row[6],
        page=row[7],
        last_page=row[8],
    )


def _document(row: Sequence[Any]) -> Document:
    return Document(
        id=row[0],
        path=row[1],
        sha256=row[2],
        title=row[3],
        text=row[4],
        format=row[5],
        page_starts=tuple(json.loads(row[6])),
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
        found = self._db.query(f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE row = ?", (row,))
        mentions = self._db.query(
            f"SELECT {_MENTION_COLUMNS} FROM mentions WHERE chunk_row = ? ORDER BY rowid", (row,)
        )
        return _chunk(found[0], [_mention(m) for m in mentions])

    def __iter__(self) -> Iterator[Chunk]:
        """Every chunk in row order, read in one pass (for ingest and evaluation)."""
        connection = self._db.get()
        mentions = connection.execute(
            f"SELECT {_MENTION_COLUMNS} FROM mentions ORDER BY chunk_row, rowid"
        )
        pending = mentions.fetchone()
        for row in connection.execute(f"SELECT {_CHUNK_COLUMNS} FROM chunks ORDER BY row"):
            own: list[CodeMention] = []
            while pending is not None and pending[0] == row[0]:
                own.append(_mention(pending))
                pending = mentions.fetchone()
            yield _chunk(row, own)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]


class DocumentMap(Mapping[str, Document]):
    """The documents by id, read on demand (a Mapping)."""

    def __init__(self, connections: _Connections) -> None:
        self._db = connections
        self._ids = [r[0] for r in connections.query("SELECT id FROM documents ORDER BY rowid")]
        self._known = frozenset(self._ids)
        self._cached = lru_cache(maxsize=CACHED_DOCUMENTS)(self._read)

    def __getitem__(self, document_id: str) -> Document:
        if document_id not in self._known:
            raise KeyError(document_id)
        return self._cached(document_id)

    def _read(self, document_id: str) -> Document:
        found = self._db.query(
            f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE id = ?", (document_id,)
        )
        return _document(found[0])

    def __contains__(self, document_id: object) -> bool:
        return document_id in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def values(self) -> list[Document]:  # type: ignore[override]
        """Every document in ingest order, read in one pass."""
        return [
            _document(row)
            for row in self._db.query(f"SELECT {_DOCUMENT_COLUMNS} FROM documents ORDER BY rowid")
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
        return _entry_of(found[0][0])

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
        """The chunk rows of one document, in text order. A chunk's id is its document's id,
        "#" and a number (ingest/corpus.py), so the range over the unique index on `id` finds
        them without reading the whole table."""
        rows = self._db.query(
            "SELECT row FROM chunks WHERE id >= ? AND id < ? AND document_id = ?"
            ' ORDER BY start, "end"',
            (f"{document_id}#", f"{document_id}$", document_id),
        )
        return [int(r[0]) for r in rows]

    def known_codes(self) -> set[str]:
        return set(self.glossary.counts)

    def dates_of(self, chunk_ids: Sequence[str]) -> dict[str, PassageDate]:
        """The year each chunk speaks for (by chunk id), with the words it was read from."""
        marks = ", ".join("?" * len(chunk_ids))
        found = self._db.query(
            "SELECT c.id, d.year, d.words, d.source FROM chunks c JOIN dates d ON d.row = c.row "
            f"WHERE c.id IN ({marks})",
            list(chunk_ids),
        )
        return {cid: PassageDate(year, words, source) for cid, year, words, source in found}
