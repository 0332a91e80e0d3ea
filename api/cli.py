"""The `cptqa` command line: ingest, query, serve, mcp, codes, eval."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from api.firstbuild import index_in_child
from api.replies import code_reply, query_reply
from api.schemas import AnswerCodeOut, Passage, QueryResponse
from api.service import Service
from api.settings import Settings
from index import BuildReport, IndexBusy, IndexUnwritable, ModelUnavailable
from index.ray_build import RayUnavailable
from ingest import (
    CorpusError,
    CptqaError,
    IndexCorrupt,
    IndexIncompatible,
    IndexMissing,
    InvalidInput,
    UnknownCode,
    UnknownDocument,
    extract_codes,
    printable_path,
)

app = typer.Typer(
    help="cptqa: answers medical coders' questions with passages and CPT/HCPCS codes.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)

# The one table from error class to exit code (the HTTP statuses live in api/http.py).
EXIT_BY_ERROR: dict[type[CptqaError], int] = {
    InvalidInput: 2,
    CorpusError: 2,
    IndexMissing: 3,
    IndexIncompatible: 3,
    IndexCorrupt: 3,
    ModelUnavailable: 3,
    UnknownCode: 4,
    UnknownDocument: 4,
    IndexBusy: 5,
    IndexUnwritable: 6,
    RayUnavailable: 2,
}


def fail(exc: CptqaError) -> NoReturn:
    code = next((EXIT_BY_ERROR[c] for c in type(exc).__mro__ if c in EXIT_BY_ERROR), 1)
    err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
    raise typer.Exit(code)


def _settings(index_dir: Path | None = None, service: bool = False) -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CPTQA_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        fail(InvalidInput(f"bad setting: {problems}"))
    if index_dir is not None:
        settings = settings.model_copy(update={"index_dir": index_dir})
    if not service and "CPTQA_SOLO_QUERY_THREADS" not in os.environ:
        # The solo encoder session pays off over many questions; a one-shot command would
        # spend 0.6 s of CPU opening it beside its own work, and wait for it at exit.
        settings = settings.model_copy(update={"solo_query_threads": 1})
    # A one-shot command prints its own report; its log says only what went wrong unless
    # CPTQA_LOG_LEVEL asks for more. The server logs at the configured level.
    chosen = "CPTQA_LOG_LEVEL" in os.environ or service
    level = settings.log_level.upper() if chosen else "WARNING"
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs each build at DEBUG
    if level != "DEBUG":  # the MCP SDK's session manager logs its start and stop at INFO
        logging.getLogger("mcp").setLevel(logging.WARNING)
    return settings


IndexDirOption = Annotated[
    Path | None, typer.Option("--index-dir", help="Index folder (default: CPTQA_INDEX_DIR).")
]


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


SetsOption = Annotated[
    Path | None,
    typer.Option(
        "--sets",
        help="The public judged sets (corpora and question files by topic; default: "
        "tests/data/public_sets.json of this checkout).",
    ),
]
KindOption = Annotated[
    str, typer.Option("--kind", help="Ranking model to fit: lambdamart or linear.")
]
CodeKindOption = Annotated[
    str, typer.Option("--code-kind", help="Answer-code model to fit: linear or lambdamart.")
]
PublicIndexOption = Annotated[
    Path | None,
    typer.Option(
        "--public-index",
        help="Where the public sets' corpora are indexed (default: .cptqa/public beside the "
        "index folder); updated incrementally.",
    ),
]
_DEFAULT_SETS = Path(__file__).resolve().parent.parent / "tests" / "data" / "public_sets.json"


def _check_kinds(kind: str, code_kind: str) -> None:
    from index.train import FITS

    for option, value in (("--kind", kind), ("--code-kind", code_kind)):
        if value not in FITS:
            raise InvalidInput(f"{option} {value!r}: use one of {', '.join(FITS)}")


def _public_searcher(settings: Settings, sets_file: Path | None, where: Path | None):
    """The public sets and a searcher over all their corpora indexed together."""
    from index import Searcher, build_index, load_current
    from index.train import load_public_sets

    path = sets_file or _DEFAULT_SETS
    if not path.exists():
        raise InvalidInput(f"no sets file at {path}: pass --sets FILE")
    sets = load_public_sets(path)
    directory = where or settings.index_dir.parent / "public"
    service = Service(settings)

    def build(rebuild: bool) -> None:
        build_index(
            sets.corpora,
            directory,
            service.passage_encoder,
            model=settings.model,
            encoder_cache=settings.cache_dir,
            rebuild=rebuild,
        )

    try:
        build(False)
    except IndexIncompatible:
        # The public index is only a cache of the sets' corpora: one made by another cptqa
        # version is rebuilt, not an error (a user's own index never is).
        out.print(f"rebuilding {directory}: it was made by another cptqa version", highlight=False)
        build(True)
    snapshot = load_current(directory, settings.model)
    return sets, Searcher(snapshot, service.query_encoder(snapshot), None)


@app.command("eval")
def eval_(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="JSONL files: questions ({question, gold, codes}) and/or extractor cases "
            "({text, codes}, e.g. tests/data/code_examples.jsonl)."
        ),
    ] = None,
    corpus: Annotated[
        list[Path] | None,
        typer.Option(
            "--corpus", help="Index these folders into a temporary index and evaluate on it."
        ),
    ] = None,
    cv: Annotated[
        str | None,
        typer.Option(
            "--cv",
            help="`topic`: leave-one-topic-out over the public sets (fit on all topics but "
            "one, evaluate on it, for each), beside the in-sample fit and the hand-weighted "
            "scorer.",
        ),
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            help="Log every public question's candidates, features and "
            "judgments to this JSONL file.",
        ),
    ] = None,
    sets: SetsOption = None,
    kind: KindOption = "lambdamart",
    code_kind: CodeKindOption = "linear",
    public_index: PublicIndexOption = None,
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds",
            min=0,
            max=50,
            help="With --cv topic: also refit the passage model with this many seeds and print "
            "each topic's out-of-topic hit@1/hit@3 spread (from the logged candidates): the "
            "noise a feature change must beat.",
        ),
    ] = 0,
    hand: Annotated[
        bool, typer.Option("--hand", help="Rank with the hand-weighted scorer (the baseline).")
    ] = False,
    index_dir: IndexDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Measure retrieval (hit@1/3/5, MRR@10, nDCG@10, code recall@3, answer-code@1, latency)
    and the code extractor (precision, recall); with --cv topic, the learned ranker out of
    topic."""
    settings = _settings(index_dir)
    if cv is not None or features is not None:
        _eval_public(settings, cv, features, sets, kind, code_kind, public_index, as_json, seeds)
        return
    if seeds:
        fail(InvalidInput("--seeds goes with --cv topic"))
    if not files:
        fail(InvalidInput("name question or extractor files, or use --cv topic / --features"))
    _eval_files(settings, files, corpus, hand, as_json)


