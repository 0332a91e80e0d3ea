"""Small real documents written by the tests themselves: PDFs (fpdf2), HTML pages, Markdown."""

from __future__ import annotations

import html
from pathlib import Path

from fpdf import FPDF


def write_pdf(
    path: Path,
    pages: list[str],
    title: str | None = None,
    header: str | None = None,
    footer: str | None = None,
) -> Path:
    """A PDF with one page per string (an empty string makes a page without text).

    `header` and `footer` are running lines repeated on every page; "{page}" is replaced by
    the page number.
    """
    pdf = FPDF()
    pdf.set_auto_page_break(False)
    if title:
        pdf.set_title(title)
    for number, text in enumerate(pages, start=1):
        pdf.add_page()
        pdf.set_font("Helvetica", size=10)
        if header:
            pdf.set_xy(10, 8)
            pdf.cell(0, 5, header.replace("{page}", str(number)))
        pdf.set_xy(10, 20)
        if text:
            pdf.multi_cell(0, 5, text)
        if footer:
            pdf.set_xy(10, 280)
            pdf.cell(0, 5, footer.replace("{page}", str(number)))
    pdf.output(str(path))
    return path


FORUM_THREAD = """<!doctype html>
<html><head><title>GON block with fluoro | Coding Forum</title>
<script>window.tracking = "77003";</script><style>.p-nav {{ color: red }}</style></head>
<body>
<div class="p-nav"><ul><li><a href="/">Forums</a></li><li><a>What's new</a></li>
<li><a>Log in</a></li><li><a>Register</a></li></ul></div>
<div class="p-breadcrumbs"><a>Home</a> &gt; <a>Pain Management</a></div>
<div class="cookie-banner">We use cookies to improve your experience.</div>
<h1 class="p-title-value">GON block with fluoro</h1>
{posts}
<div class="p-sidebar"><h3>Similar threads</h3><a>77003 with facet injections</a></div>
<footer>Contact us | Terms and rules | Community platform by XenForo&reg;</footer>
</body></html>"""

POST = """<article class="message"><section class="message-user">
<h4 class="message-name">{user}</h4><h5>True Blue</h5>
<dl><dt>Messages</dt><dd>312</dd></dl><dl><dt>Location</dt><dd>Houston, TX 77003</dd></dl>
<dl><dt>Best answers</dt><dd>0</dd></dl></section>
<div class="bbWrapper">{message}</div>
<footer class="message-footer"><a>Reply</a> <a>Report</a></footer></article>"""


def forum_page(posts: list[tuple[str, str]]) -> str:
    """A XenForo-style thread: navigation, profile blocks, posts, sidebar and footer."""
    body = "\n".join(
        POST.format(user=html.escape(user), message=message) for user, message in posts
    )
    return FORUM_THREAD.format(posts=body)
