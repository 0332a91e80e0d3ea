"""The chunk store's file: its tables, how they are written, and how a row's packed columns
(a chunk's mentions, a glossary entry) are encoded and decoded. Reading is index/store.py."""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from index.textblocks import split_blocks
from ingest import Chunk, CodeMention, Document
from ingest.dates import PassageDate
from ingest.glossary import CodeEntry, Descriptor, build_glossary
from ingest.history import CodeChange

# Format 9 (index/snapshot.py): a document's text is stored once, in deflated blocks
# (index/textblocks.py), and a chunk's text is read from it by the chunk's offsets; a chunk's
# id is its document's row and number (ids are "<document id>#<n>", ingest/corpus.py); its
# mentions are one JSON column (offsets from the chunk's start), so no mentions table and no
# index by code (rows by code are arrays, index/coderows.py); context lines and passage dates
# are stored once and referred to by number; glossary entries are deflated JSON.
_SCHEMA = """
CREATE TABLE documents (
    row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, path TEXT NOT NULL,
    sha256 TEXT NOT NULL, title TEXT NOT NULL, format TEXT NOT NULL, page_starts TEXT NOT NULL,
    first_block INTEGER NOT NULL, length INTEGER NOT NULL
);
CREATE TABLE text_blocks (block INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE contexts (row INTEGER PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY, document INTEGER NOT NULL, number INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, context INTEGER NOT NULL,
    page INTEGER, last_page INTEGER, mentions TEXT NOT NULL, date INTEGER
);
CREATE UNIQUE INDEX chunk_numbers ON chunks(document, number);
CREATE TABLE dates (
    row INTEGER PRIMARY KEY, year INTEGER, words TEXT NOT NULL, source TEXT NOT NULL
);
CREATE TABLE glossary (
    code TEXT PRIMARY KEY, mentions INTEGER NOT NULL, standalone INTEGER NOT NULL,
    entry BLOB NOT NULL
);
"""


def write_store(
    path: Path,
    documents: Sequence[Document],
    chunks: Sequence[Chunk],
    dates: Sequence[PassageDate] = (),
) -> None:
    """Write a new store file at `path` (which must not exist yet); `dates`, one per chunk,
    are the years the passages speak for (ingest/dates.py). Every chunk's id must be its
    document's id, "#" and a number, and its text the document's text at its offsets."""
    connection = sqlite3.connect(path)
    try:
        connection.executescript(_SCHEMA)
        document_rows = _write_documents(connection, documents)
        contexts: dict[str, int] = {}
        distinct: dict[PassageDate, int] = {}
        connection.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    row,
                    document_rows[c.document_id],
                    _number_of(c, documents[document_rows[c.document_id]]),
                    c.start,
                    c.end,
                    contexts.setdefault(c.context, len(contexts)),
                    c.page,
                    c.last_page,
                    _mentions_json(c),
                    distinct.setdefault(dates[row], len(distinct)) if dates else None,
                )
                for row, c in enumerate(chunks)
            ),
        )
        connection.executemany(
            "INSERT INTO contexts VALUES (?, ?)", [(i, text) for text, i in contexts.items()]
        )
        connection.executemany(
            "INSERT INTO dates VALUES (?, ?, ?, ?)",
            [(i, d.year, d.words, d.source) for d, i in distinct.items()],
        )
        connection.executemany(
            "INSERT INTO glossary VALUES (?, ?, ?, ?)",
            [
                (code, entry.mentions, entry.standalone, _deflate_json(asdict(entry)))
                for code, entry in sorted(build_glossary(documents, chunks).items())
            ],
        )
        connection.commit()
    finally:
        connection.close()


def _write_documents(
    connection: sqlite3.Connection, documents: Sequence[Document]
) -> dict[str, int]:
    """Insert the documents and their text blocks; return each document's row."""
    rows: dict[str, int] = {}
    first_block = 0
    for row, d in enumerate(documents):
        blocks = split_blocks(d.text)
        connection.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row,
                d.id,
                d.path,
                d.sha256,
                d.title,
                d.format,
                json.dumps(d.page_starts),
                first_block,
                len(d.text),
            ),
        )
        connection.executemany(
            "INSERT INTO text_blocks VALUES (?, ?)",
            [(first_block + i, block) for i, block in enumerate(blocks)],
        )
        first_block += len(blocks)
        rows[d.id] = row
    return rows


def _number_of(chunk: Chunk, document: Document) -> int:
    """The number in a chunk's id, checking what the store relies on to rebuild the chunk."""
    prefix, _, number = chunk.id.rpartition("#")
    if prefix != chunk.document_id or not number.isdigit() or str(int(number)) != number:
        raise ValueError(f"chunk id {chunk.id!r} is not {chunk.document_id!r}, '#' and a number")
    if document.text[chunk.start : chunk.end] != chunk.text:
        raise ValueError(
            f"chunk {chunk.id} is not its document's text at {chunk.start}:{chunk.end}"
        )
    return int(number)


# A mention's fields after its offsets, with their defaults: trailing defaults are left out.
_MENTION_DEFAULTS = ([], "mentioned", 0, 0)


def _mentions_json(chunk: Chunk) -> str:
    rows = []
    for m in chunk.codes:
        row = [m.code, m.system, m.category, m.start - chunk.start, m.end - chunk.start]
        row += [list(m.modifiers), m.role, int(m.from_range), int(m.names_section)]
        while len(row) > 5 and row[-1] == _MENTION_DEFAULTS[len(row) - 6]:
            row.pop()
        rows.append(row)
    return json.dumps(rows, separators=(",", ":"))


def mentions_of(raw: str, start: int) -> tuple[CodeMention, ...]:
    mentions = []
    for row in json.loads(raw):
        code, system, category, begin, end = row[:5]
        modifiers, role, from_range, names_section = [*row[5:], *_MENTION_DEFAULTS[len(row) - 5 :]]
        mentions.append(
            CodeMention(
                code=code,
                system=system,
                category=category,
                start=begin + start,
                end=end + start,
                modifiers=tuple(modifiers),
                role=role,
                from_range=bool(from_range),
                names_section=bool(names_section),
            )
        )
    return tuple(mentions)


def _deflate_json(data: dict[str, Any]) -> bytes:
    # A common code's entry lists thousands of documents: deflated, a tenth of the bytes.
    return zlib.compress(json.dumps(data, separators=(",", ":")).encode("utf-8"))


def entry_of(raw: bytes) -> CodeEntry:
    data = json.loads(zlib.decompress(raw))
    data["descriptors"] = [Descriptor(**d) for d in data["descriptors"]]
    data["related"] = [(code, count) for code, count in data["related"]]
    data["changes"] = [
        CodeChange(**{**c, "replacements": tuple(c["replacements"])})
        for c in data.get("changes", ())
    ]
    return CodeEntry(**data)
