"""A code mention's own words in a passage: its sentence, its clause, the words nearest to it,
and how well they match the question (index/answer.py ranks the answer's codes by them).

A sentence holding several codes says different things of each ("62270 is diagnostic and
62272 is therapeutic"): the clause is the part of the sentence that states this code, the
local text the words nearer to this code's list than to any other code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from index.lexical import tokenize_query
from index.lexicon import asked_kind, expand_question, named_site
from index.passage_cache import cached, passage_key
from ingest import Chunk, CodeMention, qualifies_parent
from ingest.chunk import Span, split_sentences

_OVERLAP_WEIGHT = 0.5
_LOCAL_OVERLAP_WEIGHT = 0.5


@dataclass(frozen=True)
class Sentence:
    """A sentence of a passage: document offsets and its cosine with the question."""

    start: int
    end: int
    similarity: float = 0.0


def _relevance_parts(
    words: set[str], chunk: Chunk, mention: CodeMention, sentence: Sentence
) -> tuple[float, float, float]:
    """(sentence cosine, share of the question's words in the clause citing the mention, in
    the words nearest to it)."""
    clause, local = _own_tokens(chunk, mention, sentence)
    return max(sentence.similarity, 0.0), _share_of(words, clause), _share_of(words, local)


# The clause and local words of a mention, tokenized, by (passage, mention, sentence):
# index/passage_cache.py.
_OWN_TOKENS: dict[tuple, tuple[frozenset[str], frozenset[str]]] = {}


def _own_tokens(
    chunk: Chunk, mention: CodeMention, sentence: Sentence
) -> tuple[frozenset[str], frozenset[str]]:
    def read() -> tuple[frozenset[str], frozenset[str]]:
        clause, local = _own_words(chunk, mention, sentence)
        return frozenset(tokenize_query(clause)), frozenset(tokenize_query(local))

    key = (passage_key(chunk), mention.start, sentence.start, sentence.end)
    return cached(_OWN_TOKENS, key, read)


def _share_of(words: set[str], tokens: frozenset[str]) -> float:
    return len(words & tokens) / len(words) if words else 0.0


def _own_words(chunk: Chunk, mention: CodeMention, sentence: Sentence) -> tuple[str, str]:
    """(the clause citing the mention, the words of it nearest to the mention)."""
    neighbours = [m for m in chunk.codes if sentence.start <= m.start < sentence.end]
    return (
        _clause_text(chunk, sentence, mention, neighbours),
        _local_text(chunk, sentence, mention, neighbours),
    )


def _parents(chunk: Chunk) -> dict[int, CodeMention]:
    """For each mention (by index) that starts a child descriptor ("62328 with fluoroscopic
    guidance"), the parent it continues: the nearest earlier code the passage defines that is
    not itself a child."""
    parents: dict[int, CodeMention] = {}
    parent: CodeMention | None = None
    for index, mention in enumerate(chunk.codes):
        if qualifies_parent(chunk.text, mention, chunk.start):
            if parent is not None:
                parents[index] = parent
        elif mention.role == "defined" and not mention.from_range:
            parent = mention
    return parents


def _child_relevance(
    words: set[str],
    chunk: Chunk,
    mention: CodeMention,
    sentence: Sentence,
    parent: CodeMention,
    spans: list[Sentence],
) -> float:
    """A child code read with its full descriptor, its parent's words plus its own: "lumbar
    puncture with CT guidance" matches 62328 ("Spinal puncture, lumbar, diagnostic" + "with
    fluoroscopic or CT guidance") better than 62270. Only when the question asks for the
    child's own qualifier; otherwise the parent, without it, is the better answer."""
    clause, local = _own_words(chunk, mention, sentence)
    if not words & set(tokenize_query(local)):
        return 0.0
    parent_sentence = _sentence_of(spans, parent)
    parent_clause, parent_local = _own_words(chunk, parent, parent_sentence)
    return (
        max(sentence.similarity, parent_sentence.similarity, 0.0)
        + _OVERLAP_WEIGHT * _overlap(words, f"{parent_clause} {clause}")
        + _LOCAL_OVERLAP_WEIGHT * _overlap(words, f"{parent_local} {local}")
    )


def _clause_text(
    chunk: Chunk, sentence: Sentence, mention: CodeMention, neighbours: list[CodeMention]
) -> str:
    """The statement of the sentence that holds the mention, with the sentence's introduction.

    A semicolon that starts a new statement with codes of its own ("62311 became 62322 or
    62323; 62310 became 62320") separates it from the code's words; one inside a descriptor
    ("Spinal puncture, lumbar, diagnostic; with fluoroscopic guidance") does not. Words before
    a colon that introduces the sentence's codes ("Lumbar or sacral: 62322 without imaging;
    62323 with guidance") belong to every statement after it.
    """
    intro_end = _intro_end(chunk, sentence, neighbours)
    start, end = intro_end, sentence.end
    for index, char in enumerate(_text_raw(chunk, intro_end, sentence.end)):
        if char != ";":
            continue
        cut = intro_end + index
        if cut < mention.start and any(start <= m.start < cut for m in neighbours):
            start = cut + 1
        elif cut >= mention.end and any(m.start > cut for m in neighbours):
            end = min(end, cut)
            break
    intro = _text(chunk, sentence.start, intro_end)
    return f"{intro} {_text(chunk, start, end)}" if intro else _text(chunk, start, end)


def _intro_end(chunk: Chunk, sentence: Sentence, neighbours: list[CodeMention]) -> int:
    """Where the words introducing the sentence's codes end: just after the last colon before
    its first code ("... are reported with these codes: 0213T ..."), else the sentence start."""
    first = min((m.start for m in neighbours), default=sentence.end)
    colon = _text_raw(chunk, sentence.start, first).rfind(":")
    return sentence.start + colon + 1 if colon >= 0 else sentence.start


def _conflicts(site: str, chunk: Chunk, sentence: Sentence, mention: CodeMention) -> bool:
    """The words next to the code give it the other kind of site than the question's."""
    stated = _stated_site(chunk, mention, sentence)
    return stated is not None and stated != site


# What a mention's own words say whatever the question, by (passage, mention, sentence): the
# needle-site kind they name and the words nearest to it (index/passage_cache.py).
_NEAR: dict[tuple, tuple[str | None, frozenset[str]]] = {}


def _near(
    chunk: Chunk, mention: CodeMention, sentence: Sentence
) -> tuple[str | None, frozenset[str]]:
    def read() -> tuple[str | None, frozenset[str]]:
        neighbours = [m for m in chunk.codes if sentence.start <= m.start < sentence.end]
        local = _local_text(chunk, sentence, mention, neighbours)
        return named_site(local), frozenset(tokenize_query(local))

    key = (passage_key(chunk), mention.start, mention.end, sentence.start, sentence.end)
    return cached(_NEAR, key, read)


def _stated_site(chunk: Chunk, mention: CodeMention, sentence: Sentence) -> str | None:
    """The needle-site kind the words next to the code name (None: none)."""
    return _near(chunk, mention, sentence)[0]


def _local_text(
    chunk: Chunk, sentence: Sentence, mention: CodeMention, neighbours: list[CodeMention]
) -> str:
    """The words of the sentence nearer to this code's list than to any other code in it.

    Codes joined into a list ("0216T, 0217T and 0218T for lumbar/sacral", "62302-62305")
    share the words around the list: what the text says of a list it says of each member.
    """
    first, last = _list_around(chunk, mention, neighbours)
    # The words introducing all the sentence's codes are none of them in particular.
    start, end = _intro_end(chunk, sentence, neighbours), sentence.end
    for other in neighbours:
        if other.end <= first:
            start = max(start, (other.end + first) // 2)
        elif other.start >= last:
            end = min(end, (last + other.start) // 2)
    return _text(chunk, start, end)


# What may stand between two codes of one list: commas, slashes, "and", "or", a range's dash
# or "through", and modifiers or a plus sign on the codes themselves.
_LIST_GAP = re.compile(
    r"(?:[-–][A-Za-z0-9]{2})*\s*(?:,|/|&|[-–—]|\band\b|\bor\b|\bthrough\b|\bthru\b)?"
    r"\s*(?:\b(?:and|or)\b)?\s*\+?",
    re.IGNORECASE,
)


def _list_around(
    chunk: Chunk, mention: CodeMention, neighbours: list[CodeMention]
) -> tuple[int, int]:
    """(start, end) document offsets of the list of codes that holds `mention`."""
    ordered = sorted(neighbours, key=lambda m: (m.start, m.end))
    first, last = mention.start, mention.end
    grew = True
    while grew:
        grew = False
        for other in ordered:
            if other.start >= first and other.end <= last:
                continue
            if other.end <= first and _joins(chunk, other.end, first):
                first, grew = other.start, True
            elif other.start >= last and _joins(chunk, last, other.start):
                last, grew = other.end, True
            elif other.start < last and other.end > first:  # a range's span over this code
                first, last, grew = min(first, other.start), max(last, other.end), True
    return first, last


def _joins(chunk: Chunk, start: int, end: int) -> bool:
    return bool(_LIST_GAP.fullmatch(_text_raw(chunk, start, end)))


def _text_raw(chunk: Chunk, start: int, end: int) -> str:
    return chunk.text[max(0, start - chunk.start) : max(0, end - chunk.start)]


def _kind_words(
    question: str,
    chunks: Sequence[Chunk],
    sentences: Sequence[Sequence[Sentence]] | None,
) -> list[set[str]]:
    """The kind of code the question asks for ("which fluoro code for occipital nerve block":
    fluoroscopy, not a nerve block code), one set of words per word of the kind ("US
    guidance": {us, ultrasound} and {guidance}), when some code's nearest words have them all;
    else no kind (every code is then of the asked kind, or none can tell)."""
    kind = asked_kind(question)
    if kind is None:
        return []
    groups = [set(tokenize_query(expand_question(word).text)) for word in kind.split()]
    groups = [group for group in groups if group]
    for rank, chunk in enumerate(chunks):
        spans = list(sentences[rank]) if sentences else _punctuation_sentences(chunk)
        for mention in chunk.codes:
            if _of_kind(groups, _words_near(chunk, mention, _sentence_of(spans, mention))):
                return groups
    return []


def _of_kind(groups: list[set[str]], words: frozenset[str]) -> bool:
    return bool(groups) and all(group & words for group in groups)


def _words_near(chunk: Chunk, mention: CodeMention, sentence: Sentence) -> frozenset[str]:
    return _near(chunk, mention, sentence)[1]


def _in_range(chunk: Chunk, mention: CodeMention) -> bool:
    """The mention is a member or an end of a range ("62302-62305", "64490 through 64495")."""
    return mention.from_range or any(
        other.from_range and other.start <= mention.start and mention.end <= other.end
        for other in chunk.codes
    )


def _inside(spans: list[Sentence], mention: CodeMention) -> bool:
    return any(s.start <= mention.start < s.end for s in spans)


def _sentence_of(spans: list[Sentence], mention: CodeMention) -> Sentence:
    """The sentence holding the mention, else the nearest one (a footnote-fused code's
    sentence can be too short to have been embedded on its own)."""
    for span in spans:
        if span.start <= mention.start < span.end:
            return span
    if not spans:
        return Sentence(mention.start, mention.end)
    return min(spans, key=lambda s: min(abs(s.start - mention.end), abs(mention.start - s.end)))


def _punctuation_sentences(chunk: Chunk) -> list[Sentence]:
    region = Span(0, len(chunk.text))
    return [
        Sentence(chunk.start + s.start, chunk.start + s.end)
        for s in split_sentences(chunk.text, region)
    ]


def _text(chunk: Chunk, start: int, end: int) -> str:
    return chunk.text[max(0, start - chunk.start) : max(0, end - chunk.start)].strip()


def _overlap(words: set[str], text: str) -> float:
    if not words:
        return 0.0
    return len(words & set(tokenize_query(text))) / len(words)
