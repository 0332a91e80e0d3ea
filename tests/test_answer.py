"""The answer's codes: how roles, the question's own codes and descriptors rank them.

Passages here are short texts in our own words, scored by words alone (no sentence vectors),
so each test shows one rule of `index.answer` at work.
"""

from __future__ import annotations

import pytest

from index import rank_answer_codes
from ingest import Chunk, extract_codes


def passage(text: str, name: str = "p") -> Chunk:
    return Chunk(f"{name}#0", name, 0, len(text), text, tuple(extract_codes(text)))


def first_code(question: str, *texts: str, named: frozenset[str] = frozenset()) -> str:
    chunks = [passage(t, f"p{i}") for i, t in enumerate(texts)]
    return rank_answer_codes(question, chunks, question_codes=named)[0].code


def test_a_code_the_question_names_but_the_answer_calls_bundled_is_not_the_answer() -> None:
    text = (
        "Lithotripsy with a stent left in is 52356. Stone removal without fragmentation "
        "(52352) on the same ureter is bundled, and a modifier does not change that."
    )
    question = "can I add 52352 to a ureteroscopic lithotripsy with stent"
    assert first_code(question, text, named=frozenset({"52352"})) == "52356"


def test_the_replacement_comes_before_the_deleted_code_the_question_names() -> None:
    text = (
        "Since 2017 the old epidural codes are gone: 62311 (lumbar, single) became 62322 "
        "without imaging or 62323 with imaging; 62310 became 62320 or 62321."
    )
    question = "62311 was deleted, what replaced it"
    assert first_code(question, text, named=frozenset({"62311"})) in {"62322", "62323"}


def test_a_child_descriptor_answers_a_question_about_its_qualifier() -> None:
    text = (
        "62270 Spinal puncture, lumbar, diagnostic. 62328 with fluoroscopic or CT guidance.\n"
        "62272 Spinal puncture, therapeutic, for drainage of fluid. 62329 with fluoroscopic "
        "or CT guidance."
    )
    assert first_code("lumbar puncture done under CT guidance", text) == "62328"
    assert first_code("diagnostic lumbar puncture code", text) == "62270"


def test_the_statement_that_matches_the_question_gives_the_passages_verdict() -> None:
    text = (
        "Medicare ASC claims do not recognize 27096. The facility reports G0260 for the "
        "injection, while the physician still reports 27096 on the professional claim."
    )
    assert first_code("SI joint injection on a Medicare ASC claim, which code", text) == "G0260"


def test_a_code_judged_not_appropriate_loses_to_the_one_to_use() -> None:
    text = (
        "For a transnasal device the published answer was that 64505 is not appropriate and "
        "the unlisted code 64999 should be used."
    )
    assert first_code("transnasal sphenopalatine block with a device", text) == "64999"


def test_words_said_of_a_list_of_codes_hold_for_each_code_in_it() -> None:
    text = (
        "With ultrasound the facet codes are Category III: 0213T, 0214T and 0215T for the "
        "cervical or thoracic spine, and 0216T, 0217T and 0218T for the lumbar or sacral spine."
    )
    assert first_code("ultrasound guided lumbar facet injection, one level", text) == "0216T"


def test_a_code_written_out_beats_a_range_that_only_spans_it() -> None:
    text = (
        "Code the puncture as 62284 and the CT by region: 72126 neck, 72132 lumbar. When "
        "plain myelogram films and a CT are both made, report the 62302-62305 code for the "
        "myelogram plus the CT code."
    )
    assert first_code("lumbar CT myelogram only", text) in {
        "62284",
        "72132",
    }


def test_a_labelled_question_left_unanswered_asks_with_all_its_sentences() -> None:
    from index.signals import question_share

    unanswered = "Question: We blocked three intercostal levels. No imaging. What do we report?"
    assert question_share(unanswered) == 1.0
    answered = "Q: Is fluoroscopy separate? A: No, it is part of the procedure code."
    assert question_share(answered) < 0.5
    assert question_share("Answer: Report 64420 once and the add-on for each level.") == 0.0


def test_the_code_of_the_kind_asked_for_wins_over_codes_of_the_case() -> None:
    first = (
        "The lesser occipital nerve is another peripheral nerve (64450). A third occipital "
        "nerve block is a facet nerve block: 64490 under fluoroscopy, or 0213T when the facet "
        "injection is guided by ultrasound."
    )
    second = "For an occipital nerve block done under fluoroscopy, report 77002 for the guidance."
    assert first_code("which fluoro code for occipital nerve block", first, second) == "77002"


