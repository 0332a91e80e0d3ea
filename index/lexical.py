"""The lexical index: BM25 (bm25s) over stemmed words, with codes kept as whole tokens.

Tokens are lower-cased runs of letters and digits, so "77003-26" gives "77003" and "26" and
"0216T" stays "0216t"; English stop words are dropped and words are Snowball-stemmed
(PyStemmer), except tokens that contain a digit, which are kept as written.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN
from bm25s.tokenization import Tokenized
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

_TOKEN = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(STOPWORDS_EN)
STEMMER = "english"


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer(STEMMER)


# "non-spinal" and "non spinal" mean the opposite of "spinal": one token "nonspinal" keeps them
# apart in the index instead of matching every passage about the spine.
_NEGATED_PREFIX = re.compile(r"\b(non|un|anti)[- ](?=[a-z])")
# Words that frame a coder's question rather than say what it is about; they are dropped from
# queries (not from passages), since nearly every coding passage would match them.
QUESTION_FRAME_WORDS = frozenset(
    (
        "which",
        "what",
        "whats",
        "how",
        "many",
        "much",
        "do",
        "does",
        "did",
        "i",
        "we",
        "you",
        "should",
        "would",
        "could",
        "can",
        "code",
        "codes",
        "cpt",
        "hcpcs",
        "please",
        "anyone",
        "someone",
        "use",
        "used",
        "bill",
        "billed",
        "billing",
        "help",
        "need",
        "know",
        "tell",
        "correct",
        "right",
        "is",
        "are",
        "there",
    )
)


def tokenize(text: str) -> list[str]:
    """Index tokens of a text: lower-case, no stop words, stemmed unless numeric."""
    text = _NEGATED_PREFIX.sub(r"\1", text.lower())
    words = [w for w in _TOKEN.findall(text) if w not in _STOPWORDS]
    stem = _stemmer().stemWord
    return [w if _HAS_DIGIT(w) else stem(w) for w in words]


_HAS_DIGIT = re.compile(r"[0-9]").search  # tokens are ASCII ([a-z0-9]+)


def tokenize_query(text: str) -> list[str]:
    """Query tokens: as `tokenize`, without the words that frame a question."""
    return [t for t in tokenize(text) if t not in _frame_tokens()]


@lru_cache(maxsize=1)
def _frame_tokens() -> frozenset[str]:
    return frozenset({_stemmer().stemWord(w) for w in QUESTION_FRAME_WORDS} | QUESTION_FRAME_WORDS)


# Misspelling tolerance (Levenshtein distance against the index vocabulary, RapidFuzz): one
# edit for words of 5 to 7 letters, two from 8; shorter words are left alone (too many
# neighbours: "dx" is not "tx").
MIN_FUZZY_CHARS = 5
LONG_WORD_CHARS = 8


class LexicalIndex:
    """A bm25s index over the chunk texts, aligned with the chunk row ids."""

    def __init__(self, retriever: bm25s.BM25, size: int) -> None:
        self._retriever = retriever
        self.size = size
        self.vocabulary: dict[str, int] = retriever.vocab_dict or {}
        self._word_list: list[str] | None = None

    def spelled(self, token: str) -> str:
        """`token` itself if indexed, else the closest indexed word within the edit budget."""
        if token in self.vocabulary or not token.isalpha() or len(token) < MIN_FUZZY_CHARS:
            return token
        return self._closest(token)

    @lru_cache(maxsize=4096)  # noqa: B019 - one index per process, bounded cache
    def _closest(self, token: str) -> str:
        budget = 1 if len(token) < LONG_WORD_CHARS else 2
        match = process.extractOne(
            token,
            self._words,
            scorer=Levenshtein.distance,
            score_cutoff=budget,
        )
        return match[0] if match else token

    @property
    def _words(self) -> list[str]:
        if self._word_list is None:
            self._word_list = [w for w in self.vocabulary if w.isalpha()]
        return self._word_list

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        retriever = bm25s.BM25()
        # An empty token list would break bm25s; a placeholder token matches no query.
        corpus_tokens = [tokenize(t) or ["\u2205"] for t in texts]
        # The vocabulary in sorted order, not in the order bm25s's sets give (which follows the
        # process's string hashes): the same texts then make the same index files in any
        # process, and the spelling fallback (`spelled`) breaks ties between equally close
        # words the same way every time.
        vocabulary = {t: i for i, t in enumerate(sorted({t for doc in corpus_tokens for t in doc}))}
        ids = [[vocabulary[t] for t in doc] for doc in corpus_tokens]
        retriever.index(Tokenized(ids=ids, vocab=vocabulary), show_progress=False)
        return cls(retriever, len(texts))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._retriever.save(str(directory), allow_pickle=False)
        (directory / "cptqa_lexical.json").write_text(
            json.dumps({"size": self.size, "stemmer": STEMMER}), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        meta = json.loads((directory / "cptqa_lexical.json").read_text(encoding="utf-8"))
        retriever = bm25s.BM25.load(str(directory), mmap=True, allow_pickle=False)
        # bm25s maps its arrays as np.memmap, whose indexing runs Python code: scoring slices
        # them twice per query word (about 0.05 ms a query at 100,000 chunks, 0.1 ms at a
        # million). Plain ndarray views keep the mapping (see index/arrays.py).
        for name, value in retriever.scores.items():
            if isinstance(value, np.memmap):
                retriever.scores[name] = value.view(np.ndarray)
        return cls(retriever, int(meta["size"]))

    def idf(self, token: str) -> float:
        """BM25's inverse document frequency of an indexed token (0 for one not indexed)."""
        index = self.vocabulary.get(token)
        if index is None:
            return 0.0
        indptr = self._retriever.scores["indptr"]
        df = float(indptr[index + 1] - indptr[index])
        return math.log(1.0 + (self.size - df + 0.5) / (df + 0.5))

    def query(self, text: str) -> LexicalQuery:
        """The indexed words of a question, and how much scoring them costs.

        A word the corpus does not have is replaced by the corpus word closest in spelling,
        if one is close enough ("flouroscopic", "supraorbitol", "myleogram").
        """
        tokens = [self.spelled(t) for t in tokenize_query(text)]
        ids = [self.vocabulary[t] for t in tokens if t in self.vocabulary]
        if not ids:
            return LexicalQuery((), 0)
        indptr = self._retriever.scores["indptr"]
        at = np.asarray(ids, dtype=np.int64)
        return LexicalQuery(tuple(ids), int((indptr[at + 1] - indptr[at]).sum()))

    def score(self, query: LexicalQuery) -> np.ndarray:
        """BM25 score of every chunk for a prepared query (zeros when it has no words)."""
        if not query.token_ids:
            return np.zeros(self.size, dtype=np.float32)
        scores = self._retriever.get_scores_from_ids(list(query.token_ids))
        return np.asarray(scores, dtype=np.float32)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for `query` (zeros when no query word is indexed)."""
        return self.score(self.query(query))


@dataclass(frozen=True)
class LexicalQuery:
    """A question's indexed word ids (repeats kept: a repeated word counts twice, as in
    bm25s) and `postings`, the (word, chunk) entries that scoring reads: its cost."""

    token_ids: tuple[int, ...]
    postings: int
