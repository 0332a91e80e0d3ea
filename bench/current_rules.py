"""Current rules on the public sets: leave-one-topic-out figures by question kind, with the
current-rules step (index/current.py) and without it.

Indexes every public text together (tests/data/public_sets.json), fits the shipped kinds of
model (LambdaMART passages, linear codes) on every topic but one, evaluates the held-out topic,
and pools the held-out questions: the figures of each question `kind` (`dated`,
`named_code_check`, ...) and the share of answers whose first code is deleted, once with the
rule and once with it switched off.

    python bench/current_rules.py [--work DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import DEFAULT_MODEL, Searcher, build_index, evaluate, load_current  # noqa: E402
from index.encoder import OnnxEncoder, ensure_export  # noqa: E402
from index.evaluate import QuestionResult, figures_by_kind  # noqa: E402
from index.train import fit_models, load_public_sets, log_features  # noqa: E402

SETS = ROOT / "tests" / "data" / "public_sets.json"
SHOWN = ("dated", "named_code_check", "which_code")
METRICS = ("questions", "hit@1", "hit@3", "answer_code@1", "first_deleted")


def held_out(searcher: Searcher, rule: bool) -> list[QuestionResult]:
    """Every public question, each judged by a model fitted on the other topics."""
    questions = load_public_sets(SETS).questions()
    logged = log_features(searcher, questions)
    results: list[QuestionResult] = []
    for topic, items in questions.items():
        rest = {t: qs for t, qs in questions.items() if t != topic}
        others = [q for q in logged if q.topic != topic]
        model = fit_models(searcher, rest, others, "lambdamart", "linear")
        judged = Searcher(searcher.snapshot, searcher.embedder, model)
        if not rule:
            judged.rules.current_first = lambda codes, year: codes  # type: ignore[method-assign]
        results += evaluate(judged, items).results
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / ".cptqa" / "bench-current")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sets = load_public_sets(SETS)
    encoder = OnnxEncoder(ensure_export(DEFAULT_MODEL), "fp32")
    build_index(list(sets.corpora), args.work, lambda: encoder, model=DEFAULT_MODEL)
    base = Searcher(load_current(args.work, DEFAULT_MODEL), encoder, None)
    figures = {}
    for rule in (True, False):
        results = held_out(base, rule)
        figures["with the rule" if rule else "without"] = {
            "all": figures_by_kind([_all(r) for r in results])["all"],
            **figures_by_kind(results),
        }
    print("| questions | current-rules step | " + " | ".join(METRICS[1:]) + " |")
    print("|---|---|" + "---|" * (len(METRICS) - 1))
    for kind in ("all", *SHOWN):
        for label, by_kind in figures.items():
            f = by_kind[kind]
            cells = " | ".join(f"{f[m]:.3f}" for m in METRICS[1:])
            print(f"| {kind} ({f['questions']:.0f}) | {label} | {cells} |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


def _all(result: QuestionResult) -> QuestionResult:
    """The result under the kind "all", to pool every question through the same figures."""
    from dataclasses import replace

    return replace(result, question=replace(result.question, kind="all"))


if __name__ == "__main__":
    main()