def _eval_public(
    settings: Settings,
    cv: str | None,
    features: Path | None,
    sets_file: Path | None,
    kind: str,
    code_kind: str,
    where: Path | None,
    as_json: bool,
    seeds: int = 0,
) -> None:
    from index.train import (
        candidate_recall,
        cross_validate,
        log_features,
        seed_spread,
        write_feature_log,
    )

    try:
        if cv not in (None, "topic"):
            raise InvalidInput(f"--cv {cv!r}: the only cross-validation is by `topic`")
        _check_kinds(kind, code_kind)
        public, searcher = _public_searcher(settings, sets_file, where)
        questions = public.questions()
        logged = log_features(searcher, questions)
        result: dict[str, object] = {"candidate_recall": candidate_recall(logged)}
        if features is not None:
            result["feature_rows"] = write_feature_log(logged, features)
            result["feature_log"] = str(features)
        if cv is None and seeds:
            raise InvalidInput("--seeds goes with --cv topic")
        if cv is not None:
            rows = cross_validate(searcher, questions, kind, logged, code_kind)
            result["cv"] = [
                {"scorer": r.scorer, "topic": r.topic, "metrics": r.metrics} for r in rows
            ]
        if cv is not None and seeds:
            spread = seed_spread(logged, kind, range(1, seeds + 1))
            result["seeds"] = [
                {"topic": s.topic, "hit@1": list(s.hit1), "hit@3": list(s.hit3)} for s in spread
            ]
    except CptqaError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    out.print(
        f"candidate recall (a relevant passage among the candidates): "
        f"{result['candidate_recall']:.3f}",
        highlight=False,
    )
    if features is not None:
        out.print(f"logged {result['feature_rows']} rows to {features}", highlight=False)
    if cv is not None:
        _print_cv(rows)
    if cv is not None and seeds:
        _print_spread(spread, kind)


