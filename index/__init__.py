"""index: chunks -> embeddings + lexical index -> a persisted snapshot; hybrid search."""

from index.answer import AnswerCode, Evidence, rank_answer_codes
from index.build import BuildReport, build_index
from index.current import CurrentRules
from index.embed import DEFAULT_MODEL, Embedder, ModelUnavailable, resolve_model_path
from index.evaluate import (
    EvalReport,
    ExtractorReport,
    Question,
    QuestionResult,
    evaluate,
    evaluate_extractor,
    is_extractor_file,
    load_questions,
)
from index.results import CodeLookup, Explanation, FeatureExplanation, Hit, SearchResult
from index.search import Searcher
from index.snapshot import (
    FORMAT_VERSION,
    IndexBusy,
    IndexUnwritable,
    Snapshot,
    current_snapshot_id,
    load_current,
    load_snapshot,
)

__all__ = [
    "DEFAULT_MODEL",
    "FORMAT_VERSION",
    "AnswerCode",
    "BuildReport",
    "CodeLookup",
    "CurrentRules",
    "Embedder",
    "EvalReport",
    "ExtractorReport",
    "Evidence",
    "Explanation",
    "FeatureExplanation",
    "Hit",
    "IndexBusy",
    "IndexUnwritable",
    "ModelUnavailable",
    "Question",
    "QuestionResult",
    "SearchResult",
    "Searcher",
    "Snapshot",
    "build_index",
    "current_snapshot_id",
    "evaluate",
    "evaluate_extractor",
    "is_extractor_file",
    "load_current",
    "load_questions",
    "load_snapshot",
    "rank_answer_codes",
    "resolve_model_path",
]