def test_a_range_member_is_findable_but_no_answer_code() -> None:
    """CODING_FACTS.md §2: "64479-64484" gives 64481 and 64482, which do not exist."""
    text = "Transforaminal codes 64479-64484 include imaging, so 77003 is not added."
    chunk = passage(text)
    assert {"64481", "64482"} <= {m.code for m in chunk.codes}  # findable: the passage cites them
    answer = {c.code for c in rank_answer_codes("transforaminal epidural code", [chunk])}
    assert {"64479", "64484"} <= answer
    assert not answer & {"64480", "64481", "64482", "64483"}


def test_a_range_member_the_corpus_writes_on_its_own_can_be_an_answer() -> None:
    from index.answer import rank_answer

    chunk = passage("Transforaminal codes 64479-64484 include imaging.")
    codes, _ = rank_answer("lumbar transforaminal", [chunk], written_codes=frozenset({"64483"}))
    assert "64483" in {c.code for c in codes}
    assert "64481" not in {c.code for c in codes}
    elsewhere = passage("Report 64483 for one lumbar level.", "q")
    assert "64483" in {c.code for c in rank_answer_codes("lumbar level", [chunk, elsewhere])}


def test_the_ends_of_a_section_range_are_no_answer_codes() -> None:
    text = "Radiology (CPT codes 70000 - 79999) needs prior authorization; 77002 does not."
    answer = [c.code for c in rank_answer_codes("prior authorization radiology", [passage(text)])]
    assert answer == ["77002"]


@pytest.mark.parametrize(
    ("text", "down", "kept"),
    [
        ("0230T for a TFESI under fluoro: use 64483.", {"0230T"}, {"64483"}),
        (
            "Transforaminal codes include guidance, so 77003 (or 77012) is never billed with them.",
            {"77003"},
            set(),
        ),
        (
            "The pudendal nerve has its own code, 64430, so 64450 (other peripheral nerve) is "
            "the wrong code.",
            {"64450"},
            {"64430"},
        ),
        ("Stop using 64450 and 64640 for the knee.", {"64450", "64640"}, set()),
        ("A lumbar myelogram is now 62304, not 62284 + 72265.", {"62284", "72265"}, {"62304"}),
        ("The lidocaine mixed in does not make it 27095.", {"27095"}, set()),
        ("Take 77003 off the ticket.", {"77003"}, set()),
        ("Take 64483 for one lumbar level.", set(), {"64483"}),
        (
            "95990 and 95991 are not reimbursed with 62369 on one date.",
            {"95990", "95991"},
            {"62369"},
        ),
        ("So 77002 and 76942 do not go with them anymore.", {"77002", "76942"}, set()),
        (
            "Interscalene single shot: 64415 + 76942 when ultrasound is used.",
            set(),
            {"64415", "76942"},
        ),
    ],
)  # fmt: skip
def test_verdicts_beyond_the_extractor_roles_turn_a_code_down(
    text: str, down: set[str], kept: set[str]
) -> None:
    from index.verdicts import turned_down

    chunk = passage(text)
    verdicts = {m.code: turned_down(chunk, m) for m in chunk.codes}
    assert {c for c in down | kept if verdicts[c]} == down


def test_the_code_a_sentence_points_to_instead_of_the_named_one_is_marked() -> None:
    from index.answer import CodeStats, rank_answer

    text = (
        "0230T for a TFESI under fluoro: use 64483. The ultrasound-guided TFESI codes are "
        "0228T and 0230T."
    )
    stats: dict[str, CodeStats] = {}
    rank_answer("0230T for a TFESI under fluoro?", [passage(text)], None, frozenset({"0230T"}),
                stats=stats)  # fmt: skip
    assert stats["0230T"].rejected and not stats["0230T"].pointed_sentence
    assert stats["64483"].pointed_sentence and stats["64483"].pointed_passage
    assert stats["0228T"].pointed_passage and not stats["0228T"].pointed_sentence


def test_a_passage_edited_in_place_is_read_afresh() -> None:
    """What a passage says of a code is cached by passage; an edited document's passage with
    the same id and offsets (and so the same mention offsets) is read again, not served from
    the cache."""
    from index.answer import _verdict
    from index.answer_clauses import Sentence, _own_tokens, _stated_site, _words_near

    before = passage("So 77003 is never billed with the occipital block.")
    after = passage("So 77003 is always billed with the lumbar epidurals.")
    assert (before.id, before.start) == (after.id, after.start)
    (old,), (new,) = before.codes, after.codes
    assert (old.start, old.end) == (new.start, new.end)
    whole_before = Sentence(before.start, before.end)
    whole_after = Sentence(after.start, after.end)
    assert _verdict(before, old) == "excluded"
    assert _verdict(after, new) != "excluded"
    assert "occipit" in " ".join(_words_near(before, old, whole_before))
    assert "lumbar" in " ".join(_words_near(after, new, whole_after))
    assert _stated_site(before, old, whole_before) != _stated_site(after, new, whole_after)
    assert _own_tokens(before, old, whole_before) != _own_tokens(after, new, whole_after)
