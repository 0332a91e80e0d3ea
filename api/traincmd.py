"""`cptqa train`: fitting the shipped ranking model on every public judged question; and the
public sets' own index, which `cptqa eval --cv topic` and `--features` read too."""

from __future__ import annotations

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
