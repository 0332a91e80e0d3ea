"""What `cptqa eval` prints: the retrieval report with its misses and question kinds, the
extractor's figures, the cross-validation and seed-spread tables, and their JSON forms."""

from __future__ import annotations

from pathlib import Path

from api.clicommon import out


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
