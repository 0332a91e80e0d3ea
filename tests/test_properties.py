"""Property tests (hypothesis) for the cleaner, the chunker and the loaders: offsets hold, no
text is lost, cleaning is idempotent, and no input makes a loader fail other than by a skip."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sample_files import write_pdf

from ingest import ChunkerOptions, chunk_spans, clean_text, load_documents
from ingest.chunk import content_regions
from ingest.html import read_html
from ingest.markdown import read_markdown

# Pieces of coding text, forum furniture and awkward characters, glued at random.
PIECES = [
    "fluoroscopic",
    "guidance",
    "Use",
    "77002",
    "77003-26",
    "for",
    "non-spinal",
    "procedures",
    "e.g.",
    "Dr.",
    "CPT®",
    "0213T",
    "G0260",
    "Houston, TX 77003",
    "Messages",
    "312",
    "Best answers",
    "0",
    "Top",
    "said:",
    "Click to expand...",
    "Page 2 of 4",
    "-----",
    ".",
    ",",
    "?",
    " ",
    "  ",
    "\t",
    "\n",
    "\n\n",
    "\n\n\n",
    "\r\n",
    "\u00a0",
    "\u200b",
    "\x07",
    "e\u0301",
    "\u2028",
    "\ufeff",
]
coding_text = st.lists(st.sampled_from(PIECES), max_size=120).map("".join)
any_text = st.one_of(coding_text, st.text(max_size=400))
small = ChunkerOptions(max_chars=120, min_chars=40, hard_max_chars=200)


def _kept(text: str) -> list[str]:
    """The characters cleaning must keep: all but white space and invisible controls."""
    return [c for c in text if not c.isspace() and unicodedata.category(c) not in ("Cc", "Cf")]


@given(any_text)
@example("e\x07\u0301")  # a letter and its accent, apart until the control goes
def test_cleaning_is_idempotent(text: str) -> None:
    assert clean_text(clean_text(text)) == clean_text(text)


@given(any_text)
def test_cleaning_loses_no_visible_character(text: str) -> None:
    cleaned = clean_text(text)
    assert _kept(cleaned) == _kept(unicodedata.normalize("NFC", "".join(_kept(text))))


@given(any_text)
def test_cleaned_text_has_no_runs_of_space_or_blank_lines(text: str) -> None:
    cleaned = clean_text(text)
    assert "  " not in cleaned and "\n\n\n" not in cleaned and "\r" not in cleaned
    assert cleaned == cleaned.strip()
    assert not re.search(r" \n|\n ", cleaned)


@given(any_text, st.sampled_from([ChunkerOptions(), small]))
def test_chunk_offsets_point_at_trimmed_text_within_the_size_limit(
    text: str, options: ChunkerOptions
) -> None:
    text = clean_text(text)
    previous_start = -1
    for span, _heading in chunk_spans(text, options):
        piece = text[span.start : span.end]
        assert 0 <= span.start < span.end <= len(text)
        assert piece == piece.strip()
        assert span.end - span.start <= options.hard_max_chars
        assert span.start >= previous_start  # in document order
        previous_start = span.start


@given(any_text, st.sampled_from([ChunkerOptions(), small]))
def test_chunks_lose_no_content(text: str, options: ChunkerOptions) -> None:
    """Every visible character outside page/forum furniture lies in some chunk."""
    text = clean_text(text)
    covered = bytearray(len(text))
    for span, _heading in chunk_spans(text, options):
        covered[span.start : span.end] = b"\x01" * (span.end - span.start)
    for region in content_regions(text):
        for offset in range(region.start, region.end):
            if not text[offset].isspace():
                assert covered[offset], (offset, text[offset], text)


@given(any_text)
def test_chunking_is_deterministic(text: str) -> None:
    text = clean_text(text)
    assert chunk_spans(text, small) == chunk_spans(text, small)


WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
BLOCKS = ["p", "div", "li", "h2", "td", "blockquote", "section", "article", "span", "b", "a"]


@st.composite
def html_trees(draw: st.DrawFn, depth: int = 0) -> tuple[str, list[str]]:
    """Random nested markup of content tags, and the words it holds in document order."""
    parts: list[str] = []
    words: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        if depth < 6 and draw(st.booleans()):
            tag = draw(st.sampled_from(BLOCKS))
            inner, inner_words = draw(html_trees(depth + 1))
            parts.append(f"<{tag}>{inner}</{tag}>")
            words.extend(inner_words)
        else:
            word = draw(WORD)
            parts.append(f" {word} ")
            words.append(word)
    return "".join(parts), words


@given(html_trees())
def test_html_text_keeps_every_word_in_order_and_no_markup(tree: tuple[str, list[str]]) -> None:
    markup, words = tree
    text = read_html(f"<html><body>{markup}</body></html>").text
    assert text.split() == words
    assert "<" not in text


@given(st.text(max_size=300))
def test_html_reader_takes_any_text(markup: str) -> None:
    read_html(markup)


@given(st.text(max_size=300))
def test_markdown_reader_takes_any_text(source: str) -> None:
    read_markdown(source)


@given(st.lists(WORD, min_size=1, max_size=30))
def test_markdown_paragraph_keeps_its_words(words: list[str]) -> None:
    assert read_markdown(" ".join(words)).text.split() == words


SUFFIXES = [".txt", ".md", ".html", ".pdf", ".htm", ""]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.binary(max_size=2000), st.sampled_from(SUFFIXES))
def test_any_bytes_in_any_file_are_read_or_skipped_never_fatal(
    tmp_path: Path, raw: bytes, suffix: str
) -> None:
    path = tmp_path / f"doc{suffix}"
    path.write_bytes(raw)
    result = load_documents([path])
    assert len(result.documents) + len(result.skipped) == 1
    for document in result.documents:
        assert document.text and clean_text(document.text) == document.text


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.data())
def test_damaged_pdfs_are_read_or_skipped_never_fatal(tmp_path: Path, data: st.DataObject) -> None:
    source = tmp_path / "source.pdf"
    if not source.exists():
        write_pdf(source, ["Use 77002 for non-spinal guidance.", "77003 is spinal."])
    raw = bytearray(source.read_bytes())
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    flips = data.draw(st.lists(st.integers(0, len(raw) - 1), max_size=20), label="flips")
    for offset in flips:
        raw[offset] ^= 0xFF
    damaged = tmp_path / "damaged.pdf"
    damaged.write_bytes(bytes(raw[:cut]))
    result = load_documents([damaged])
    assert len(result.documents) + len(result.skipped) == 1
