"""Per-chunk signals computed once at ingest and stored beside the vectors as .npy arrays, so
that ranking reads a number per candidate instead of re-reading its text.

    question_share.npy  float32  the share of the chunk's characters that sit in questions
    site_flags.npy      uint8    the kinds of needle site the chunk assigns (index/lexicon.py)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from index.lexicon import site_flags
from ingest import Chunk

FILES = {"question_share": "question_share.npy", "site_flags": "site_flags.npy"}
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")


def question_share(text: str) -> float:
    """The share of a passage's characters that sit in questions: forum askers, FAQ prompts."""
    total = asked = 0
    for match in _SENTENCE.finditer(text):
        sentence = match.group().strip()
        total += len(sentence)
        if sentence.endswith("?"):
            asked += len(sentence)
    return asked / total if total else 0.0


def compute_signals(chunks: Iterable[Chunk]) -> dict[str, np.ndarray]:
    shares: list[float] = []
    flags: list[int] = []
    for chunk in chunks:
        shares.append(question_share(chunk.text))
        flags.append(site_flags(chunk.text))
    return {
        "question_share": np.asarray(shares, dtype=np.float32),
        "site_flags": np.asarray(flags, dtype=np.uint8),
    }


def save_signals(signals: dict[str, np.ndarray], directory: Path) -> None:
    for name, file in FILES.items():
        np.save(directory / file, signals[name], allow_pickle=False)


def load_signals(directory: Path) -> dict[str, np.ndarray]:
    # Read per candidate on every query, 5 bytes a chunk in all: kept in memory.
    return {name: np.load(directory / file, allow_pickle=False) for name, file in FILES.items()}
