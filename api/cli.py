"""The `cptqa` command line: ingest, query, serve, mcp, codes; eval (api/evalcmd.py) and train
(api/traincmd.py)."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from api.clicommon import IndexDirOption, err, fail, out
from api.clicommon import load_settings as _settings
from api.evalcmd import eval_
from api.firstbuild import index_in_child
from api.replies import code_reply, query_reply
from api.schemas import AnswerCodeOut, Passage, QueryResponse
from api.service import Service
from api.settings import Settings
from api.traincmd import train
from index import BuildReport
from ingest import (
    CptqaError,
    IndexMissing,
    extract_codes,
    printable_path,
)

app = typer.Typer(
    help="cptqa: answers medical coders' questions with passages and CPT/HCPCS codes.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Files or folders to index: text, Markdown, HTML, PDF (default: the corpus "
            "folder)."
        ),
    ] = None,
    index_dir: IndexDirOption = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Start from scratch: index only PATHS and embed everything again (also the "
            "fix for an index made by another model or cptqa version).",
        ),
    ] = False,
    remove: Annotated[
        list[Path] | None,
        typer.Option(
            "--remove",
            help="Take a file, everything under a folder, or a document id out of the index "
            "(repeatable; with no PATHS, nothing else is read).",
        ),
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Run the load, chunk, code and embedding stages on the Ray cluster at ADDRESS "
            "(host:port of its head, or auto); default CPTQA_RAY_ADDRESS. Needs "
            "`pip install 'cptqa[ray]'`.",
        ),
    ] = None,
) -> None:
    """Bring the index in line with PATHS: add new files, re-embed changed ones, drop deleted
    ones; documents indexed from other paths stay. Publishes a new snapshot atomically, or
    writes nothing when nothing changed."""
    settings = _settings(index_dir)
    if "CPTQA_LOG_LEVEL" not in os.environ:
        # The report below names every skipped file once; the loader's log would repeat it.
        logging.getLogger("ingest.load").setLevel(logging.ERROR)
    service = Service(settings)
    try:
        report = service.build(
            paths or None,
            progress=sys.stderr.isatty(),
            rebuild=rebuild,
            remove=remove or None,
            ray_address=ray,
        )
    except CptqaError as exc:
        fail(exc)
    for skipped in report.skipped:
        _print_skipped(skipped.path, skipped.reason)
    _print_ingest_report(report)


def _print_skipped(path: str, reason: str) -> None:
    # Names come from the corpus folder: printed escaped, and never read as rich markup.
    err.print(
        f"[yellow]skipped[/] {escape(printable_path(path))}: {escape(reason)}", highlight=False
    )


def _print_ingest_report(report: BuildReport) -> None:
    changes = report.changes
    for mark, names in (("+", changes.added), ("~", changes.changed), ("-", changes.removed)):
        for name in names[:_LISTED_CHANGES]:
            out.print(
                f"  {mark} {printable_path(name)}", highlight=False, markup=False, soft_wrap=True
            )
        if len(names) > _LISTED_CHANGES:
            out.print(
                f"  {mark} ... and {len(names) - _LISTED_CHANGES} more",
                highlight=False,
                soft_wrap=True,
            )
    kept = f" ({len(changes.kept)} indexed from other paths, kept)" if changes.kept else ""
    out.print(
        f"added {len(changes.added)}, changed {len(changes.changed)}, removed "
        f"{len(changes.removed)}, unchanged {len(changes.unchanged) + len(changes.kept)}{kept}",
        highlight=False,
        soft_wrap=True,
    )
    formats = ", ".join(f"{n} {kind}" for kind, n in sorted(report.formats.items()))
    if not report.written:
        out.print(
            f"nothing changed: {report.documents} documents ({formats}), {report.chunks} chunks; "
            f"{report.snapshot} stays current, nothing written",
            highlight=False,
            soft_wrap=True,
        )
        return
    out.print(
        f"indexed {report.documents} documents ({formats}), {report.chunks} chunks in "
        f"{report.seconds:.1f} s ({report.embedded} passages embedded, {report.reused} reused) "
        f"-> {report.snapshot}",
        highlight=False,
        soft_wrap=True,
    )


_LISTED_CHANGES = 20


@app.command()
def query(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    k: Annotated[int | None, typer.Option("--k", "-k", help="How many passages.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the HTTP API's JSON.")] = False,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Show each passage's ranking features and their parts."),
    ] = False,
    index_dir: IndexDirOption = None,
) -> None:
    """Answer a question from the current index."""
    service = Service(_settings(index_dir))
    try:
        if not service.has_index():
            raise IndexMissing(
                f"no index in {service.index_dir}: run `cptqa ingest` (or `cptqa serve`) first"
            )
        service.load()
        result = query_reply(service, question, k, explain=explain)
    except CptqaError as exc:
        fail(exc)
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    _print_result(result)


def _print_explanation(item: Passage | AnswerCodeOut) -> None:
    explanation = item.explanation
    if explanation is None:
        return
    parts = [f"{f.name}={f.value:.3g} ({f.contribution:+.3f})" for f in explanation.features[:8]]
    out.print(
        f"  [dim]why ({explanation.scorer}, base {explanation.base:+.3f}): "
        + ", ".join(parts)
        + "[/]",
        highlight=False,
    )


def _print_result(result: QueryResponse) -> None:
    if result.codes:
        out.print("[bold]Answer codes[/]")
        for code in result.codes[:5]:
            evidence = code.evidence[0].text if code.evidence else ""
            described = f": {escape(code.descriptor)}" if code.descriptor else ""
            out.print(
                f"  [bold cyan]{code.code}[/]{described} ({code.role}, score {code.score:.2f})"
                f"{_status_words(code)}\n    {escape(evidence)}",
                highlight=False,
            )
            _print_explanation(code)
    for passage in result.results:
        codes = ", ".join(dict.fromkeys(c.code for c in passage.codes)) or "none"
        dated = "; ".join(f"{c.code} {c.change} {c.year}" for c in passage.dated)
        when = f"  {passage.date.year}" if passage.date else ""
        out.print(
            f"\n[bold]{passage.rank}.[/] {escape(passage.title)} ({escape(passage.document)}"
            f"{_pages(passage)}) "
            f"[{passage.start}:{passage.end}]  score {passage.score:.4f}  codes: {codes}{when}"
            + (f"  [yellow]dated: {escape(dated)}[/]" if dated else ""),
            highlight=False,
        )
        out.print(passage.text, highlight=False, markup=False)
        _print_explanation(passage)
    out.print(f"\n[dim]{result.took_ms:.1f} ms[/]")


def _status_words(code: AnswerCodeOut) -> str:
    """ " [deleted 2017 → 62322, 62323]" for a code that is not current; "" otherwise."""
    words = []
    if code.status != "current":
        changes = [h for h in code.history if h.source != "corpus"] or code.history
        last = changes[-1] if changes else None
        moved = (
            f" {last.year} → {', '.join(last.replacements)}" if last and last.replacements else ""
        )
        words.append(f"{code.status}{moved}")
    if code.dated:
        words.append(f"{code.dated.year} advice, before the {code.dated.change.year} change")
    if code.current_rule:
        words.append(code.current_rule)
    return f" [yellow]\\[{escape('; '.join(words))}][/]" if words else ""


def _pages(passage: Passage) -> str:
    """ ", p. 3" or ", pp. 3-4" for a passage of a PDF; "" otherwise."""
    if passage.page is None:
        return ""
    if passage.last_page and passage.last_page != passage.page:
        return f", pp. {passage.page}-{passage.last_page}"
    return f", p. {passage.page}"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (CPTQA_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (CPTQA_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Server processes (CPTQA_WORKERS).", min=1, max=64)
    ] = None,
    index_dir: IndexDirOption = None,
) -> None:
    """Serve the HTTP API, the web page at / and MCP at /mcp; builds the index from the corpus
    folder first if there is none."""
    import uvicorn

    from api.accesslog import configure_access_log

    settings = _settings(index_dir, service=True)
    updates = {
        k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None
    }
    settings = settings.model_copy(update=updates)
    service = Service(settings)
    if not service.has_index():
        err.print(f"no index in {settings.index_dir}: indexing {settings.corpus_dir} first")
        if code := index_in_child(settings):
            raise typer.Exit(code)
    # Our JSON access lines (with request ids) replace uvicorn's own access log.
    configure_access_log(settings.access_log)
    options = {
        "log_level": settings.log_level,
        "access_log": False,
        **_connection_options(settings),
    }
    if settings.workers > 1:
        # Each worker process builds the app from the environment; the options given here
        # reach them through it. They share the snapshot's memory-mapped files.
        os.environ["CPTQA_INDEX_DIR"] = str(settings.index_dir.resolve())
        os.environ["CPTQA_WORKERS"] = str(settings.workers)  # each one's share of the cores
        from uvicorn.supervisors import Multiprocess

        config = uvicorn.Config(
            "api.http:create_app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            **options,
        )
        config.connection_limits = _connection_limits(settings)  # type: ignore[attr-defined]
        Multiprocess(config, sockets=[_listening_socket(settings.host, settings.port)]).run()
        return
    from api.http import create_app

    # Serving encodes questions with the snapshot's ONNX encoder: no torch in this process.
    application = create_app(settings)
    config = uvicorn.Config(application, host=settings.host, port=settings.port, **options)
    config.connection_limits = _connection_limits(settings)  # type: ignore[attr-defined]
    uvicorn.Server(config).run()


def _connection_options(settings: Settings) -> dict[str, object]:
    """uvicorn's own bounds on connections, and whom it believes about forwarded addresses."""
    return {
        "http": "api.protocol:BoundedHttpTools",
        "timeout_keep_alive": settings.keep_alive_timeout,
        "limit_concurrency": settings.max_connections,
        # uvicorn trusts 127.0.0.1 by default, so any local process could name any client
        # address in X-Forwarded-For and step around the rate limit; trust only named proxies.
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": ",".join(settings.forwarded_allow_ips) or "",
    }


