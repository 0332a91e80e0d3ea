"""`cptqa eval`: judging retrieval and the extractor on question and case files, and
leave-one-topic-out cross-validation over the public sets.

`cptqa train` and the public sets' index are in api/traincmd.py, the printed and JSON reports
in api/evalreport.py; `train` stays importable from here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from api.clicommon import IndexDirOption, fail, out
from api.clicommon import load_settings as _settings
from api.evalreport import (
    _extractor_json,
    _print_cv,
    _print_extractor,
    _print_report,
    _print_spread,
    _report_json,
)
from api.service import Service
from api.settings import Settings
from api.traincmd import (
    CodeKindOption,
    KindOption,
    PublicIndexOption,
    SetsOption,
    _check_kinds,
    _public_searcher,
    train,
)
from ingest import CptqaError, InvalidInput

__all__ = ["eval_", "train"]


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