def _print_cv(rows) -> None:
    from rich.table import Table

    from index.train import METRICS

    by_topic = [r for r in rows if not r.topic.startswith("kind:")]
    by_kind = [r for r in rows if r.topic.startswith("kind:")]
    for title, first, chosen in (
        ("leave-one-topic-out (public sets, all texts indexed)", "topic", by_topic),
        ("by question kind, pooled over the topics", "kind", by_kind),
    ):
        if not chosen:
            continue
        table = Table(title=title)
        for column in ("scorer", first, "n", *METRICS, "first deleted"):
            table.add_column(column, justify="left" if column in ("scorer", first) else "right")
        for r in chosen:
            table.add_row(
                r.scorer,
                r.topic.removeprefix("kind:"),
                f"{r.metrics['questions']:.0f}",
                *(f"{r.metrics[m]:.3f}" for m in METRICS),
                f"{r.metrics.get('first_deleted', 0.0):.3f}",
            )
        out.print(table)


def _print_spread(spread, kind: str) -> None:
    from statistics import mean, pstdev

    from rich.table import Table

    table = Table(title=f"{kind} passages out of topic over {len(spread[0].hit1)} seeds")
    for column in ("topic", "hit@1 mean", "sd", "min-max", "hit@3 mean"):
        table.add_column(column, justify="left" if column == "topic" else "right")
    for s in spread:
        table.add_row(
            s.topic,
            f"{mean(s.hit1):.3f}",
            f"{pstdev(s.hit1):.3f}",
            f"{min(s.hit1):.3f}-{max(s.hit1):.3f}",
            f"{mean(s.hit3):.3f}",
        )
    # Each seed's mean over topics: how far the headline figure moves with the seed alone.
    means = [mean(values) for values in zip(*(s.hit1 for s in spread), strict=True)]
    table.add_row(
        "mean",
        f"{mean(means):.3f}",
        f"{pstdev(means):.3f}",
        f"{min(means):.3f}-{max(means):.3f}",
        f"{mean(mean(s.hit3) for s in spread):.3f}",
    )
    out.print(table)


def _eval_files(
    settings: Settings, files: list[Path], corpus: list[Path] | None, hand: bool, as_json: bool
) -> None:
    import tempfile

    from index import (
        Searcher,
        build_index,
        evaluate,
        evaluate_extractor,
        is_extractor_file,
        load_current,
        load_questions,
    )

    result: dict[str, object] = {}
    try:
        case_files = [p for p in files if is_extractor_file(p)]
        question_files = [p for p in files if p not in case_files]
        extractor = [evaluate_extractor(p) for p in case_files]
        report = None
        if question_files:
            service = Service(settings)
            loaded = [q for path in question_files for q in load_questions(path)]
            with tempfile.TemporaryDirectory(prefix="cptqa-eval-") as scratch:
                directory = settings.index_dir
                if corpus:
                    directory = Path(scratch)
                    build_index(
                        corpus,
                        directory,
                        service.passage_encoder,
                        model=settings.model,
                        encoder_cache=settings.cache_dir,
                    )
                snapshot = load_current(directory, settings.model)
                # Measured with the encoder that serves (CPTQA_ENCODER), as users get it.
                encoder = service.query_encoder(snapshot)
                searcher = Searcher(
                    snapshot, encoder, None if hand else "default", settings.current_year
                )
                report = evaluate(searcher, loaded)
    except CptqaError as exc:
        fail(exc)
    if as_json:
        if report is not None:
            result.update(_report_json(report))
        if extractor:
            result["extractor"] = [
                _extractor_json(p, r) for p, r in zip(case_files, extractor, strict=True)
            ]
        print(json.dumps(result, indent=2))
        return
    if report is not None:
        _print_report(report)
    for path, ext in zip(case_files, extractor, strict=True):
        _print_extractor(path, ext)


