"""Readable text of a Markdown file: the words, without the markup.

markdown-it-py (CommonMark, with tables) parses; its flat token stream is written back as
plain text: headings and paragraphs as blocks separated by blank lines, list items and table
rows on lines of their own (cells separated by tabs), link and image text kept, URLs, inline
HTML and emphasis marks dropped. Line breaks inside a paragraph are kept as the author wrote
them, as for a .txt file. A leading YAML front-matter block is metadata, not content; its
`title:` becomes the document title.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.html import read_html

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_FRONT_TITLE = re.compile(r"^title:\s*[\"']?(.*?)[\"']?\s*$", re.M)
_BLOCK_ENDS = {
    "paragraph_close": 2,
    "heading_close": 2,
    "blockquote_close": 2,
    "bullet_list_close": 2,
    "ordered_list_close": 2,
    "table_close": 2,
    "hr": 2,
    "list_item_close": 1,
    "tr_close": 1,
}


@dataclass(frozen=True)
class MarkdownText:
    text: str
    title: str  # front matter's title, else a leading level-1 heading, else ""


def read_markdown(source: str) -> MarkdownText:
    """Plain text of a Markdown document, one block per paragraph."""
    from markdown_it import MarkdownIt

    title = ""
    front = _FRONT_MATTER.match(source)
    if front:
        found = _FRONT_TITLE.search(front.group(1))
        title = found.group(1).strip() if found else ""
        source = source[front.end() :]
    tokens = MarkdownIt("commonmark").enable("table").parse(source)
    writer = _Writer()
    for index, token in enumerate(tokens):
        if (
            not title
            and token.type == "inline"
            and index == 1
            and tokens[0].type == "heading_open"
            and tokens[0].tag == "h1"
        ):
            title = token.content.strip()
        writer.add(token)
    return MarkdownText(writer.text(), title)


class _Writer:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pending = 0
        self.cells = 0

    def add(self, token) -> None:  # noqa: ANN001 - markdown_it.token.Token
        kind = token.type
        if kind == "inline":
            self._write(_inline_text(token))
        elif kind in ("fence", "code_block"):
            self._write(token.content.rstrip("\n"))
            self._break(2)
        elif kind == "html_block":
            self._write(read_html(token.content).text)
            self._break(2)
        elif kind in ("th_open", "td_open"):
            if self.cells:
                self.parts.append("\t")
            self.cells += 1
        elif kind == "tr_open":
            self.cells = 0
            if self.pending and self.parts:
                self.parts.append("\n" * self.pending)
            self.pending = 0
        elif kind == "paragraph_close" and token.hidden:
            self._break(1)  # a paragraph of a tight list item
        elif kind in _BLOCK_ENDS:
            self._break(_BLOCK_ENDS[kind])

    def _break(self, lines: int) -> None:
        self.pending = max(self.pending, lines)

    def _write(self, text: str) -> None:
        if not text.strip():
            return
        if self.pending and self.parts:
            self.parts.append("\n" * self.pending)
        self.pending = 0
        self.parts.append(text)

    def text(self) -> str:
        return "".join(self.parts).strip()


def _inline_text(token) -> str:  # noqa: ANN001
    pieces: list[str] = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            pieces.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            pieces.append("\n")
        elif child.type == "image":
            pieces.append(child.content)  # the alt text
    return "".join(pieces)