def _connection_limits(settings: Settings):  # noqa: ANN202 - api.protocol imports uvicorn
    from api.protocol import ConnectionLimits

    return ConnectionLimits(
        settings.max_header_bytes, settings.max_headers, settings.header_read_timeout
    )


def _listening_socket(host: str, port: int) -> socket.socket:
    """The socket the worker processes share, made with its protocol named (IPPROTO_TCP).

    uvicorn's own bind for `--workers` leaves the protocol 0, and asyncio then skips
    TCP_NODELAY on every accepted connection: each keep-alive request after the first waited
    ~40 ms for a delayed ACK (measured here: /healthz 44 ms with 2 workers, 1.5 ms with one;
    uvicorn issue 3149). Naming the protocol restores TCP_NODELAY.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(CptqaError(f"cannot listen on {host}:{port}: {exc.strerror or exc}"))
    sock.set_inheritable(True)
    return sock


@app.command()
def mcp(
    index_dir: IndexDirOption = None,
) -> None:
    """Serve the MCP tools over stdin/stdout, for desktop chat clients (logs go to stderr).

    Builds the index from the corpus folder first if there is none, like `serve`."""
    from api.mcp import run_stdio

    settings = _settings(index_dir, service=True)
    try:
        run_stdio(settings)
    except CptqaError as exc:
        fail(exc)


@app.command(
    epilog="`cptqa codes show CODE` prints what the indexed corpus says about one code "
    "(descriptors, passages, related codes) as JSON."
)
def codes(
    words: Annotated[
        list[str],
        typer.Argument(
            help="TEXT to scan for codes, - to read standard input, or: show CODE.",
            show_default=False,
        ),
    ],
    index_dir: IndexDirOption = None,
) -> None:
    """Print the CPT/HCPCS code mentions found in TEXT as JSON (offsets, modifiers, role)."""
    if len(words) == 2 and words[0] == "show":
        _show_code(words[1], index_dir)
        return
    text = sys.stdin.read() if words == ["-"] else " ".join(words)
    mentions = [
        {
            "code": m.code,
            "system": m.system,
            "category": m.category,
            "start": m.start,
            "end": m.end,
            "modifiers": list(m.modifiers),
            "role": m.role,
            "from_range": m.from_range,
            "names_section": m.names_section,
        }
        for m in extract_codes(text)
    ]
    print(json.dumps(mentions, indent=2))


def _show_code(code: str, index_dir: Path | None) -> None:
    from index import Searcher, load_current

    settings = _settings(index_dir)
    try:
        # A lookup reads the glossary only: no model to load.
        snapshot = load_current(settings.index_dir, settings.model)
        searcher = Searcher(snapshot, None, as_of=settings.current_year)
        info = code_reply(searcher, code)
    except CptqaError as exc:
        fail(exc)
    print(info.model_dump_json(indent=2))


app.command("eval")(eval_)
app.command()(train)


def main() -> None:
    """Entry point of the `cptqa` console script."""
    app()


if __name__ == "__main__":
    main()
