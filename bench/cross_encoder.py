"""A cross-encoder reranker fine-tuned from the packaged MiniLM weights, out of topic.

The experiment of the learned-ranker work: does a model that reads the question and the
passage together beat the learned feature model (LambdaMART) on texts it was not trained on?
For each public topic in turn (tests/data/public_sets.json, every text indexed together):

1. the LambdaMART passage model is fitted on the other four topics' logged candidates, as
   `cptqa eval --cv topic` fits it;
2. a cross-encoder is made from the packaged all-MiniLM-L6-v2 weights (the same network, with
   a fresh one-output head on its [CLS] state) and fine-tuned on the other four topics: each
   question's relevant candidates against its hardest irrelevant ones (the top of the
   LambdaMART ranking), a listwise loss over each group;
3. on the held-out topic, the top `--topk` candidates of LambdaMART are reordered by the
   cross-encoder alone, and by the sum of both scores standardised within the question.

It prints hit@1 and hit@3 per topic and the means, judged on the logged candidates as
`cptqa eval --cv topic --seeds` judges them, and the cross-encoder's forward time for the top
`--topk` passages of a question (one thread, as a query gets when others overlap). Nothing
here is shipped: the search does not use a cross-encoder (README, "Ranking").

    python bench/cross_encoder.py [--topk 10] [--epochs 2] [--group 8] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index import DEFAULT_MODEL, Searcher, build_index, load_current  # noqa: E402
from index.embed import resolve_model_path  # noqa: E402
from index.encoder import OnnxEncoder, ensure_export  # noqa: E402
from index.train import LoggedQuestion, fit_lambdamart, load_public_sets, log_features  # noqa: E402

SETS = ROOT / "tests" / "data" / "public_sets.json"


def _hits(order_labels: list[np.ndarray]) -> tuple[float, float]:
    """hit@1 and hit@3 over questions, each given as its labels in ranked order."""
    first = statistics.mean(float(len(x) > 0 and x[0] > 0) for x in order_labels)
    third = statistics.mean(float((x[:3] > 0).any()) for x in order_labels)
    return first, third


def _standard(values: np.ndarray) -> np.ndarray:
    sd = float(values.std())
    return (values - values.mean()) / (sd if sd > 1e-6 else 1.0)


class CrossEncoder:
    """The packaged MiniLM with a one-output head, read as (question, passage) pairs."""

    def __init__(self, seed: int, max_length: int) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()  # "some weights were newly initialised"
        transformers_logging.disable_progress_bar()
        torch.manual_seed(seed)
        path = resolve_model_path(DEFAULT_MODEL)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1)
        self.max_length = max_length

    def logits(self, question: str, passages: list[str]):  # type: ignore[no-untyped-def]
        batch = self.tokenizer(
            [question] * len(passages),
            passages,
            truncation="only_second",
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )
        return self.model(**batch).logits.squeeze(-1)

    def fit(
        self, groups: list[tuple[str, list[str], np.ndarray]], epochs: int, lr: float, seed: int
    ) -> None:
        import torch

        optimiser = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=0.01)
        steps = epochs * len(groups)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: min(1.0, (step + 1) / (0.1 * steps)) * (1 - step / steps)
        )
        rng = random.Random(seed)
        self.model.train()
        for _ in range(epochs):
            order = list(range(len(groups)))
            rng.shuffle(order)
            for i in order:
                question, passages, labels = groups[i]
                target = torch.tensor(labels / labels.sum(), dtype=torch.float32)
                logits = self.logits(question, passages)
                loss = -(target * torch.log_softmax(logits, dim=0)).sum()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
        self.model.eval()

    def score(self, question: str, passages: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.logits(question, passages).numpy().astype(np.float64)


def _groups(
    logged: list[LoggedQuestion], scores: list[np.ndarray], text: dict[str, str], size: int
) -> list[tuple[str, list[str], np.ndarray]]:
    """Per training question with both kinds of candidate: up to 2 relevant candidates and the
    highest-ranked irrelevant ones, `size` in all."""
    groups = []
    for q, s in zip(logged, scores, strict=True):
        positive = [i for i in np.argsort(-s) if q.labels[i] > 0][:2]
        negative = [i for i in np.argsort(-s) if q.labels[i] == 0][: size - len(positive)]
        if not positive or not negative:
            continue
        chosen = positive + negative
        groups.append(
            (
                q.question.question,
                [text[q.chunk_ids[i]] for i in chosen],
                np.asarray([float(q.labels[i] > 0) for i in chosen]),
            )
        )
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topk", type=int, default=10, help="candidates the reranker reorders")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--group", type=int, default=8, help="candidates a training group")
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / ".cptqa" / "public")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    sets = load_public_sets(SETS)
    encoder = OnnxEncoder(ensure_export(DEFAULT_MODEL), "fp32")
    build_index(sets.corpora, args.work, lambda: encoder, model=DEFAULT_MODEL)
    snapshot = load_current(args.work, DEFAULT_MODEL)
    text = {c.id: c.text for c in snapshot.store.chunks}
    logged = log_features(Searcher(snapshot, encoder, None), sets.questions())
    rows: dict[str, dict[str, tuple[float, float]]] = {}
    forward_ms: list[float] = []
    for topic in dict.fromkeys(q.topic for q in logged):
        train = [q for q in logged if q.topic != topic]
        test = [q for q in logged if q.topic == topic]
        ranker = fit_lambdamart(train)
        started = time.perf_counter()
        cross = CrossEncoder(args.seed, args.max_length)
        cross.fit(
            _groups(train, [ranker.score(q.table) for q in train], text, args.group),
            args.epochs,
            args.lr,
            args.seed,
        )
        trained_s = time.perf_counter() - started
        found: dict[str, list[np.ndarray]] = {"lambdamart": [], "cross": [], "sum": []}
        for q in test:
            scores = ranker.score(q.table)
            order = np.lexsort((np.arange(len(scores)), -scores))
            top = order[: args.topk]
            torch.set_num_threads(1)
            began = time.perf_counter()
            ce = cross.score(q.question.question, [text[q.chunk_ids[i]] for i in top])
            forward_ms.append((time.perf_counter() - began) * 1000.0)
            torch.set_num_threads(2)
            blend = _standard(scores[top]) + _standard(ce)
            found["lambdamart"].append(q.labels[order])
            for name, values in (("cross", ce), ("sum", blend)):
                reordered = top[np.lexsort((np.arange(len(values)), -values))]
                found[name].append(
                    np.concatenate([q.labels[reordered], q.labels[order[args.topk :]]])
                )
        rows[topic] = {name: _hits(labels) for name, labels in found.items()}
        print(
            f"{topic:8s} trained in {trained_s:.0f} s  "
            + "  ".join(f"{n} {h1:.3f}/{h3:.3f}" for n, (h1, h3) in rows[topic].items()),
            flush=True,
        )
    means = {
        name: tuple(statistics.mean(rows[t][name][k] for t in rows) for k in (0, 1))
        for name in ("lambdamart", "cross", "sum")
    }
    ordered = sorted(forward_ms)
    p50, p95 = statistics.median(ordered), ordered[max(0, int(0.95 * len(ordered)) - 1)]
    print(f"{len(text)} chunks; {platform.processor() or platform.machine()}")
    for name, (h1, h3) in means.items():
        print(f"mean out of topic, {name:10s}: hit@1 {h1:.3f}  hit@3 {h3:.3f}")
    print(f"cross-encoder forward, top {args.topk}, one thread: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    out = ROOT / "bench" / "results-cross-encoder.json"
    out.write_text(
        json.dumps(
            {
                "args": {k: str(v) for k, v in vars(args).items()},
                "topics": rows,
                "mean": means,
                "forward_ms": {"p50": p50, "p95": p95},
            },
            indent=2,
        ),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
