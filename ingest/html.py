"""Readable text of a web page: its content, without navigation, scripts or page furniture.

selectolax (the lexbor HTML5 parser) builds the tree; a walk writes each block element on
lines of its own and inline elements within the line, so the chunker sees the page's structure
(a forum post's profile fields stay short lines of their own, which the chunker recognises as
furniture). Left out: scripts, styles, forms' controls, hidden elements, `<nav>`, `<aside>`,
`<footer>`, a page-level `<header>`, and elements whose role, class or id names navigation,
menus, breadcrumbs, sidebars, footers, cookie banners or share bars.

Why not trafilatura: on a forum thread it folded each post's profile ("Location Houston, TX
77003") into the post's own line, where the ZIP code read as a CPT code, and it dropped the
thread title; it is also about 40 times slower here and brings ten dependencies.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from ingest.errors import UnusableFile


def _words(names: str) -> frozenset[str]:
    return frozenset(names.split())


_SKIP_TAGS = _words(
    "script style noscript template svg canvas iframe object embed nav aside footer button "
    "select option textarea input menu dialog head"
)
_PARAGRAPH_TAGS = _words(
    "p h1 h2 h3 h4 h5 h6 blockquote pre table ul ol dl article section figure hr"
)
_LINE_TAGS = _words(
    "div li dt dd tr br caption figcaption address header main details summary legend "
    "fieldset form center tbody thead tfoot"
)
_CELL_TAGS = frozenset(("td", "th"))
_CONTENT_ANCESTORS = frozenset(("article", "main", "section"))
_SKIP_ROLES = _words(
    "navigation banner contentinfo complementary search menu menubar dialog alertdialog"
)
_SKIP_NAME = re.compile(
    r"^(?:nav|menu|breadcrumb|sidebar|footer|cookie|share|social|pagination|pagenav|advert|"
    r"popup|modal|skip)"
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)[^>]*?(/?)>")
# An open one of these ends where the next of its kind starts (<p>a<p>b: two paragraphs).
_CLOSES_ITS_SIBLING = _words("p li dt dd tr td th option")
_VOID = _words("area base br col embed hr img input link meta param source track wbr")
# Work an HTML5 parser does to close deeply nested elements grows with depth times closing
# tags (about 0.7 s at 20,000 nested divs, 29 s at 100,000): refuse a page above this much.
# Elements left open at the end are closed by the parser too, at the same cost (1 MB of
# unclosed <div>s took 21 s).
MAX_NESTING_WORK = 300_000_000
# A 20 MiB page of real text has far fewer elements than this; a page of nothing but tags is
# not a reference text.
MAX_ELEMENTS = 1_000_000
PARSE_SECONDS = 30.0
_CHECK_EVERY = 4096  # nodes walked between looks at the clock
_TITLE_CHARS = 200


@dataclass(frozen=True)
class HtmlText:
    text: str  # the readable text, one block per line, blank lines between paragraphs
    title: str  # the first <h1>, else <title>, else ""


def read_html(html: str, seconds: float = PARSE_SECONDS) -> HtmlText:
    """The readable text of a page; raise `UnusableFile` for a page too deeply nested, with
    too many elements, or taking over `seconds` to read."""
    from selectolax.lexbor import LexborHTMLParser

    deadline = time.monotonic() + seconds
    work, depth, elements = nesting_work(html)
    if elements > MAX_ELEMENTS:
        raise UnusableFile(f"HTML has over {MAX_ELEMENTS:,} elements; too many to read safely")
    if work > MAX_NESTING_WORK:
        raise UnusableFile(f"HTML nested too deeply to read safely ({depth} levels)")
    tree = LexborHTMLParser(html)
    title = _first_text(tree, "h1") or _first_text(tree, "title")
    root = tree.body or tree.root
    text = _Writer(deadline, seconds).write(root) if root is not None else ""
    return HtmlText(text, title[:_TITLE_CHARS])


def nesting_work(html: str) -> tuple[int, int, int]:
    """(estimated element-scope checks to parse `html`, deepest nesting, elements): cheap,
    no parse. Elements still open at the end count as closed there, as the parser closes them."""
    open_tags: list[str] = []
    deepest = work = elements = 0
    for match in _TAG.finditer(html):
        closing, name, self_closing = match.groups()
        elements += not closing
        name = name.lower()
        if name in _VOID or self_closing:
            continue
        if closing or (name in _CLOSES_ITS_SIBLING and open_tags and open_tags[-1] == name):
            work += len(open_tags)
            if open_tags:
                open_tags.pop()
        if not closing:
            open_tags.append(name)
            deepest = max(deepest, len(open_tags))
    depth = len(open_tags)
    return work + depth * (depth + 1) // 2, deepest, elements


def _first_text(tree, selector: str) -> str:  # noqa: ANN001 - selectolax nodes
    node = tree.css_first(selector)
    return " ".join(node.text(deep=True).split()) if node is not None else ""


class _Writer:
    """Walks the tree without recursion (a deep page must not exhaust Python's stack)."""

    def __init__(self, deadline: float, seconds: float) -> None:
        self.deadline = deadline
        self.seconds = seconds
        self.parts: list[str] = []
        self.pending = 0  # line breaks owed before the next text
        self.pre = 0  # inside <pre>: keep line breaks
        self.content = 0  # inside <article>/<main>/<section>
        self.cell = False

    def write(self, root) -> str:  # noqa: ANN001
        stack = [root]
        node = root.child
        walked = 0
        while stack:
            walked += 1
            if walked % _CHECK_EVERY == 0 and time.monotonic() > self.deadline:
                raise UnusableFile(f"HTML took over {self.seconds:g} s to read; skipped")
            if node is None:
                done = stack.pop()
                self._leave(done)
                node = done.next if stack else None
                continue
            if self._enter(node) and node.child is not None:
                stack.append(node)
                node = node.child
                continue
            node = node.next
        return "".join(self.parts).strip()

    def _enter(self, node) -> bool:  # noqa: ANN001
        """Write what opens `node`; True when its children are to be walked (then `_leave`)."""
        if node.is_text_node:
            self._text(node.text_content or "")
            return False
        if not node.is_element_node:
            return False
        tag = node.tag.lower()
        if self._skipped(node, tag):
            return False
        if tag == "br":
            self._break(1)
        elif tag in _CELL_TAGS:
            if self.cell:
                self.parts.append("\t")
        else:
            self._break_for(tag)
        if node.child is None:
            self._leave_tag(tag)
            return False
        self.pre += tag == "pre"
        self.content += tag in _CONTENT_ANCESTORS
        return True

    def _leave(self, node) -> None:  # noqa: ANN001
        tag = node.tag.lower()
        self.pre -= tag == "pre"
        self.content -= tag in _CONTENT_ANCESTORS
        self._leave_tag(tag)

    def _leave_tag(self, tag: str) -> None:
        if tag in _CELL_TAGS:
            self.cell = True
        else:
            self._break_for(tag)
        if tag == "tr":
            self.cell = False

    def _skipped(self, node, tag: str) -> bool:  # noqa: ANN001
        if tag in _SKIP_TAGS or (tag == "header" and not self.content):
            return True
        attributes = node.attributes
        if "hidden" in attributes or attributes.get("aria-hidden") == "true":
            return True
        if _HIDDEN_STYLE.search(attributes.get("style") or ""):
            return True
        if (attributes.get("role") or "").lower() in _SKIP_ROLES:
            return True
        names = f"{attributes.get('class') or ''} {attributes.get('id') or ''}".lower()
        return any(_SKIP_NAME.match(token) for token in re.split(r"[^a-z0-9]+", names) if token)

    def _break_for(self, tag: str) -> None:
        if tag in _PARAGRAPH_TAGS:
            self._break(2)
        elif tag in _LINE_TAGS:
            self._break(1)

    def _break(self, lines: int) -> None:
        self.pending = max(self.pending, lines)

    def _text(self, text: str) -> None:
        if not self.pre:
            text = re.sub(r"\s+", " ", text)
        if not text.strip():
            if text and self.parts and not self.pending:
                self.parts.append(" ")
            return
        if self.pending and self.parts:
            self.parts.append("\n" * self.pending)
            text = text.lstrip(" ")
        elif not self.parts:
            text = text.lstrip(" ")
        self.pending = 0
        self.parts.append(text)
