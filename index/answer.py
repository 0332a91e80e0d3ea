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

This module gathers the evidence and scores; a mention's sentence, clause and nearest words,
and their match with the question, are read in index/answer_clauses.py.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from index.answer_clauses import (
    _LOCAL_OVERLAP_WEIGHT,
    _OVERLAP_WEIGHT,
    Sentence,
    _child_relevance,
    _conflicts,
    _in_range,
    _inside,
    _kind_words,
    _of_kind,
    _parents,
    _punctuation_sentences,
    _relevance_parts,
    _sentence_of,
    _text,
    _words_near,
)
from index.lexical import tokenize_query
from index.lexicon import expand_question, question_site
from index.passage_cache import cached, passage_key
from index.verdicts import turned_down
from ingest import Chunk, CodeMention
from ingest.glossary import writes_alone
from ingest.history import CodeChange, Dated

# A mention's sentence, clause and nearest words are read in index/answer_clauses.py;
# `Sentence` stays importable from here.
__all__ = [
    "IN_RANGE",
    "MAX_EVIDENCE",
    "ROLE_WEIGHTS",
    "AnswerCode",
    "CodeStats",
    "Evidence",
    "Sentence",
    "rank_answer",
    "rank_answer_codes",
]

ROLE_WEIGHTS = {
    "defined": 1.0,
    "add-on": 0.9,
    "primary": 0.8,
    "mentioned": 0.75,
    "deleted": 0.1,
    "bundled": 0.2,
    "excluded": 0.1,
}
# Roles by which a passage turns a code down.
_REJECTING = frozenset({"excluded", "bundled", "deleted"})
_ASKING_WEIGHT = 0.3
_NAMED_IN_QUESTION = 1.5
# A code the text ties to a spinal site, for a question about a non-spinal one, or the other
# way round (77003 vs 77002, CODING_FACTS.md §3).
_OTHER_SITE = 0.3
# A code whose words do not give it the kind of code the question asks for ("which fluoro
# code for ...": a nerve block code is not a fluoroscopy code), when other codes' words do.
_OTHER_KIND = 0.3
# A range ("report the 62302-62305 code") names a family and leaves the pick to the coder: each
# member counts for less than a code the text writes out on its own.
IN_RANGE = 0.5
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
    # Set by the current-rules step (index/current.py): the code's status as of the year the
    # question is about, its known changes, the change its evidence passage predates, and why
    # the rule put it first (empty when it did not).
    status: str = "current"
    history: tuple[CodeChange, ...] = ()
    dated: Dated | None = None
    current_rule: str = ""


@dataclass
class CodeStats:
    """What the top passages say of one candidate answer code: the learned code scorer's raw
    material (index/code_features.py)."""

    hand_score: float = 0.0  # the hand-weighted score of its best mention
    hand_total: float = 0.0  # the hand-weighted score summed over passages (its old rank)
    relevance: float = 0.0  # best relevance of a sentence citing it to the question
    similarity: float = 0.0  # best cosine of a sentence citing it with the question
    clause_overlap: float = 0.0  # best share of the question's words in a clause citing it
    local_overlap: float = 0.0  # ... in the words nearest to it
    mentions: int = 0  # its mentions in the top passages
    first_rank: int = 99  # rank (0-based) of the first passage citing it
    passages: int = 0  # passages citing it
    roles: set[str] = field(default_factory=set)
    best_role: str = "mentioned"
    asked_only: bool = True  # every sentence citing it asks
    of_kind: bool = False  # the words next to it give the kind of code asked for
    kind_asked: bool = False
    site_conflict: bool = True  # every mention ties it to the other needle-site kind
    in_range_only: bool = True  # every mention is a range's member or end
    rejected: bool = False  # the question names it and the best passage turns it down
    named: bool = False  # the question names it
    # A sentence (a passage) that turns down a code the question names cites this one without
    # turning it down: the code the text points to instead ("0230T ...: use 64483").
    pointed_sentence: bool = False
    pointed_passage: bool = False
    category: str = ""
    system: str = ""


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
    return rank_answer(question, chunks, sentences, question_codes, limit)[0]


