"""The exception tree of cptqa. Every message says what the user can do about it.

CptqaError
├── InvalidInput        bad question, bad k, malformed code (HTTP 422, exit 2)
├── UnknownCode         a well-formed code the corpus does not mention (404, exit 4)
├── CorpusError         nothing indexable in the corpus (422, exit 2)
├── IndexMissing        no index has been built yet (503, exit 3)
├── IndexIncompatible   index built with another model or format (503, exit 3)
└── IndexCorrupt        an index whose files fail their checks (503, exit 3)
"""

from __future__ import annotations


class CptqaError(Exception):
    """Base class of every error cptqa raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(CptqaError):
    """The caller's input is not acceptable (empty question, k out of range...)."""


class UnknownCode(CptqaError):
    """A well-formed code that the indexed corpus does not mention."""

    def __init__(self, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.suggestions = suggestions or []


class UnknownDocument(CptqaError):
    """A document id that the loaded index does not hold."""


class CorpusError(CptqaError):
    """The corpus has nothing that can be indexed."""


class IndexMissing(CptqaError):
    """No index snapshot has been published yet."""


class IndexIncompatible(CptqaError):
    """The snapshot was built by another format version, model or dimension."""


class IndexCorrupt(CptqaError):
    """The snapshot's files are missing, truncated or fail their checksums."""


class UnusableFile(Exception):
    """A source file that cannot be indexed, and why (in words a person can act on).

    Not a `CptqaError`: the loader catches it and reports the file as skipped; it never stops
    an ingest.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CptqaWarning(UserWarning):
    """Warnings of our own; the test suite turns them into errors."""
