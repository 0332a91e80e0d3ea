"""Which chunk rows cite each code, as arrays written at ingest (CSR, no pickle).

A question that names a code ranks the passages citing it; in a large corpus a common code is
cited by tens of thousands of chunks, and reading them from SQLite on every query took tens of
milliseconds. Here the lookup is a slice of a memory-mapped array.

    code_list.json     the codes, sorted
    code_rows.npy      int32 chunk rows, grouped by code in that order, ascending within a code
    code_offsets.npy   int64, code i owns code_rows[offsets[i]:offsets[i + 1]]
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index.arrays import load_mapped
from ingest import Chunk

FILES = ("code_list.json", "code_rows.npy", "code_offsets.npy")
_EMPTY = np.zeros(0, dtype=np.int32)


class CodeRows:
    """`get(code)`: the rows citing `code`, ascending (an int32 array; empty if none)."""

    def __init__(self, codes: Sequence[str], rows: np.ndarray, offsets: np.ndarray) -> None:
        self._position = {code: i for i, code in enumerate(codes)}
        self._rows = rows
        self._offsets = offsets

    @classmethod
    def build(cls, chunks: Sequence[Chunk]) -> CodeRows:
        by_code: dict[str, list[int]] = defaultdict(list)
        for row, chunk in enumerate(chunks):
            for code in dict.fromkeys(m.code for m in chunk.codes):
                by_code[code].append(row)
        codes = sorted(by_code)
        sizes = [len(by_code[c]) for c in codes]
        offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        rows = np.fromiter(
            (row for code in codes for row in by_code[code]), dtype=np.int32, count=sum(sizes)
        )
        return cls(codes, rows, offsets)

    def save(self, directory: Path) -> None:
        codes = sorted(self._position, key=self._position.__getitem__)
        (directory / FILES[0]).write_text(json.dumps(codes), encoding="utf-8")
        np.save(directory / FILES[1], self._rows, allow_pickle=False)
        np.save(directory / FILES[2], self._offsets, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> CodeRows:
        codes = json.loads((directory / FILES[0]).read_text(encoding="utf-8"))
        rows = load_mapped(directory / FILES[1])
        offsets = np.load(directory / FILES[2], allow_pickle=False)
        return cls(codes, rows, offsets)

    def get(self, code: str, default: Sequence[int] = _EMPTY) -> np.ndarray | Sequence[int]:
        position = self._position.get(code)
        if position is None:
            return default
        return np.asarray(self._rows[self._offsets[position] : self._offsets[position + 1]])
