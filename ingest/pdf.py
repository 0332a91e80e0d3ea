"""Text of a PDF, page by page, through pypdfium2 (PDFium, the engine of Chromium's viewer).

Why PDFium: on the coding texts typeset as PDFs (bench figures in the README) it read about
800 pages/s against 144 for pypdf and 21 for pdfminer.six, with the same words, and it expands
typographic ligatures ("ﬁ" -> "fi") that pypdf and pdfminer.six leave in place, where they
would hide "fluoro" from a search. PyMuPDF is AGPL, so it is not a choice for us. PDFium is
fuzzed continuously by Chromium; a PDF it cannot open raises an error we report and skip.

A PDF has no paragraphs, only positioned lines: lines that were wrapped at the margin are
joined again (so a sentence is one sentence), and the running header and footer repeated on
every page ("Policy 2024-117 | Page 3") are dropped, since they are not content.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass

from ingest.code_shapes import CODE_SHAPE
from ingest.errors import UnusableFile

# PDFium is not thread-safe; one document is read at a time in a process.
_PDFIUM = threading.Lock()
# A page tree may list one page a million times in 12.7 KB (100,000 took 14 s to read):
# pages and time per file are bounded, and a PDF over either is skipped by name.
PDF_MAX_PAGES = 5000
PARSE_SECONDS = 30.0

# A line at least this share of the page's widest line was wrapped at the margin.
_WRAPPED_SHARE = 0.75
# Lines that start a new item whatever the line before: bullets and numbered items; and a
# line starting with a code after another one (a code table: "77002 Fluoroscopic ...").
_ITEM_START = re.compile(r"^(?:[-•▪◦*–]\s|\(?\d{1,2}[.)]\s)")
_CODE_START = re.compile(rf"^\+?{CODE_SHAPE}\b")
_RUNNING_CHARS = 100  # a running header or footer is one short line
_RUNNING_LINES = 2  # lines at the top and at the bottom of a page that may be header/footer
_MIN_PAGES_FOR_RUNNING = 2
_SOFT_HYPHENS = ("\u00ad", "\x02")
_PAGE_NUMBER = re.compile(
    r"^\s*[-–—]?\s*(?:page\s+)?\d{1,4}\s*(?:(?:/|of)\s*\d{1,4})?\s*[-–—]?\s*$", re.I
)
_JUNK_TITLE = re.compile(r"^(?:microsoft \w+ - |untitled)|\.(?:docx?|pdf|rtf|odt|indd)$", re.I)


@dataclass(frozen=True)
class PdfText:
    pages: list[str]  # each page's text, lines re-joined; "" for a page without text
    title: str  # the document's own Title metadata when it is a real title, else ""


def read_pdf(raw: bytes, max_pages: int = PDF_MAX_PAGES, seconds: float = PARSE_SECONDS) -> PdfText:
    """Extract the text of every page; raise `UnusableFile` when the PDF cannot be opened,
    has over `max_pages` pages, or takes over `seconds` to read."""
    import pypdfium2 as pdfium

    deadline = time.monotonic() + seconds
    with _PDFIUM:
        try:
            document = pdfium.PdfDocument(raw)
        except pdfium.PdfiumError as exc:
            raise UnusableFile(_reason(str(exc))) from exc
        try:
            count = len(document)
            if count > max_pages:
                raise UnusableFile(
                    f"PDF has {count:,} pages, over the limit of {max_pages:,} "
                    "(CPTQA_PDF_MAX_PAGES); skipped"
                )
            pages = []
            for index in range(count):
                if time.monotonic() > deadline:
                    raise UnusableFile(f"PDF took over {seconds:g} s to read; skipped")
                pages.append(_page_text(document, index))
            title = str(document.get_metadata_dict().get("Title", "")).strip()
        except pdfium.PdfiumError as exc:
            raise UnusableFile(_reason(str(exc))) from exc
        finally:
            document.close()
    if _JUNK_TITLE.search(title) or len(title) > 200:
        title = ""
    # Running lines first: a header as wide as the text would otherwise be joined to it.
    lines = [p.replace("\r\n", "\n").replace("\r", "\n") for p in pages]
    return PdfText([reflow(p) for p in drop_running_lines(lines)], title)


def _page_text(document, index: int) -> str:  # noqa: ANN001 - pypdfium2 has no stubs
    page = document[index]
    try:
        textpage = page.get_textpage()
        try:
            return str(textpage.get_text_range())
        finally:
            textpage.close()
    finally:
        page.close()


def _reason(message: str) -> str:
    lowered = message.lower()
    if "password" in lowered:
        return "password-protected PDF: save an unprotected copy to index it"
    return f"damaged or unreadable PDF: {message.strip().rstrip('.')}"


def reflow(text: str) -> str:
    """Join lines that were wrapped at the page margin; keep short and item lines apart."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    width = max((len(line) for line in lines), default=0)
    out: list[str] = []
    for line in lines:
        line = line.strip()
        if out and line and _wrapped(out[-1], line, width):
            previous = out[-1]
            if previous.endswith(_SOFT_HYPHENS):
                out[-1] = previous[:-1] + line
            elif previous.endswith("-") and line[:1].islower():
                out[-1] = previous + line  # "non-\nspinal" -> "non-spinal"
            else:
                out[-1] = previous + " " + line
        else:
            out.append(line)
    return "\n".join(out)


def _wrapped(previous: str, line: str, width: int) -> bool:
    return (
        bool(previous)
        and len(previous) >= _WRAPPED_SHARE * width
        and not previous.endswith(":")
        and not _ITEM_START.match(line)
        and not (_CODE_START.match(line) and _CODE_START.match(previous))
    )


def drop_running_lines(pages: list[str]) -> list[str]:
    """Remove header and footer lines repeated on most pages, and bare page numbers.

    A line at the top or bottom of a page is running when the same line, with that page's
    own number written as "#", is at the top or bottom of most pages ("Policy RAD-117 |
    Page 3" on page 3), or of both pages of a two-page document; a line that is only a page
    number ("- 3 -", "3/12", "Page 1", "Page 1 of 2") always is, even on a single page.
    """
    running: set[str] = set()
    if sum(1 for p in pages if p.strip()) >= _MIN_PAGES_FOR_RUNNING:
        seen: Counter[str] = Counter()
        for number, page in enumerate(pages, start=1):
            seen.update({_key(page.split("\n")[i], number) for i in _edge_indexes(page)})
        # Two pages: on both; more: on most, and at least three.
        threshold = len(pages) if len(pages) < 3 else max(3, len(pages) // 2 + 1)
        running = {key for key, count in seen.items() if count >= threshold}
    return [_without(page, number, running) for number, page in enumerate(pages, start=1)]


def _edge_indexes(page: str) -> set[int]:
    """Indexes of the first and last non-blank lines of a page that are short enough."""
    lines = page.split("\n")
    content = [i for i, line in enumerate(lines) if line.strip()]
    edges = content[:_RUNNING_LINES] + content[-_RUNNING_LINES:]
    return {i for i in edges if len(lines[i].strip()) <= _RUNNING_CHARS}


def _key(line: str, number: int) -> str:
    words = " ".join(line.lower().split())
    return re.sub(rf"(?<![\d.,]){number}(?![\d.,]\d|\d)", "#", words)


def _without(page: str, number: int, running: set[str]) -> str:
    lines = page.split("\n")
    drop = {
        i
        for i in _edge_indexes(page)
        if _key(lines[i], number) in running or _PAGE_NUMBER.match(lines[i])
    }
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)
