"""Per-chunk signals computed once at ingest and stored beside the vectors as .npy arrays, so
that ranking reads a number per candidate instead of re-reading its text.

    question_share.npy  float32  the share of the chunk's characters that sit in questions
    site_flags.npy      uint8    the kinds of needle site the chunk assigns (index/lexicon.py)
    doc_year.npy        int16    the year the chunk speaks for (ingest/dates.py): its own
                                 newest date, else its document's; 0 when unknown
    first_asks.npy      float32  `question_share` of the chunk's document's first chunk (a
                                 thread's opening post asks; the replies answer)
    passage_year.npy    int16    the year the passage speaks for (ingest/dates.py
                                 `passage_date`): its own newest date when it states one
                                 (a 2009 reply in a thread bumped in 2015 is 2009), else its
                                 document's; 0 when unknown. The words it was read from are
                                 in the store (`ChunkStore.dates_of`).
    states_change.npy   uint8    1 when the passage states a code change with its year
                                 ("62311 was deleted in 2017", ingest/stated.py): it gives
                                 a current rule that overrides older advice
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from index.lexicon import site_flags
from ingest import Chunk, Document
from ingest.dates import PassageDate, chunk_dates, text_year
from ingest.stated import stated_changes

# Bump when a signal's meaning or computation changes: a snapshot records the version its
# signals were computed by, loading refuses another, and `cptqa ingest` recomputes them (they
# are read from the chunks alone: nothing is embedded again).
SIGNALS_VERSION = 1

FILES = {
    "question_share": "question_share.npy",
    "site_flags": "site_flags.npy",
    "doc_year": "doc_year.npy",
    "first_asks": "first_asks.npy",
    "passage_year": "passage_year.npy",
    "states_change": "states_change.npy",
}
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")
_QUESTION_LABEL = re.compile(r"(?:Q|Question)\s*[:.](?:\s|$)", re.IGNORECASE)
_ANSWER_LABEL = re.compile(r"(?:A|Answer)\s*[:.](?:\s|$)", re.IGNORECASE)


def question_share(text: str) -> float:
    """The share of a passage's characters that sit in questions: forum askers, FAQ prompts.

    A sentence that ends with "?" asks. A question the text labels as one and leaves without
    its answer in the passage ("Question: Our doctor blocked T5-T7 ... No imaging. What do we
    report?") asks with all its sentences: it states the case, not the answer. When its
    answer's label follows ("Q. ... A. Yes, ..."), the passage answers it.
    """
    total = asked = pending = 0
    labelled = False
    for line in [*text.split("\n"), ""]:
        if not line.strip():
            labelled = False  # a paragraph ends: a labelled question left unanswered asks
            asked, pending = asked + pending, 0
            continue
        for match in _SENTENCE.finditer(line):
            sentence = match.group().strip()
            if _ANSWER_LABEL.match(sentence):
                labelled, pending = False, 0
            elif _QUESTION_LABEL.match(sentence):
                labelled = True
            total += len(sentence)
            if sentence.endswith("?"):
                asked += len(sentence)
            elif labelled:
                pending += len(sentence)
    return asked / total if total else 0.0


def compute_signals(
    chunks: Iterable[Chunk],
    documents: Iterable[Document] = (),
    dates: list[PassageDate] | None = None,
) -> dict[str, np.ndarray]:
    """The signals of `chunks`; `dates` (one per chunk) are computed here unless given."""
    chunks = list(chunks)
    documents = list(documents)
    if dates is None:
        dates = chunk_dates(chunks, documents)
    shares: list[float] = []
    flags: list[int] = []
    years: list[int] = []
    first_asks: list[float] = []
    doc_years = {d.id: text_year(d.text).year or 0 for d in documents}
    opening: dict[str, float] = {}
    for chunk in chunks:
        shares.append(question_share(chunk.text))
        opening.setdefault(chunk.document_id, shares[-1])
        first_asks.append(opening[chunk.document_id])
        flags.append(site_flags(chunk.text))
        own = text_year(chunk.text).year or 0
        years.append(
            max(own, doc_years.get(chunk.document_id, 0))
            if own
            else doc_years.get(chunk.document_id, 0)
        )
    return {
        "question_share": np.asarray(shares, dtype=np.float32),
        "site_flags": np.asarray(flags, dtype=np.uint8),
        "doc_year": np.asarray(years, dtype=np.int16),
        "first_asks": np.asarray(first_asks, dtype=np.float32),
        "passage_year": np.asarray([d.year or 0 for d in dates], dtype=np.int16),
        "states_change": np.asarray([bool(stated_changes(c)) for c in chunks], dtype=np.uint8),
    }


def save_signals(signals: dict[str, np.ndarray], directory: Path) -> None:
    for name, file in FILES.items():
        np.save(directory / file, signals[name], allow_pickle=False)


def load_signals(directory: Path) -> dict[str, np.ndarray]:
    # Read per candidate on every query, 5 bytes a chunk in all: kept in memory.
    return {name: np.load(directory / file, allow_pickle=False) for name, file in FILES.items()}
