"""Scorers: a model over the feature table (index/features.py), stored as data, that explains.

Two implementations of one protocol, as in Solr's LTR plugin (`LinearModel`,
`MultipleAdditiveTreesModel`):
- `LinearScorer`: standardised features times weights, fitted as a pairwise logistic model
  (RankNet's loss on a linear function); the model file is plain JSON.
- `TreeScorer`: a LambdaMART ensemble (LightGBM's `lambdarank`), stored in LightGBM's own text
  format inside the JSON file; contributions are LightGBM's SHAP values (`pred_contrib`).

A model file records its feature names and FEATURE_VERSION: a file trained on other features is
refused with a message that says to run `cptqa train`, never used with the wrong columns.
No pickle: JSON and LightGBM's text format only.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ingest import IndexIncompatible

MODEL_FORMAT = 1


class Scorer(Protocol):
    """Scores the candidates of one question from their feature table."""

    kind: str
    features: tuple[str, ...]

    def score(self, table: np.ndarray) -> np.ndarray: ...

    def contributions(self, table: np.ndarray) -> tuple[np.ndarray, float]:
        """(candidates x features) contributions and the base value; each row sums, with the
        base, to that candidate's score."""
        ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LinearScorer:
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float = 0.0
    kind: str = "linear"

    def score(self, table: np.ndarray) -> np.ndarray:
        return ((table - self.mean) / self.scale) @ self.weights + self.bias

    def contributions(self, table: np.ndarray) -> tuple[np.ndarray, float]:
        return ((table - self.mean) / self.scale) * self.weights, self.bias

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinearScorer:
        return cls(
            tuple(data["features"]),
            np.asarray(data["mean"], dtype=np.float64),
            np.asarray(data["scale"], dtype=np.float64),
            np.asarray(data["weights"], dtype=np.float64),
            float(data.get("bias", 0.0)),
        )


class TreeScorer:
    """A LightGBM ranking ensemble (imported only when a tree model is loaded)."""

    kind = "lambdamart"

    def __init__(self, features: tuple[str, ...], model_text: str) -> None:
        import lightgbm

        self.features = features
        self.model_text = model_text
        self._booster = lightgbm.Booster(model_str=model_text)

    def score(self, table: np.ndarray) -> np.ndarray:
        if not len(table):
            return np.zeros(0)
        return np.asarray(self._booster.predict(table, num_threads=1), dtype=np.float64)

    def contributions(self, table: np.ndarray) -> tuple[np.ndarray, float]:
        raw = np.asarray(self._booster.predict(table, pred_contrib=True, num_threads=1))
        base = float(raw[0, -1]) if len(raw) else 0.0
        return raw[:, :-1], base

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "features": list(self.features), "model": self.model_text}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TreeScorer:
        return cls(tuple(data["features"]), str(data["model"]))


def scorer_from_json(data: dict[str, Any]) -> Scorer:
    kind = data.get("kind")
    if kind == "linear":
        return LinearScorer.from_json(data)
    if kind == "lambdamart":
        return TreeScorer.from_json(data)
    raise IndexIncompatible(f"unknown ranking model kind {kind!r}: run `cptqa train`")


@dataclass(frozen=True)
class RankingModel:
    """The models cptqa ranks with: passages, and (optionally) answer codes."""

    passages: Scorer
    codes: Scorer | None = None
    meta: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "passages": self.passages.to_json(),
            "codes": self.codes.to_json() if self.codes else None,
            "meta": self.meta or {},
        }


def load_model(
    path: Path,
    passage_features: tuple[str, ...],
    code_features: tuple[str, ...] | None = None,
) -> RankingModel:
    """Read a model file; `IndexIncompatible` when it was trained on other features."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexIncompatible(f"cannot read the ranking model {path}: {exc}") from exc
    if data.get("format") != MODEL_FORMAT:
        raise IndexIncompatible(
            f"ranking model {path} has format {data.get('format')!r}, this cptqa reads "
            f"{MODEL_FORMAT}: run `cptqa train`"
        )
    passages = scorer_from_json(data["passages"])
    _check_features(path, "passage", passages.features, passage_features)
    codes = scorer_from_json(data["codes"]) if data.get("codes") else None
    if codes is not None and code_features is not None:
        _check_features(path, "code", codes.features, code_features)
    return RankingModel(passages, codes, data.get("meta") or {})


def _check_features(path: Path, what: str, got: tuple[str, ...], want: tuple[str, ...]) -> None:
    if tuple(got) != tuple(want):
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        raise IndexIncompatible(
            f"ranking model {path} was trained on other {what} features (missing {missing}, "
            f"unknown {extra}): run `cptqa train`"
        )


def save_model(model: RankingModel, path: Path) -> None:
    """Write the model file atomically (a temporary file, fsync, one rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(model.to_json(), indent=1)
    fd, tmp = tempfile.mkstemp(prefix=".model-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a model file is shipped data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
