"""cptqa format and incremental-ingest benchmark.

Writes the coding texts of the repository (the seeds and tests/data/dev_corpus) as plain text,
Markdown, HTML pages (with navigation, sidebar and footer) and PDFs (fpdf2), `--copies` times
each with a varying line so that no two files have the same bytes, then measures:

- documents per second per format: loading (parse + clean) and loading + chunking + code
  extraction (an ingest without the embedding);
- an incremental ingest of the mixed corpus with the real model: first build, a re-ingest of
  the unchanged corpus, one changed document, one deleted document.

With `--compare`, also the other PDF and HTML libraries if they are installed (pypdf,
pdfminer.six, trafilatura), on the same files. Prints a table; writes
bench/results-formats.json.

    python bench/formats.py [--copies 10] [--compare] [--skip-ingest]
"""

from __future__ import annotations

import argparse
import html
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest import chunk_corpus, load_documents  # noqa: E402

SOURCES = sorted((ROOT / "corpus").glob("*.txt")) + sorted(
    (ROOT / "tests" / "data" / "dev_corpus").glob("*.txt")
)
PAGE = """<!doctype html><html><head><title>{title} | Coding Forum</title>
<script>var tracking = 1;</script></head><body>
<header><nav><a href="/">Home</a> <a href="/forums">Forums</a> <a>Log in</a></nav></header>
<main><article><h1>{title}</h1>{body}</article></main>
<aside class="sidebar"><h3>Similar threads</h3><a>Modifier 25</a></aside>
<footer>Contact us | Terms and rules | Privacy policy</footer></body></html>"""


def write_corpus(folder: Path, copies: int) -> dict[str, Path]:
    """The same texts in four formats, one folder per format."""
    from fpdf import FPDF

    folders = {kind: folder / kind for kind in ("text", "markdown", "html", "pdf")}
    for path in folders.values():
        path.mkdir(parents=True)
    for copy in range(copies):
        for source in SOURCES:
            text = source.read_text(encoding="utf-8") + f"\n\nRevision {copy}.\n"
            paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
            title = paragraphs[0].split("\n")[0]
            stem = f"{source.stem}-{copy}"
            (folders["text"] / f"{stem}.txt").write_text(text, encoding="utf-8")
            markdown = f"# {title}\n\n" + "\n\n".join(paragraphs[1:])
            (folders["markdown"] / f"{stem}.md").write_text(markdown, encoding="utf-8")
            body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs[1:])
            page = PAGE.format(title=html.escape(title), body=body)
            (folders["html"] / f"{stem}.html").write_text(page, encoding="utf-8")
            pdf = FPDF()
            pdf.set_font("Helvetica", size=10)
            pdf.add_page()
            pdf.multi_cell(0, 5, text.encode("latin-1", "replace").decode("latin-1"))
            pdf.output(str(folders["pdf"] / f"{stem}.pdf"))
    return folders


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds else float("inf")


def measure_formats(folders: dict[str, Path]) -> dict[str, dict[str, float]]:
    results = {}
    for kind, folder in folders.items():
        started = time.perf_counter()
        loaded = load_documents([folder])
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        chunks = chunk_corpus(loaded.documents)
        chunk_seconds = time.perf_counter() - started
        documents = len(loaded.documents)
        results[kind] = {
            "documents": documents,
            "skipped": len(loaded.skipped),
            "pages": sum(max(1, len(d.page_starts)) for d in loaded.documents),
            "megabytes": round(sum(p.stat().st_size for p in folder.iterdir()) / 1e6, 2),
            "chunks": len(chunks),
            "load_docs_per_s": rate(documents, load_seconds),
            "ingest_docs_per_s": rate(documents, load_seconds + chunk_seconds),
        }
    return results


def compare_libraries(folders: dict[str, Path]) -> dict[str, float]:
    """Documents per second of other well-known extractors on the same files, if installed."""
    pdfs = sorted(folders["pdf"].iterdir())
    pages = sorted(folders["html"].iterdir())
    candidates = {}
    try:
        import pypdf

        candidates["pypdf"] = (
            pdfs,
            lambda p: [page.extract_text() for page in pypdf.PdfReader(p).pages],
        )
    except ImportError:
        pass
    try:
        from pdfminer.high_level import extract_text

        candidates["pdfminer.six"] = (pdfs, extract_text)
    except ImportError:
        pass
    try:
        import trafilatura

        candidates["trafilatura"] = (
            pages,
            lambda p: trafilatura.extract(p.read_text(encoding="utf-8"), include_comments=True),
        )
    except ImportError:
        pass
    results = {}
    for name, (files, extract) in candidates.items():
        started = time.perf_counter()
        for path in files:
            extract(path)
        results[name] = rate(len(files), time.perf_counter() - started)
    return results


def measure_incremental(folders: dict[str, Path], scratch: Path) -> dict[str, float]:
    """Build the mixed corpus with the real model, then re-ingest it three ways."""
    from index import Embedder, build_index

    corpus = scratch / "mixed"
    corpus.mkdir()
    for folder in folders.values():
        for path in sorted(folder.iterdir())[: len(SOURCES)]:  # one copy per format
            (corpus / path.name).write_bytes(path.read_bytes())
    embedder = Embedder()
    index_dir = scratch / "index"
    timings: dict[str, float] = {}

    def run(label: str) -> None:
        report = build_index([corpus], index_dir, embedder)
        timings[f"{label}_s"] = round(report.seconds, 2)
        timings[f"{label}_embedded"] = report.embedded
        timings[f"{label}_written"] = report.written

    run("first_build")
    timings["documents"] = len(list(corpus.iterdir()))
    run("unchanged")
    changed = sorted(corpus.glob("*.txt"))[0]
    changed.write_text(changed.read_text(encoding="utf-8") + "\n\nA new sentence.\n", "utf-8")
    run("one_changed")
    sorted(corpus.glob("*.pdf"))[0].unlink()
    run("one_deleted")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=10, help="copies of each text per format")
    parser.add_argument("--compare", action="store_true", help="also time pypdf etc.")
    parser.add_argument("--skip-ingest", action="store_true", help="skip the model-based part")
    args = parser.parse_args()
    result: dict[str, object] = {"machine": platform.platform(), "copies": args.copies}
    with tempfile.TemporaryDirectory(prefix="cptqa-formats-") as scratch:
        folders = write_corpus(Path(scratch) / "formats", args.copies)
        formats = measure_formats(folders)
        result["formats"] = formats
        print(
            f"{'format':<10}{'docs':>6}{'pages':>7}{'MB':>7}{'load docs/s':>13}"
            f"{'+chunk docs/s':>15}"
        )
        for kind, row in formats.items():
            print(
                f"{kind:<10}{row['documents']:>6}{row['pages']:>7}{row['megabytes']:>7}"
                f"{row['load_docs_per_s']:>13}{row['ingest_docs_per_s']:>15}"
            )
        if args.compare:
            others = compare_libraries(folders)
            result["other_libraries_docs_per_s"] = others
            for name, value in others.items():
                print(f"  {name}: {value} docs/s on the same files")
        if not args.skip_ingest:
            incremental = measure_incremental(folders, Path(scratch))
            result["incremental"] = incremental
            for key, value in incremental.items():
                print(f"  {key}: {value}")
    out = ROOT / "bench" / "results-formats.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