def rank_answer(
    question: str,
    chunks: Sequence[Chunk],
    sentences: Sequence[Sequence[Sentence]] | None = None,
    question_codes: frozenset[str] = frozenset(),
    limit: int = 10,
    stats: dict[str, CodeStats] | None = None,
    written_codes: Collection[str] = frozenset(),
    site: str | None = None,
    words: Collection[str] | None = None,
) -> tuple[list[AnswerCode], list[float]]:
    """`rank_answer_codes`, and for each passage how strongly it states the first answer code
    (its verdict on that code as if it were the first passage; 0 when it does not cite it),
    when the question asks for a kind of code that the passages give (else all 0)."""
    # The question's words as the lexical side reads them (the parsed question's tokens when
    # the caller has them).
    words = set(words) if words is not None else set(tokenize_query(expand_question(question).text))
    # The needle-site kind, as the parsed question has it (its lexicon applied: "GON block"
    # names the occipital nerve); read from the words when the caller gives none.
    site = site or question_site(question)
    totals: dict[str, float] = {}
    best: dict[str, tuple[float, CodeMention]] = {}
    evidence: dict[str, list[Evidence]] = {}
    rejected = _rejected_question_codes(chunks, question_codes)
    kind = _kind_words(question, chunks, sentences)
    stated: list[dict[str, float]] = []
    for rank, chunk in enumerate(chunks):
        spans = list(sentences[rank]) if sentences else _punctuation_sentences(chunk)
        # Per code, the mention whose statement best matches the question gives the passage's
        # verdict on it: (relevance, score). "Medicare ASC claims do not recognize 27096" is
        # what this passage says about 27096 to a question about ASC claims, even if a later
        # sentence names 27096 for the physician's claim.
        verdicts: dict[str, tuple[float, float]] = {}
        placed = {m.code for m in chunk.codes if _inside(spans, m)}
        parents = _parents(chunk)
        verdicts_read = [_verdict(chunk, m) for m in chunk.codes]
        named_down = {
            _sentence_of(spans, m).start
            for m, r in zip(chunk.codes, verdicts_read, strict=True)
            if m.code in question_codes and r in _REJECTING
        }
        for index, mention in enumerate(chunk.codes):
            if mention.code in placed and not _inside(spans, mention):
                continue  # a footnote-fused copy; the code's own sentence speaks for it
            sentence = _sentence_of(spans, mention)
            text = _text(chunk, sentence.start, sentence.end)
            role = rejected.get(mention.code, verdicts_read[index])
            parts = _relevance_parts(words, chunk, mention, sentence)
            relevance = parts[0] + _OVERLAP_WEIGHT * parts[1] + _LOCAL_OVERLAP_WEIGHT * parts[2]
            if index in parents:
                parent = parents[index]
                relevance = max(
                    relevance,
                    _child_relevance(words, chunk, mention, sentence, parent, spans),
                )
            score = _role_weight(role, text) * relevance / (1.0 + rank)
            conflict = bool(site) and _conflicts(site, chunk, sentence, mention)
            if conflict:
                score *= _OTHER_SITE
            in_range = _in_range(chunk, mention)
            if in_range:
                score *= IN_RANGE
            of_kind = bool(kind) and _of_kind(kind, _words_near(chunk, mention, sentence))
            if kind and not of_kind:
                score *= _OTHER_KIND
            if mention.code in question_codes and mention.code not in rejected:
                score *= _NAMED_IN_QUESTION
            verdicts[mention.code] = max(
                verdicts.get(mention.code, (-1.0, 0.0)), (round(relevance, 6), score)
            )
            if score > best.get(mention.code, (-1.0, mention))[0]:
                best[mention.code] = (score, mention)
            found = evidence.setdefault(mention.code, [])
            if all(e.text != text for e in found):
                found.append(Evidence(chunk.id, text, mention.role))
            if stats is not None:
                st = stats.setdefault(mention.code, CodeStats())
                if score >= st.hand_score:
                    st.hand_score, st.best_role = score, role
                st.relevance = max(st.relevance, relevance)
                st.similarity = max(st.similarity, parts[0])
                st.clause_overlap = max(st.clause_overlap, parts[1])
                st.local_overlap = max(st.local_overlap, parts[2])
                st.mentions += 1
                st.first_rank = min(st.first_rank, rank)
                st.roles.add(role)
                st.asked_only &= text.rstrip().endswith("?")
                st.of_kind |= of_kind
                st.kind_asked = bool(kind)
                st.site_conflict &= conflict
                st.in_range_only &= in_range
                st.rejected = mention.code in rejected
                st.named = mention.code in question_codes
                if role not in _REJECTING and not st.named:
                    st.pointed_sentence |= sentence.start in named_down
                    st.pointed_passage |= bool(named_down)
                st.category, st.system = mention.category, mention.system
        stated.append({code: score * (1.0 + rank) for code, (_, score) in verdicts.items()})
        if stats is not None:
            for code in verdicts:
                stats[code].passages += 1
        for code, (_, score) in verdicts.items():
            previous = totals.get(code, 0.0)
            # The best passage counts in full, further passages add less: a code the best
            # passage states outranks one that merely recurs across weaker passages.
            totals[code] = max(previous, score) + _FURTHER_PASSAGES * min(previous, score)
    totals = _written_alone(totals, chunks, written_codes)
    if stats is not None:
        for code, total in totals.items():
            stats[code].hand_total = total
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]
    # Only a question that asks for a kind of code, which some passage gives, has a passage
    # that states "the" answer; for other questions the passages' order stands.
    support = [by_code.get(ranked[0][0], 0.0) if ranked and kind else 0.0 for by_code in stated]
    answer = [
        AnswerCode(
            code=code,
            system=best[code][1].system,
            category=best[code][1].category,
            score=round(score, 4),
            role=best[code][1].role,
            evidence=_verdicts_first(evidence[code]),
        )
        for code, score in ranked
    ]
    return answer, support


