"""Loaders by format (PDF, HTML, Markdown, text), chosen by content as well as by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from sample_files import forum_page, write_pdf
from typer.testing import CliRunner

from api import create_app
from api.cli import app
from index import Embedder, build_index
from ingest import chunk_document, clean_text, ingest_paths, load_documents

PAGES = [
    "Fluoroscopic guidance policy. Use 77002 for fluoroscopic guidance of non-spinal "
    "procedures such as an occipital nerve block.",
    "",  # a page without text (a scanned figure)
    "Spinal injections. Report 77003 for fluoroscopic guidance of spinal or paraspinous "
    "diagnostic or therapeutic injections.",
    "Ultrasound. Report 76942 for ultrasonic guidance for needle placement.",
]


def test_pdf_text_keeps_each_passages_page(tmp_path: Path) -> None:
    write_pdf(tmp_path / "policy.pdf", PAGES, title="Guidance Policy 2024")
    result = ingest_paths([tmp_path])
    (document,) = result.documents
    assert document.format == "pdf"
    assert document.title == "Guidance Policy 2024"
    assert len(document.page_starts) == 4
    for chunk in result.chunks:
        assert document.text[chunk.start : chunk.end] == chunk.text
    pages = {m.code: document.page_at(m.start) for c in result.chunks for m in c.codes}
    assert pages == {"77002": 1, "77003": 3, "76942": 4}
    for chunk in result.chunks:
        assert chunk.page == document.page_at(chunk.start)
        assert chunk.last_page == document.page_at(chunk.end - 1)
        assert all(chunk.page <= pages[m.code] <= chunk.last_page for m in chunk.codes)
    # Short pages share a passage, which then cites the pages it spans.
    assert any(c.last_page > c.page for c in result.chunks)


def test_pdf_lines_wrapped_at_the_margin_are_one_sentence_again(tmp_path: Path) -> None:
    long_sentence = (
        "When fluoroscopic guidance is used for a greater occipital nerve block the guidance is "
        "reported with 77002 because the occipital nerve is not a spinal or paraspinous "
        "structure and the block itself is reported with 64405."
    )
    write_pdf(tmp_path / "tip.pdf", [long_sentence])
    (document,) = load_documents([tmp_path]).documents
    assert " ".join(long_sentence.split()) in document.text


def test_running_header_and_footer_of_a_pdf_are_not_content(tmp_path: Path) -> None:
    pages = [f"Section {n}. Code 6440{n} is a nerve block described on page {n}." for n in "1234"]
    write_pdf(
        tmp_path / "manual.pdf",
        pages,
        header="ACME Health Plan Policy RAD-117 (confidential)",
        footer="Page {page} of 4",
    )
    (document,) = load_documents([tmp_path]).documents
    assert "ACME Health Plan" not in document.text
    assert "Page 2 of 4" not in document.text
    for n in "1234":
        assert f"Code 6440{n} is a nerve block" in document.text


def test_a_two_page_pdf_loses_its_running_header_and_page_numbers(tmp_path: Path) -> None:
    pages = [f"Section {n}. Code 6440{n} is a nerve block." for n in "12"]
    write_pdf(tmp_path / "memo.pdf", pages, header="ACME Coding Memo 2024-3", footer="Page {page}")
    (document,) = load_documents([tmp_path]).documents
    assert "ACME Coding Memo" not in document.text
    assert "Page 1" not in document.text and "Page 2" not in document.text
    assert "Code 64401 is a nerve block" in document.text
    assert "Code 64402 is a nerve block" in document.text


def test_a_one_page_pdf_keeps_its_lines_but_not_a_page_number(tmp_path: Path) -> None:
    write_pdf(tmp_path / "note.pdf", ["Report 64405 for a GON block."], footer="Page {page}")
    (document,) = load_documents([tmp_path]).documents
    assert "Report 64405 for a GON block." in document.text
    assert "Page 1" not in document.text


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_unicode_text_with_a_byte_order_mark_is_read(tmp_path: Path, codec: str) -> None:
    text = "Fluoroscopy — use 77002 for a GON block; 77003 is spinal.\n"
    raw = text.encode(codec)
    if codec == "utf-16-be":
        raw = b"\xfe\xff" + raw
    (tmp_path / "notes.txt").write_bytes(raw)
    loaded = load_documents([tmp_path])
    assert loaded.skipped == []
    (document,) = loaded.documents
    assert "use 77002 for a GON block" in document.text and "—" in document.text


def test_a_pdf_is_read_as_a_pdf_whatever_its_name(tmp_path: Path) -> None:
    write_pdf(tmp_path / "export.txt", ["Use 77002 for non-spinal fluoroscopic guidance."])
    (document,) = load_documents([tmp_path]).documents
    assert document.format == "pdf"
    assert "Use 77002 for non-spinal" in document.text
    assert "%PDF" not in document.text


def test_a_web_page_saved_as_pdf_is_read_as_html(tmp_path: Path) -> None:
    (tmp_path / "policy.pdf").write_text(
        "<!DOCTYPE html><html><body><nav>Home</nav><p>77002 is non-spinal.</p></body></html>",
        encoding="utf-8",
    )
    (document,) = load_documents([tmp_path]).documents
    assert (document.format, document.text) == ("html", "77002 is non-spinal.")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("random.pdf", bytes(range(256)) * 20, "not a PDF"),
        ("truncated.pdf", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog", "damaged or unreadable PDF"),
        ("empty.pdf", b"", "no text"),
    ],
)
def test_pdfs_that_are_not_pdfs_are_skipped_by_name(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    (tmp_path / "good.txt").write_text("Use 77002 for non-spinal guidance.", encoding="utf-8")
    (tmp_path / name).write_bytes(content)
    result = ingest_paths([tmp_path])
    assert [d.id for d in result.documents] == ["good.txt"]
    assert [Path(s.path).name for s in result.skipped] == [name]
    assert reason in result.skipped[0].reason


def test_password_protected_and_image_only_pdfs_say_why(tmp_path: Path) -> None:
    from fpdf import FPDF

    locked = FPDF()
    locked.add_page()
    locked.set_font("Helvetica", size=10)
    locked.cell(0, 5, "77002 is non-spinal.")
    locked.set_encryption(owner_password="owner", user_password="secret")
    locked.output(str(tmp_path / "locked.pdf"))
    write_pdf(tmp_path / "scan.pdf", ["", ""])
    (tmp_path / "good.txt").write_text("Use 77002 for non-spinal guidance.", encoding="utf-8")
    reasons = {Path(s.path).name: s.reason for s in ingest_paths([tmp_path]).skipped}
    assert "password-protected" in reasons["locked.pdf"]
    assert "scanned PDF" in reasons["scan.pdf"]


def test_web_page_text_has_no_navigation_scripts_or_footer(tmp_path: Path) -> None:
    page = forum_page(
        [
            ("mbarker", "Which flouro code for a GON block, 77002 or 77003?"),
            ("codergirl", "Use <b>77002</b> for guidance of <i>non-spinal</i> procedures."),
        ]
    )
    (tmp_path / "thread.html").write_text(page, encoding="utf-8")
    (document,) = load_documents([tmp_path]).documents
    assert document.format == "html"
    assert document.title == "GON block with fluoro"
    assert "Use 77002 for guidance of non-spinal procedures." in document.text
    for boilerplate in ("Log in", "Pain Management", "cookies", "Similar threads", "XenForo"):
        assert boilerplate not in document.text
    assert "tracking" not in document.text and "color: red" not in document.text


def test_forum_profile_in_html_is_furniture_and_its_zip_code_is_no_code(tmp_path: Path) -> None:
    page = forum_page([("mbarker", "We bill 77002 for a hip injection under fluoroscopy.")])
    (tmp_path / "thread.htm").write_text(page, encoding="utf-8")
    (document,) = load_documents([tmp_path]).documents
    chunks = chunk_document(document)
    assert [m.code for c in chunks for m in c.codes] == ["77002"]
    assert not any("Houston" in c.text or "Best answers" in c.text for c in chunks)
    assert chunks[0].context.startswith("GON block with fluoro")


def test_html_table_rows_keep_a_code_with_its_descriptor(tmp_path: Path) -> None:
    (tmp_path / "table.html").write_text(
        "<html><body><table><tr><th>Code</th><th>Descriptor</th></tr>"
        "<tr><td>77002</td><td>Fluoroscopic guidance for needle placement</td></tr>"
        "<tr><td>77003</td><td>Fluoroscopic guidance, spinal or paraspinous</td></tr>"
        "</table></body></html>",
        encoding="utf-8",
    )
    (document,) = load_documents([tmp_path]).documents
    lines = document.text.split("\n")
    assert "77002 Fluoroscopic guidance for needle placement" in lines
    assert "77003 Fluoroscopic guidance, spinal or paraspinous" in lines


def test_markdown_is_read_without_its_markup(tmp_path: Path) -> None:
    (tmp_path / "tips.md").write_text(
        "---\ntitle: Guidance coding tips\nauthor: someone\n---\n"
        "# Fluoroscopy\n\n"
        "Use **77002** for [non-spinal](https://example.invalid/77003) guidance.\n\n"
        "| Code | Use |\n|---|---|\n| 77003 | spinal |\n\n"
        "- item one with 64405\n- item two\n\n"
        "```\n64490-64495 facet\n```\n",
        encoding="utf-8",
    )
    (document,) = load_documents([tmp_path]).documents
    assert document.format == "markdown"
    assert document.title == "Guidance coding tips"
    text = document.text
    assert "Use 77002 for non-spinal guidance." in text
    assert "**" not in text and "](" not in text and "author:" not in text
    assert "example.invalid" not in text
    assert "77003 spinal" in text
    assert "item one with 64405\nitem two" in text
    assert "64490-64495 facet" in text


def test_every_format_gives_clean_text(tmp_path: Path) -> None:
    write_pdf(tmp_path / "a.pdf", PAGES)
    (tmp_path / "b.html").write_text(forum_page([("u", "77002 &amp; 77003")]), "utf-8")
    (tmp_path / "c.md").write_text("# T\n\ntext   with  spaces\n\n\n\nmore", "utf-8")
    (tmp_path / "d.txt").write_text("plain\r\ntext", "utf-8")
    documents = load_documents([tmp_path]).documents
    assert sorted(d.format for d in documents) == ["html", "markdown", "pdf", "text"]
    for document in documents:
        assert clean_text(document.text) == document.text


# Pages of 300-600 characters: one passage each.
LONG_PAGES = [
    page and page + " " + " ".join(f"Filler sentence {n} on documentation." for n in range(5))
    for page in PAGES
]


def test_pdf_page_reaches_the_http_reply_and_the_cli(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_pdf(corpus / "policy.pdf", LONG_PAGES)
    (corpus / "note.txt").write_text("Report 76000 only when no other code applies.", "utf-8")
    index_dir = tmp_path / "index"
    build_index([corpus], index_dir, embedder)
    with TestClient(create_app(make_settings(index_dir), embedder=embedder)) as client:
        reply = client.post("/v1/query", json={"question": "spinal injection guidance", "k": 10})
    assert reply.status_code == 200
    results = reply.json()["results"]
    spinal = next(r for r in results if "77003" in r["text"])
    assert (spinal["document"], spinal["page"], spinal["last_page"]) == ("policy.pdf", 3, 3)
    note = next(r for r in results if r["document"] == "note.txt")
    assert note["page"] is None

    monkeypatch.setenv("CPTQA_INDEX_DIR", str(index_dir))
    shown = CliRunner().invoke(app, ["query", "ultrasonic needle guidance", "--k", "1"])
    assert shown.exit_code == 0, shown.output
    assert "policy.pdf, p. 4" in shown.output
    as_json = CliRunner().invoke(app, ["query", "ultrasonic needle guidance", "--json"])
    assert json.loads(as_json.output)["results"][0]["page"] == 4
