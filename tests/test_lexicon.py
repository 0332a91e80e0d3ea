"""Coder language: the lexicon applied to questions, spelling tolerance, the lexical tokens."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from index.lexical import LexicalIndex, tokenize, tokenize_query
from index.lexicon import asked_kind, expand_question, question_site, stated_site


@pytest.mark.parametrize(
    ("question", "added"),
    [
        ("LP under fluoro", "lumbar puncture"),
        ("caudal ESI w/ flouro", "epidural steroid injection"),
        ("GON blk", "greater occipital nerve injection"),
        ("TPI 3 muscles w/ US guidance", "ultrasound"),
        ("SI jt injection", "sacroiliac joint"),
        ("bilat supraorbital", "bilateral"),
    ],
)
def test_coder_terms_gain_the_reference_wording(question: str, added: str) -> None:
    assert added in expand_question(question).text


def test_short_upper_case_forms_match_only_in_upper_case() -> None:
    assert "ultrasound" not in expand_question("can us bill this").text
    assert "lumbar puncture" not in expand_question("help me").text
    assert "intrathecal" not in expand_question("is it bundled").text


def test_the_question_keeps_its_own_words() -> None:
    expanded = expand_question("which fluoro code for occipital nerve block")
    assert expanded.text.startswith("which fluoro code for occipital nerve block")


def test_site_class_is_added_only_for_guidance_questions() -> None:
    assert "non-spinal" in expand_question("fluoro for a knee injection").added
    assert "spinal paraspinous" in expand_question("fluoro for a facet injection").added
    assert "non-spinal" not in expand_question("knee injection units").added


def test_sites_of_questions_and_of_reference_text() -> None:
    assert question_site("fluoro code for occipital nerve block") == "non-spinal"
    assert question_site("guidance for an epidural") == "spinal"
    assert question_site("what is fluoroscopy") is None
    assert stated_site("for needle placement for non-spinal procedures") == "non-spinal"
    assert stated_site("for spine or paraspinous injection procedures") == "spinal"


def test_negated_words_are_one_token_and_codes_stay_whole() -> None:
    assert "nonspin" in tokenize("non-spinal procedures")
    assert "spinal" not in tokenize("non-spinal procedures")
    assert "77003" in tokenize("77003-26") and "0216t" in tokenize("0216T")
    assert "code" not in tokenize_query("which code for 77002")


def test_misspelled_words_find_the_corpus_word() -> None:
    index = LexicalIndex.build(
        ["Fluoroscopic guidance for the myelogram", "Supraorbital nerve injection 64400"]
    )
    assert index.spelled(tokenize_query("flouroscopic")[0]) == tokenize("fluoroscopic")[0]
    assert index.spelled("myleogram") == "myelogram"
    assert index.spelled("zzzzzzzz") == "zzzzzzzz"  # nothing close: left as is
    assert index.scores("supraorbitol injection").argmax() == 1


def test_site_agreement_of_a_passage_with_the_question() -> None:
    from index.lexicon import site_agreement

    assert site_agreement("non-spinal", "needle placement for non-spinal procedures") == 1.0
    assert site_agreement("non-spinal", "for spine or paraspinous injections") == 0.0
    assert site_agreement("spinal", "for spine or paraspinous injections") == 1.0
    assert site_agreement("spinal", "77002 is non-spinal and 77003 is for the spine") == 0.5
    assert site_agreement("spinal", "fluoroscopy is an x-ray procedure") == 0.5


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("which fluoro code for occipital nerve block", "fluoro"),
        ("fluoroscopic guidance code for an epidural", "fluoroscopic guidance"),
        ("three levels, add on code?", "add on"),
        ("62311 deleted, what's the replacement code", None),
        ("staghorn stone code", None),
        ("SI joint injection billed by the ASC, which code", None),
    ],
)
def test_the_kind_of_code_a_question_asks_for(question: str, kind: str | None) -> None:
    assert asked_kind(question) == kind


def test_a_loaded_lexical_index_scores_as_built_from_plain_arrays(tmp_path: Path) -> None:
    texts = [
        "Fluoroscopic guidance for needle placement 77002",
        "Fluoroscopic guidance for spine injections 77003",
        "Ultrasound guidance 76942 for needle placement",
    ]
    built = LexicalIndex.build(texts)
    built.save(tmp_path / "lexical")
    loaded = LexicalIndex.load(tmp_path / "lexical")
    arrays = [v for v in loaded._retriever.scores.values() if isinstance(v, np.ndarray)]
    assert len(arrays) == 3 and not any(isinstance(v, np.memmap) for v in arrays)
    question = "needle guidance for fluoroscopic placement"
    assert np.array_equal(loaded.scores(question), built.scores(question))
    query = loaded.query(question)
    # postings: chunks holding each word, a word asked twice counted twice
    words = set(tokenize_query(question))
    assert query.postings == sum(sum(w in tokenize(t) for t in texts) for w in words)
    assert loaded.query("needle needle").postings == 2 * loaded.query("needle").postings
    assert loaded.query("which code").postings == 0


def test_the_lexical_index_files_do_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    """The vocabulary is sorted, so the same texts give the same index files in any process."""
    import subprocess
    import sys

    script = (
        "import sys, hashlib; from pathlib import Path; from index.lexical import LexicalIndex\n"
        "texts = ['epidural under fluoroscopy 62323', 'facet joint 64493 lumbar', "
        "'genicular nerve block 64454', 'ultrasound guidance 76942 knee']\n"
        "out = Path(sys.argv[1]); LexicalIndex.build(texts).save(out)\n"
        "print(''.join(hashlib.md5(f.read_bytes()).hexdigest() for f in sorted(out.iterdir())))\n"
    )
    digests = set()
    for seed in ("1", "2", "3"):
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / seed)],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        digests.add(done.stdout.strip())
    assert len(digests) == 1
