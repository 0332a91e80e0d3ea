"""Malformed inputs: huge files, invalid UTF-8, deeply nested or broken HTML. Each is read or
skipped by name with a reason; none stops an ingest. (PDFs that are not PDFs: test_formats.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_pdf import page_bomb

from index import DEFAULT_MODEL, load_current
from ingest import ChunkerOptions, ReadLimits, ingest_paths, load_documents
from ingest.html import read_html
from ingest.load import DEFAULT_MAX_BYTES, PDF_SIZE_FACTOR

GOOD = "Use 77002 for fluoroscopic guidance of non-spinal procedures."


def with_good_file(folder: Path) -> Path:
    (folder / "good.txt").write_text(GOOD, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("dump.txt", DEFAULT_MAX_BYTES + 1),
        ("dump.html", DEFAULT_MAX_BYTES + 1),
        ("scan.pdf", DEFAULT_MAX_BYTES * PDF_SIZE_FACTOR + 1),
    ],
)
def test_a_file_over_the_size_limit_is_skipped_unread(tmp_path: Path, name: str, size: int) -> None:
    with open(with_good_file(tmp_path) / name, "wb") as handle:
        handle.truncate(size)  # sparse: nothing is written, and nothing may be read
    result = ingest_paths([tmp_path])
    assert [d.id for d in result.documents] == ["good.txt"]
    assert [Path(s.path).name for s in result.skipped] == [name]
    assert "over the" in result.skipped[0].reason and "limit" in result.skipped[0].reason


def test_a_large_file_within_the_limit_is_chunked_whole(tmp_path: Path) -> None:
    paragraph = (
        "Fluoroscopic guidance 77002 is reported once per session. Use 77003 for spinal "
        "injections; 76942 covers ultrasonic needle guidance.\n\n"
    )
    (tmp_path / "manual.txt").write_text(paragraph * 8000, encoding="utf-8")  # about 1 MB
    result = ingest_paths([tmp_path])
    (document,) = result.documents
    assert len(document.text) > 1_000_000
    assert len(result.chunks) > 1000
    assert result.chunks[-1].end == len(document.text)
    for chunk in result.chunks[::97]:
        assert document.text[chunk.start : chunk.end] == chunk.text
        assert [m.code for m in chunk.codes][:3] == ["77002", "77003", "76942"]


def test_one_enormous_line_without_spaces_is_cut_to_the_hard_limit(tmp_path: Path) -> None:
    (tmp_path / "blob.txt").write_text("x" * 200_000, encoding="utf-8")
    options = ChunkerOptions()
    chunks = ingest_paths([tmp_path], options).chunks
    assert sum(len(c.text) for c in chunks) == 200_000
    assert all(len(c.text) <= options.hard_max_chars for c in chunks)


@pytest.mark.parametrize("name", ["page.html", "notes.md", "notes.txt"])
def test_invalid_utf8_in_any_text_format_is_skipped_by_name(tmp_path: Path, name: str) -> None:
    # 0x81 and 0x8d are undefined in Windows-1252 too: neither encoding can read this.
    (with_good_file(tmp_path) / name).write_bytes(b"<p>fluoro \x81\x8d\x8f guidance</p>")
    result = ingest_paths([tmp_path])
    assert [Path(s.path).name for s in result.skipped] == [name]
    assert "not valid UTF-8" in result.skipped[0].reason


def test_a_web_page_in_windows_1252_is_read(tmp_path: Path) -> None:
    page = "<html><body><p>77002 \u2013 non-spinal guidance</p></body></html>"
    (tmp_path / "old.html").write_bytes(page.encode("cp1252"))
    (document,) = load_documents([tmp_path]).documents
    assert document.text == "77002 \u2013 non-spinal guidance"


def test_html_nested_too_deeply_to_parse_safely_is_skipped(tmp_path: Path) -> None:
    depth = 100_000  # lexbor would need about half a minute for this page
    (tmp_path / "bomb.html").write_text(
        "<html><body>" + "<div>" * depth + "77002" + "</div>" * depth + "</body></html>",
        encoding="utf-8",
    )
    result = ingest_paths([with_good_file(tmp_path)])
    assert [d.id for d in result.documents] == ["good.txt"]
    assert "nested too deeply" in result.skipped[0].reason


def test_deep_but_parseable_html_is_read_without_recursion(tmp_path: Path) -> None:
    depth = 5_000  # deeper than Python's recursion limit
    text = read_html("<div>" * depth + "deep 77002 passage" + "</div>" * depth).text
    assert text == "deep 77002 passage"


def test_broken_html_is_read_as_a_browser_would(tmp_path: Path) -> None:
    (tmp_path / "broken.html").write_text(
        "<html><body><p>Use <b>77002 for <i>non-spinal</p><p>guidance & 77003</b> for spinal"
        "<table><tr><td>76942<td>ultrasound<tr><td>76000",
        encoding="utf-8",
    )
    (document,) = load_documents([tmp_path]).documents
    assert document.text.startswith("Use 77002 for non-spinal\n\nguidance & 77003 for spinal")
    assert document.text.endswith("\n\n76942 ultrasound\n76000")  # unclosed cells and rows


def test_binary_named_html_or_markdown_is_skipped(tmp_path: Path) -> None:
    (with_good_file(tmp_path) / "image.html").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" * 50)
    (tmp_path / "archive.md").write_bytes(b"PK\x03\x04\x00\x00" * 50)
    reasons = {Path(s.path).name: s.reason for s in ingest_paths([tmp_path]).skipped}
    assert set(reasons) == {"image.html", "archive.md"}
    assert all("binary" in reason for reason in reasons.values())


# --- hostile files, through a real `cptqa ingest` (issue 17) ------------------------------------

CPTQA = str(Path(sys.executable).with_name("cptqa"))


def run_ingest(corpus: Path, index_dir: Path, **env: str) -> subprocess.CompletedProcess[bytes]:
    """`cptqa ingest corpus` as a user runs it; a hang fails the test instead of the suite."""
    environment = {**os.environ, "CPTQA_INDEX_DIR": str(index_dir), **env}
    return subprocess.run(
        [CPTQA, "ingest", str(corpus)], env=environment, capture_output=True, timeout=240
    )


def indexed_ids(index_dir: Path) -> set[str]:
    return set(load_current(index_dir, DEFAULT_MODEL).manifest["documents"])


def test_links_and_special_files_are_refused_by_name_and_the_rest_indexed(
    tmp_path: Path,
) -> None:
    (tmp_path / "corpus" / "sub").mkdir(parents=True)
    corpus = with_good_file(tmp_path / "corpus")
    (corpus / "sub" / "real.txt").write_text("Use 77003 for spinal guidance.", encoding="utf-8")
    (corpus / "inside.txt").symlink_to(corpus / "sub" / "real.txt")
    (corpus / "passwd.txt").symlink_to("/etc/passwd")
    (corpus / "zero.txt").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo")
    (corpus / "fifolink.txt").symlink_to(tmp_path / "fifo")
    os.mkfifo(corpus / "pipe.txt")
    result = run_ingest(corpus, tmp_path / "index")
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert indexed_ids(tmp_path / "index") == {"good.txt", "inside.txt", "sub/real.txt"}
    for name in ("passwd.txt", "zero.txt", "fifolink.txt"):
        assert f"{name}: a link to" in stderr and "outside the corpus folder" in stderr
    assert "pipe.txt: not a regular file (a FIFO)" in stderr


def test_a_link_to_a_device_or_fifo_is_refused_when_named_directly(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "fifo.txt").symlink_to(tmp_path / "fifo")
    (tmp_path / "zero.txt").symlink_to("/dev/zero")
    loaded = load_documents(
        [tmp_path / "fifo.txt", tmp_path / "zero.txt", with_good_file(tmp_path) / "good.txt"]
    )
    assert [d.id for d in loaded.documents] == ["good.txt"]
    assert [s.reason for s in loaded.skipped] == [
        "not a regular file (a FIFO); not read",
        "not a regular file (a device); not read",
    ]


def test_file_names_that_are_not_utf8_or_hold_escapes_never_stop_an_ingest(
    tmp_path: Path,
) -> None:
    (tmp_path / "corpus").mkdir()
    corpus = with_good_file(tmp_path / "corpus")
    (corpus / "\x1b[31mred.txt").write_text("Use 76942 for ultrasonic guidance.", "utf-8")
    with open(os.fsencode(corpus) + b"/bad\xff.txt", "wb") as handle:
        handle.write(b"Use 77003 for spinal guidance.")
    result = run_ingest(corpus, tmp_path / "index")
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, stderr
    assert indexed_ids(tmp_path / "index") == {"good.txt", "\x1b[31mred.txt"}
    assert "bad\\xff.txt: file name is not valid UTF-8" in stderr
    assert "+ \\x1b[31mred.txt" in stdout
    assert "\x1b" not in stdout + stderr


def test_unclosed_html_and_a_page_tree_bomb_are_skipped_within_seconds(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    corpus = with_good_file(tmp_path / "corpus")
    # 1 MB of unclosed <div>s: the parser's work to close them at the end took 21 s.
    (corpus / "unclosed.html").write_text("<html><body>" + "<div>" * 200_000 + "77002")
    (corpus / "million.pdf").write_bytes(page_bomb(levels=6))  # one page listed 10**6 times
    (corpus / "slow.pdf").write_bytes(page_bomb(levels=5))  # 100,000 pages: 14 s to read
    result = run_ingest(
        corpus, tmp_path / "index", CPTQA_PDF_MAX_PAGES="200000", CPTQA_PARSE_TIMEOUT="1"
    )
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert indexed_ids(tmp_path / "index") == {"good.txt"}
    assert "unclosed.html: HTML nested too deeply" in stderr
    assert "million.pdf: PDF has 1,000,000 pages, over the limit of 200,000" in stderr
    assert "slow.pdf: PDF took over 1 s to read" in stderr


def test_html_that_takes_too_long_to_walk_is_skipped(tmp_path: Path) -> None:
    page = "<html><body>" + "<p>Use <b>77002</b> for guidance.</p>" * 50_000 + "</body></html>"
    (tmp_path / "long.html").write_text(page, encoding="utf-8")
    loaded = load_documents([tmp_path], limits=ReadLimits(seconds=0.01))
    assert [s.reason for s in loaded.skipped] == ["HTML took over 0.01 s to read; skipped"]
    assert load_documents([tmp_path]).documents[0].text.startswith("Use 77002 for guidance.")
