"""`cptqa eval` and `cptqa train`: judging retrieval and the extractor, leave-one-topic-out
cross-validation over the public sets, and fitting the shipped ranking model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from api.clicommon import IndexDirOption, fail, out
from api.clicommon import load_settings as _settings
from api.service import Service
from api.settings import Settings
from ingest import CptqaError, IndexIncompatible, InvalidInput

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