@app.command()
def train(
    sets: SetsOption = None,
    kind: KindOption = "lambdamart",
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Model file to write (default: the one cptqa ships)."),
    ] = None,
    code_kind: CodeKindOption = "linear",
    public_index: PublicIndexOption = None,
    index_dir: IndexDirOption = None,
) -> None:
    """Fit the ranking model on every public judged question and write the model file."""
    from index.scorer import save_model
    from index.search import DEFAULT_MODEL_PATH
    from index.train import fit_models, log_features, model_of

    settings = _settings(index_dir)
    target = out_file or DEFAULT_MODEL_PATH
    try:
        _check_kinds(kind, code_kind)
        public, searcher = _public_searcher(settings, sets, public_index)
        questions = public.questions()
        logged = log_features(searcher, questions)
        model = fit_models(searcher, questions, logged, kind, code_kind)
        model = model_of(model, logged, kind=kind, code_kind=code_kind)
        save_model(model, target)
    except CptqaError as exc:
        fail(exc)
    meta = model.meta or {}
    out.print(
        f"trained {kind} on {meta.get('trainable_questions')} of {meta.get('questions')} "
        f"questions ({', '.join(meta.get('topics', []))}); wrote {target}",
        highlight=False,
    )


def _extractor_json(path: Path, report) -> dict:
    return {
        "file": str(path),
        "precision": report.precision,
        "recall": report.recall,
        "cases": report.cases,
        "exact": report.exact,
        "false_positives": report.false_positives,
        "kinds": {kind: dict(vars(figures)) for kind, figures in report.kinds.items()},
        "misses": [{"text": t, "expected": e, "got": g} for t, e, g in report.misses],
    }


def _print_extractor(path: Path, report) -> None:
    out.print(
        f"[bold]code extractor[/] on {path}: precision {report.precision:.3f}, recall "
        f"{report.recall:.3f}, {report.exact}/{report.cases} cases exact, "
        f"{report.false_positives} false positives",
        highlight=False,
    )
    for kind, k in report.kinds.items():
        out.print(
            f"  {kind:<10} precision {k.precision:.3f}, recall {k.recall:.3f}, "
            f"{k.exact}/{k.cases} exact, {k.false_positives} false positives",
            highlight=False,
        )
    for text, expected, got in report.misses:
        out.print(f"  miss: {text!r}: expected {expected}, got {got}", highlight=False)


def _report_json(report) -> dict:
    return {
        "metrics": report.metrics,
        "kinds": report.kinds,
        "questions": [
            {
                "question": r.question.question,
                "gold_rank": r.gold_rank,
                "ndcg@10": round(r.ndcg, 4),
                "code_recall@3": r.code_recall,
                "answer_code": r.answer_code,
                "answer_code_right": r.answer_code_right,
                "first_status": r.first_status,
                "kind": r.question.kind or None,
                "took_ms": r.took_ms,
            }
            for r in report.results
        ],
    }


def _print_report(report) -> None:
    from rich.table import Table

    metrics = Table(title="cptqa eval")
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    for name, value in report.metrics.items():
        metrics.add_row(name, f"{value:.0f}" if name == "questions" else f"{value:.3f}")
    out.print(metrics)
    _print_kinds(report.kinds)
    misses = report.misses()
    if not misses:
        out.print("no misses")
        return
    table = Table(title=f"misses ({len(misses)})")
    for column in ("question", "gold rank", "answer code", "expected"):
        table.add_column(column)
    for r in misses:
        expected = ", ".join(r.question.codes + r.question.alt_codes) or "-"
        table.add_row(r.question.question, str(r.gold_rank or "-"), r.answer_code or "-", expected)
    out.print(table)


_KIND_METRICS = ("hit@1", "hit@3", "mrr@10", "answer_code@1", "first_deleted")


def _print_kinds(kinds: dict[str, dict[str, float]]) -> None:
    """The figures of each question kind (`kind` in the question file) on its own."""
    from rich.table import Table

    if not kinds:
        return
    table = Table(title="by question kind")
    for column in ("kind", "questions", *_KIND_METRICS):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind, figures in kinds.items():
        table.add_row(
            kind,
            f"{figures['questions']:.0f}",
            *(f"{figures[m]:.3f}" for m in _KIND_METRICS),
        )
    out.print(table)


def main() -> None:
    """Entry point of the `cptqa` console script."""
    app()


if __name__ == "__main__":
    main()
