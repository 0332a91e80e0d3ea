"""A code glossary built from the corpus itself: what the texts say each code is.

For every code: the descriptors found where the text defines it ("62272 Spinal puncture,
therapeutic, ..."), each with the passage it came from; how often and in which documents it is
mentioned, with its roles; how many of those mentions the text writes on its own (not only as
the inside of a range, nor as an end of a range naming a whole section: CODING_FACTS.md §2, a
code written only so is no answer code); and the codes mentioned in the same passages. cptqa
ships no CPT descriptors of its own: the corpus is the source, and every descriptor carries its
provenance.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ingest.code_shapes import CODE_SHAPE, MODIFIERS_AFTER, code_section, unique_codes
from ingest.history import CodeChange
from ingest.stated import MAX_STATED, stated_changes
from ingest.types import Chunk, CodeMention, Document

MAX_DESCRIPTORS = 5
MAX_PASSAGES = 20
MAX_RELATED = 10
_DESCRIPTOR_CHARS = 240

_LEAD = re.compile(
    rf"^{MODIFIERS_AFTER.pattern}\s*(?:[:=,–—-]\s*|\(\s*)?"
    r"(?:(?:is\s+used\s+to\s+describe|describes|is\s+defined\s+as|represents|means|is)\s+)?"
)
_STOP = re.compile(rf"(?<=[a-z)\]])\.(?:\s|$)|[;\n]|\?|\s{CODE_SHAPE}\b")


@dataclass(frozen=True)
class Descriptor:
    text: str
    chunk_id: str
    document_id: str


@dataclass
class CodeEntry:
    code: str
    system: str
    category: str
    section: str | None
    mentions: int = 0
    roles: dict[str, int] = field(default_factory=dict)
    documents: list[str] = field(default_factory=list)
    chunk_ids: list[str] = field(default_factory=list)
    descriptors: list[Descriptor] = field(default_factory=list)
    related: list[tuple[str, int]] = field(default_factory=list)
    # Mentions written on their own: neither a range's inside nor a section range's end.
    standalone: int = 0
    # Changes the corpus states about the code, each with its passage (ingest/stated.py).
    changes: list[CodeChange] = field(default_factory=list)


def build_glossary(documents: Sequence[Document], chunks: Iterable[Chunk]) -> dict[str, CodeEntry]:
    """One entry per code mentioned in `chunks`, from the words of the corpus."""
    texts = {d.id: d.text for d in documents}
    entries: dict[str, CodeEntry] = {}
    seen: dict[str, set[tuple[str, int]]] = defaultdict(set)  # (doc, start) counted once
    related: dict[str, Counter[str]] = defaultdict(Counter)
    # Membership of entry.documents, as sets: a code cited in thousands of documents must not
    # make every mention scan the list (quadratic at a million chunks).
    in_documents: dict[str, set[str]] = defaultdict(set)
    for chunk in chunks:
        codes_here = unique_codes(chunk.codes)
        for mention in chunk.codes:
            entry = entries.get(mention.code) or _new_entry(mention)
            entries[mention.code] = entry
            if len(entry.chunk_ids) < MAX_PASSAGES and chunk.id not in entry.chunk_ids:
                entry.chunk_ids.append(chunk.id)
            key = (chunk.document_id, mention.start)
            if key in seen[mention.code]:
                continue  # the same mention in an overlapping chunk
            seen[mention.code].add(key)
            entry.mentions += 1
            entry.standalone += writes_alone(mention)
            entry.roles[mention.role] = entry.roles.get(mention.role, 0) + 1
            if chunk.document_id not in in_documents[mention.code]:
                in_documents[mention.code].add(chunk.document_id)
                entry.documents.append(chunk.document_id)
            if mention.role == "defined" and writes_alone(mention):
                _add_descriptor(entry, texts[chunk.document_id], mention, chunk)
        for code in codes_here:
            related[code].update(c for c in codes_here if c != code)
        for change in stated_changes(chunk):
            _add_change(entries[change.code], change)
    for code, entry in entries.items():
        entry.related = related[code].most_common(MAX_RELATED)
    return entries


def _add_change(entry: CodeEntry, change: CodeChange) -> None:
    """Keep a stated change once (overlapping chunks repeat a sentence), up to MAX_STATED."""
    key = (change.change, change.year, change.replacements, change.text)
    if len(entry.changes) >= MAX_STATED or any(
        (c.change, c.year, c.replacements, c.text) == key for c in entry.changes
    ):
        return
    entry.changes.append(change)


def writes_alone(mention: CodeMention) -> bool:
    """The text writes the code itself, not only inside a range ("64479-64484" gives 64481)
    or as an end of a range naming a section ("70000-79999")."""
    return not (mention.from_range or mention.names_section)


def _new_entry(mention: CodeMention) -> CodeEntry:
    return CodeEntry(
        code=mention.code,
        system=mention.system,
        category=mention.category,
        section=code_section(mention.code),
    )


def _add_descriptor(entry: CodeEntry, text: str, mention: CodeMention, chunk: Chunk) -> None:
    # "(77002)" after a noun phrase: the phrase is the descriptor, not what follows.
    descriptor = descriptor_before(text, mention) or descriptor_after(text, mention)
    if not descriptor or len(entry.descriptors) >= MAX_DESCRIPTORS:
        return
    if any(d.text.lower() == descriptor.lower() for d in entry.descriptors):
        return
    entry.descriptors.append(Descriptor(descriptor, chunk.id, chunk.document_id))


def descriptor_after(text: str, mention: CodeMention) -> str:
    """The words that follow a code and describe it, up to the end of their sentence."""
    tail = text[mention.end : mention.end + _DESCRIPTOR_CHARS * 2]
    tail = tail[_LEAD.match(tail).end() :]  # type: ignore[union-attr]
    stop = _STOP.search(tail)
    words = tail[: stop.start() if stop else _DESCRIPTOR_CHARS].strip(" ,;:-–—()\"'")
    if len(words) < 8 or not re.match(r"[A-Za-z]", words):
        return ""
    return _shorten(words)


def descriptor_before(text: str, mention: CodeMention) -> str:
    """A descriptor written before a code in parentheses: "non-spinal guidance (77002)"."""
    head = text[max(0, mention.start - _DESCRIPTOR_CHARS) : mention.start]
    if not head.rstrip().endswith("("):
        return ""
    clause = re.split(r"[.;:\n?!]|\bfor\b|\bwith\b|,", head.rstrip()[:-1])[-1].strip()
    return _shorten(clause) if len(clause) >= 8 else ""


def _shorten(words: str) -> str:
    words = " ".join(words.split())
    if len(words) <= _DESCRIPTOR_CHARS:
        return words
    return words[:_DESCRIPTOR_CHARS].rsplit(" ", 1)[0] + " ..."


def suggest_codes(
    code: str, known: Iterable[str], counts: dict[str, int] | None = None
) -> list[str]:
    """Known codes one edit away from `code` (one character changed, or two swapped), the
    most mentioned first: the seed's typo "62370" suggests 62270."""
    found = [k for k in known if len(k) == len(code) and _one_edit(code, k)]
    counts = counts or {}
    return sorted(found, key=lambda k: (-counts.get(k, 0), k))[:5]


def _one_edit(a: str, b: str) -> bool:
    diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if len(diffs) == 1:
        return True
    return (
        len(diffs) == 2
        and diffs[1] == diffs[0] + 1
        and a[diffs[0]] == b[diffs[1]]
        and a[diffs[1]] == b[diffs[0]]
    )
