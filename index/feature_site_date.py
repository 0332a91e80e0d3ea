"""The passage ranker's features about where and when: the needle site and imaging modality
a passage names, and how old a passage is beside the corpus, the pool and the question's date.

Registered, with the others, in index/features.py.
"""

from __future__ import annotations

import numpy as np

from index.feature_context import FeatureContext, _modalities
from index.lexicon import SITE_NON_SPINAL, SITE_SPINAL


def _site(ctx: FeatureContext, agree: bool) -> np.ndarray:
    """The passage assigns guidance to the question's kind of needle site (agree) or only to
    the other kind (CODING_FACTS.md §3); 0 when the question names no site."""
    site = ctx.question.site
    if site is None:
        return np.zeros(len(ctx), dtype=np.float32)
    flags = ctx.signal("site_flags").astype(np.int64)
    own = SITE_NON_SPINAL if site == "non-spinal" else SITE_SPINAL
    other = SITE_SPINAL if site == "non-spinal" else SITE_NON_SPINAL
    if agree:
        return ((flags & own) > 0).astype(np.float32)
    return (((flags & other) > 0) & ((flags & own) == 0)).astype(np.float32)


def _modality(ctx: FeatureContext, agree: bool) -> np.ndarray:
    """The passage names the question's imaging modality (agree), or names only others."""
    asked = ctx.question.modalities
    if not asked:
        return np.zeros(len(ctx), dtype=np.float32)
    found = [_modalities(c.text) for c in ctx.chunks]
    if agree:
        return np.asarray([bool(asked & f) for f in found], dtype=np.float32)
    return np.asarray([bool(f) and not (asked & f) for f in found], dtype=np.float32)


def _years(ctx: FeatureContext) -> np.ndarray:
    return ctx.signal("doc_year")


def _age(ctx: FeatureContext) -> np.ndarray:
    """Years between the passage's date and the corpus's newest, in decades, 0..2; 0 when
    unknown. Coding advice goes out of date (CODING_FACTS.md §4, §7)."""
    years = _years(ctx)
    if not ctx.current_year:
        return np.zeros(len(ctx), dtype=np.float32)
    age = np.clip((ctx.current_year - years) / 10.0, 0.0, 2.0)
    return np.where(years > 0, age, 0.0).astype(np.float32)


def _newer_than_pool(ctx: FeatureContext) -> np.ndarray:
    """The passage's year minus the median dated candidate's, in decades, -2..2; 0 when
    unknown: among texts on the same subject, the newer one states the current rule."""
    years = _years(ctx)
    known = years[years > 0]
    if not len(known):
        return np.zeros(len(ctx), dtype=np.float32)
    delta = np.clip((years - float(np.median(known))) / 10.0, -2.0, 2.0)
    return np.where(years > 0, delta, 0.0).astype(np.float32)


def _question_year_gap(ctx: FeatureContext) -> np.ndarray:
    """For a question about a past date of service ("a 2019 claim"), how far the passage's
    year is from it, in decades, 0..2 (0 when either is unknown)."""
    asked = ctx.question.years
    years = _years(ctx)
    if not asked:
        return np.zeros(len(ctx), dtype=np.float32)
    gap = np.clip(np.abs(years - max(asked)) / 10.0, 0.0, 2.0)
    return np.where(years > 0, gap, 0.0).astype(np.float32)
