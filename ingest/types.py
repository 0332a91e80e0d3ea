"""The plain data types that flow from ingest to index to api.

Offsets (`start`, `end`) are character offsets into the *cleaned* document text, so
`document.text[chunk.start:chunk.end] == chunk.text` always holds and a passage can be
shown in its context and cited.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# What a mention of a code is doing in its sentence, when the text says so.
ROLES = ("defined", "excluded", "bundled", "add-on", "primary", "deleted", "mentioned")


@dataclass(frozen=True)
class CodeMention:
    """One mention of a CPT or HCPCS code in a text.

    `system` is "CPT" or "HCPCS"; `category` is "I", "II", "III" or "PLA" for CPT and
    "Level II" for HCPCS. `start`/`end` delimit the code itself (without a leading "+"
    or a trailing modifier). `modifiers` are the two-character modifiers attached to this
    mention ("26", "59", "XS"); they are never codes themselves.
    """

    code: str
    system: str
    category: str
    start: int
    end: int
    modifiers: tuple[str, ...] = ()
    role: str = "mentioned"
    # True when the mention came from expanding a range ("64490-64495") rather than
    # being written out in the text.
    from_range: bool = False
    # True for an end of a range over a whole section of the code set ("CPT codes 70000-79999",
    # CODING_FACTS.md §2): the mention names the section, not a code to report.
    names_section: bool = False


@dataclass(frozen=True)
class Document:
    """A loaded, cleaned source file."""

    id: str
    path: str
    text: str
    sha256: str
    title: str = ""
    # "text", "markdown", "html" or "pdf": what the loader read the file as.
    format: str = "text"
    # For a PDF: where each page starts in `text` (page n starts at page_starts[n - 1]; a page
    # without text starts where the next page's text does). Empty for unpaged formats.
    page_starts: tuple[int, ...] = ()

    def page_at(self, offset: int) -> int | None:
        """The 1-based PDF page that holds character `offset`, or None for unpaged text."""
        if not self.page_starts:
            return None
        return max(1, bisect.bisect_right(self.page_starts, offset))


def chunk_id(document_id: str, number: int) -> str:
    """The id of a document's chunk number `number` (0-based): "document#n"."""
    return f"{document_id}#{number}"


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: `text == document.text[start:end]`."""

    id: str
    document_id: str
    start: int
    end: int
    text: str
    codes: tuple[CodeMention, ...] = field(default_factory=tuple)
    # Context that is not part of the passage but helps rank it: the document title,
    # a thread subject or the section heading the passage sits under.
    context: str = ""
    # The PDF pages the passage starts and ends on (1-based); None for unpaged formats.
    page: int | None = None
    last_page: int | None = None