def _verdicts_first(found: list[Evidence]) -> tuple[Evidence, ...]:
    """Up to MAX_EVIDENCE sentences, those that state something before those that ask: the
    evidence for a code is the sentence giving the verdict, not a question about it."""
    stating = [e for e in found if not e.text.rstrip().endswith("?")]
    asking = [e for e in found if e.text.rstrip().endswith("?")]
    return tuple((stating + asking)[:MAX_EVIDENCE])


def _written_alone(
    totals: dict[str, float], chunks: Sequence[Chunk], written_codes: Collection[str]
) -> dict[str, float]:
    """Only codes that the corpus (`written_codes`, from the glossary) or these passages write on
    their own: a range's inside ("64479-64484" gives 64481, which does not exist) and the ends of
    a range naming a section ("70000-79999") make passages findable, not answers (CODING_FACTS.md
    §2)."""
    alone = {m.code for chunk in chunks for m in chunk.codes if writes_alone(m)}
    return {c: s for c, s in totals.items() if c in alone or c in written_codes}


def _rejected_question_codes(
    chunks: Sequence[Chunk], question_codes: frozenset[str]
) -> dict[str, str]:
    """The codes the question names that the best passage citing them turns down (excluded,
    bundled, deleted), with the rejecting role. "Can I add 52352?" answered by "52352 ... is
    bundled", "62311 deleted, what replaced it?" by "62311 ... were deleted": the coder names
    the code to ask about it, and the answer's verdict on it holds for all its mentions, so
    the named code's boost does not apply and it is not the answer."""
    rejected: dict[str, str] = {}
    for code in question_codes:
        first = next((c for c in chunks if any(m.code == code for m in c.codes)), None)
        roles = [_verdict(first, m) for m in first.codes if m.code == code] if first else []
        turned_down = [r for r in roles if r in _REJECTING]
        if turned_down:
            rejected[code] = min(turned_down, key=ROLE_WEIGHTS.__getitem__)
    return rejected


def _verdict(chunk: Chunk, mention: CodeMention) -> str:
    """The mention's role, "excluded" where its sentence turns it down in words the
    extractor's roles do not read (index/verdicts.py)."""
    if mention.role in _REJECTING or not _turned_down(chunk, mention):
        return mention.role
    return "excluded"


# `turned_down` by (passage, mention): index/passage_cache.py.
_TURNED_DOWN: dict[tuple, bool] = {}


def _turned_down(chunk: Chunk, mention: CodeMention) -> bool:
    return cached(
        _TURNED_DOWN,
        (passage_key(chunk), mention.start, mention.end),
        lambda: turned_down(chunk, mention),
    )


def _role_weight(role: str, text: str) -> float:
    weight = ROLE_WEIGHTS.get(role, ROLE_WEIGHTS["mentioned"])
    if text.rstrip().endswith("?"):
        weight *= _ASKING_WEIGHT
    return weight
