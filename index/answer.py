"""The answer's codes: which codes the retrieved passages point to, ranked, with evidence.

Each mention of a code in the top passages scores
    passage weight (better-ranked passages count more)
  x role weight (a code defined or named as the one to use outweighs one excluded or deleted)
  x relevance of the sentence that cites it to the question: the sentence vector's cosine with
    the question, plus the share of the question's words (coder lexicon applied) found in the
    sentence and, closer still, in the words next to this code rather than to its neighbours
    ("62270 is diagnostic and 62272 is therapeutic, used to decrease pressure").
A code's score is the sum over passages of its best mention in each. A sentence that asks
("which flouro code would you use?") is weak evidence, and a code the question itself names
gets a boost: the coder is asking about it. When the question names a needle site, a code
whose own words give it the other kind of site (spinal vs non-spinal) is demoted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from index.lexical import tokenize_query
from index.lexicon import expand_question, question_site, stated_site
from ingest import Chunk, CodeMention
from ingest.chunk import Span, split_sentences

ROLE_WEIGHTS = {
    "defined": 1.0,
    "add-on": 0.9,
    "primary": 0.8,
    "mentioned": 0.75,
    "deleted": 0.3,
    "bundled": 0.2,
    "excluded": 0.1,
}
_ASKING_WEIGHT = 0.3
_NAMED_IN_QUESTION = 1.5
# A code the text ties to a spinal site, for a question about a non-spinal one, or the other
# way round (77003 vs 77002, CODING_FACTS.md §3).
_OTHER_SITE = 0.3
_OVERLAP_WEIGHT = 0.5
_LOCAL_OVERLAP_WEIGHT = 0.5
MAX_EVIDENCE = 3
_FURTHER_PASSAGES = 0.25


@dataclass(frozen=True)
class Evidence:
    chunk_id: str
    text: str
    role: str


@dataclass(frozen=True)
class AnswerCode:
    code: str
    system: str
    category: str
    score: float
    role: str
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True)
class Sentence:
    """A sentence of a passage: document offsets and its cosine with the question."""

    start: int
    end: int
    similarity: float = 0.0


def rank_answer_codes(
    question: str,
    chunks: Sequence[Chunk],
    sentences: Sequence[Sequence[Sentence]] | None = None,
    question_codes: frozenset[str] = frozenset(),
    limit: int = 10,
) -> list[AnswerCode]:
    """Codes of `chunks` (best passage first), ranked by how well they answer `question`.

    `sentences[i]` are the sentences of `chunks[i]` with their similarity to the question;
    without them each code's sentence is found by punctuation and scores by words alone.
    """
    words = set(tokenize_query(expand_question(question).text))
    site = question_site(question)
    totals: dict[str, float] = {}
    best: dict[str, tuple[float, CodeMention]] = {}
    evidence: dict[str, list[Evidence]] = {}
    for rank, chunk in enumerate(chunks):
        spans = list(sentences[rank]) if sentences else _punctuation_sentences(chunk)
        per_chunk: dict[str, float] = {}
        placed = {m.code for m in chunk.codes if _inside(spans, m)}
        for mention in chunk.codes:
            if mention.code in placed and not _inside(spans, mention):
                continue  # a footnote-fused copy; the code's own sentence speaks for it
            sentence = _sentence_of(spans, mention)
            text = _text(chunk, sentence.start, sentence.end)
            score = _mention_score(words, chunk, mention, sentence, text) / (1.0 + rank)
            if site and _conflicts(site, chunk, sentence, mention):
                score *= _OTHER_SITE
            if mention.code in question_codes:
                score *= _NAMED_IN_QUESTION
            per_chunk[mention.code] = max(per_chunk.get(mention.code, 0.0), score)
            if score > best.get(mention.code, (-1.0, mention))[0]:
                best[mention.code] = (score, mention)
            found = evidence.setdefault(mention.code, [])
            if len(found) < MAX_EVIDENCE and all(e.text != text for e in found):
                found.append(Evidence(chunk.id, text, mention.role))
        for code, score in per_chunk.items():
            previous = totals.get(code, 0.0)
            # The best passage counts in full, further passages add less: a code the best
            # passage states outranks one that merely recurs across weaker passages.
            totals[code] = max(previous, score) + _FURTHER_PASSAGES * min(previous, score)
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [
        AnswerCode(
            code=code,
            system=best[code][1].system,
            category=best[code][1].category,
            score=round(score, 4),
            role=best[code][1].role,
            evidence=tuple(evidence[code]),
        )
        for code, score in ranked
    ]


def _mention_score(
    words: set[str], chunk: Chunk, mention: CodeMention, sentence: Sentence, text: str
) -> float:
    weight = ROLE_WEIGHTS.get(mention.role, ROLE_WEIGHTS["mentioned"])
    if text.rstrip().endswith("?"):
        weight *= _ASKING_WEIGHT
    neighbours = [m for m in chunk.codes if sentence.start <= m.start < sentence.end]
    local = _local_text(chunk, sentence, mention, neighbours)
    relevance = (
        max(sentence.similarity, 0.0)
        + _OVERLAP_WEIGHT * _overlap(words, text)
        + _LOCAL_OVERLAP_WEIGHT * _overlap(words, local)
    )
    return weight * relevance


def _conflicts(site: str, chunk: Chunk, sentence: Sentence, mention: CodeMention) -> bool:
    """The words next to the code give it the other kind of site than the question's."""
    neighbours = [m for m in chunk.codes if sentence.start <= m.start < sentence.end]
    stated = stated_site(_local_text(chunk, sentence, mention, neighbours))
    return stated is not None and stated != site


def _local_text(
    chunk: Chunk, sentence: Sentence, mention: CodeMention, neighbours: list[CodeMention]
) -> str:
    """The words of the sentence nearer to this code than to any other code in it."""
    start, end = sentence.start, sentence.end
    for other in neighbours:
        if other.code == mention.code:
            continue
        if other.end <= mention.start:
            start = max(start, (other.end + mention.start) // 2)
        elif other.start >= mention.end:
            end = min(end, (mention.end + other.start) // 2)
    return _text(chunk, start, end)


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
