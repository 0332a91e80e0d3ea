"""The chunk store: documents, chunks and code mentions in one SQLite file (standard library).

Row numbers of the `chunks` table are the row ids of the dense and lexical indexes.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ingest import Chunk, CodeMention, Document
from ingest.glossary import CodeEntry, Descriptor, build_glossary

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
    modifiers TEXT NOT NULL, role TEXT NOT NULL, from_range INTEGER NOT NULL
);
CREATE INDEX mentions_code ON mentions(code);
CREATE TABLE glossary (code TEXT PRIMARY KEY, entry TEXT NOT NULL);
"""


def write_store(path: Path, documents: Sequence[Document], chunks: Sequence[Chunk]) -> None:
    """Write a new store file at `path` (which must not exist yet)."""
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
            "INSERT INTO mentions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                )
                for row, c in enumerate(chunks)
                for m in c.codes
            ],
        )
        connection.executemany(
            "INSERT INTO glossary VALUES (?, ?)",
            [
                (code, json.dumps(asdict(entry)))
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
    return CodeEntry(**data)


class ChunkStore:
    """The store loaded into memory: chunks by row, documents by id, rows by code."""

    def __init__(
        self,
        documents: dict[str, Document],
        chunks: list[Chunk],
        glossary: dict[str, CodeEntry] | None = None,
    ) -> None:
        self.documents = documents
        self.chunks = chunks
        self.glossary = glossary or {}
        self.rows_by_code: dict[str, list[int]] = defaultdict(list)
        for row, chunk in enumerate(chunks):
            for code in dict.fromkeys(m.code for m in chunk.codes):
                self.rows_by_code[code].append(row)

    @classmethod
    def load(cls, path: Path) -> ChunkStore:
        # Opened read-only so that a reader can never modify a published snapshot.
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            documents = {
                row[0]: Document(
                    id=row[0],
                    path=row[1],
                    sha256=row[2],
                    title=row[3],
                    text=row[4],
                    format=row[5],
                    page_starts=tuple(json.loads(row[6])),
                )
                for row in connection.execute(
                    "SELECT id, path, sha256, title, text, format, page_starts FROM documents "
                    "ORDER BY rowid"
                )
            }
            mentions: dict[int, list[CodeMention]] = defaultdict(list)
            for row in connection.execute(
                'SELECT chunk_row, code, system, category, start, "end", modifiers, role, '
                "from_range FROM mentions ORDER BY rowid"
            ):
                mentions[row[0]].append(
                    CodeMention(
                        code=row[1],
                        system=row[2],
                        category=row[3],
                        start=row[4],
                        end=row[5],
                        modifiers=tuple(json.loads(row[6])),
                        role=row[7],
                        from_range=bool(row[8]),
                    )
                )
            chunks = [
                Chunk(
                    id=row[1],
                    document_id=row[2],
                    start=row[3],
                    end=row[4],
                    text=row[5],
                    codes=tuple(mentions.get(row[0], ())),
                    context=row[6],
                    page=row[7],
                    last_page=row[8],
                )
                for row in connection.execute(
                    'SELECT row, id, document_id, start, "end", text, context, page, last_page '
                    "FROM chunks ORDER BY row"
                )
            ]
            glossary = {
                code: _entry_of(raw)
                for code, raw in connection.execute("SELECT code, entry FROM glossary")
            }
        finally:
            connection.close()
        return cls(documents, chunks, glossary)

    def known_codes(self) -> set[str]:
        return set(self.rows_by_code)
