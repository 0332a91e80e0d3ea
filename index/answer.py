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

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from index.lexical import tokenize_query
from index.lexicon import asked_kind, expand_question, named_site, question_site
from index.verdicts import turned_down
from ingest import Chunk, CodeMention, qualifies_parent
from ingest.chunk import Span, split_sentences
from ingest.glossary import writes_alone
from ingest.history import CodeChange, Dated

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
_OVERLAP_WEIGHT = 0.5
_LOCAL_OVERLAP_WEIGHT = 0.5
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
    if mention.role in _REJECTING or not turned_down(chunk, mention):
        return mention.role
    return "excluded"


def _role_weight(role: str, text: str) -> float:
    weight = ROLE_WEIGHTS.get(role, ROLE_WEIGHTS["mentioned"])
    if text.rstrip().endswith("?"):
        weight *= _ASKING_WEIGHT
    return weight


def _relevance(words: set[str], chunk: Chunk, mention: CodeMention, sentence: Sentence) -> float:
    """How well the statement citing `mention` matches the question's words and meaning."""
    similarity, clause, local = _relevance_parts(words, chunk, mention, sentence)
    return similarity + _OVERLAP_WEIGHT * clause + _LOCAL_OVERLAP_WEIGHT * local


def _relevance_parts(
    words: set[str], chunk: Chunk, mention: CodeMention, sentence: Sentence
) -> tuple[float, float, float]:
    """(sentence cosine, share of the question's words in the clause citing the mention, in
    the words nearest to it)."""
    clause, local = _own_tokens(chunk, mention, sentence)
    return max(sentence.similarity, 0.0), _share_of(words, clause), _share_of(words, local)


# The clause and local words of a mention, tokenized, by (passage, mention, sentence): the
# same passages come back question after question while a snapshot serves. Bounded: emptied
# when full.
_OWN_TOKENS: dict[tuple[str, int, int, int, int], tuple[frozenset[str], frozenset[str]]] = {}
_OWN_TOKENS_LIMIT = 65536


def _own_tokens(
    chunk: Chunk, mention: CodeMention, sentence: Sentence
) -> tuple[frozenset[str], frozenset[str]]:
    key = (chunk.id, chunk.start, mention.start, sentence.start, sentence.end)
    found = _OWN_TOKENS.get(key)
    if found is None:
        if len(_OWN_TOKENS) >= _OWN_TOKENS_LIMIT:
            _OWN_TOKENS.clear()
        clause, local = _own_words(chunk, mention, sentence)
        found = _OWN_TOKENS[key] = (
            frozenset(tokenize_query(clause)),
            frozenset(tokenize_query(local)),
        )
    return found


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
    neighbours = [m for m in chunk.codes if sentence.start <= m.start < sentence.end]
    stated = named_site(_local_text(chunk, sentence, mention, neighbours))
    return stated is not None and stated != site


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


def _of_kind(groups: list[set[str]], words: set[str]) -> bool:
    return bool(groups) and all(group & words for group in groups)


def _words_near(chunk: Chunk, mention: CodeMention, sentence: Sentence) -> set[str]:
    return set(tokenize_query(_own_words(chunk, mention, sentence)[1]))


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
