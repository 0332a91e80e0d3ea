"""The code history (the shipped table and what texts state), passage dates and the date of
service a question names: the building blocks of the current rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest import InvalidInput, chunk_document
from ingest.dates import DatedText, passage_date, service_year
from ingest.history import CHANGES, DEFAULT_PATH, load_history
from ingest.stated import stated_changes
from ingest.types import Document

HISTORY = load_history()


def test_every_fact_in_the_table_names_its_source_and_a_known_change() -> None:
    raw = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))["changes"]
    assert len(raw) >= 40
    for fact in raw:
        assert fact["source"].strip() and fact["change"] in CHANGES
        assert 1990 <= fact["year"] <= 2030
    assert {c.change for facts in HISTORY.table.values() for c in facts} == set(CHANGES)


@pytest.mark.parametrize(
    ("code", "year", "status"),
    [
        # deleted, with replacements (AMA CPT 2017)
        ("62311", 2016, "current"),
        ("62311", 2017, "deleted"),
        # renumbered: the number moved (AMA CPT 2007)
        ("76005", 2006, "current"),
        ("76005", 2007, "deleted"),
        ("77003", 2006, "unassigned"),
        ("77003", 2024, "current"),
        # descriptor revised, still valid (AMA CPT 2020)
        ("62270", 2019, "current"),
        ("62270", 2020, "revised"),
        # added
        ("62328", 2019, "unassigned"),
        ("62328", 2020, "current"),
        # a range partly reassigned: "64622-64627" of 2011 spans 64624 and 64625, which came
        # into use in 2020 for genicular and SI joint procedures; 64622 itself went in 2012
        ("64624", 2011, "unassigned"),
        ("64625", 2020, "current"),
        ("64622", 2011, "current"),
        ("64622", 2012, "deleted"),
        # HCPCS quarterly update
        ("J1040", 2023, "current"),
        ("J1040", 2024, "deleted"),
        # a code the history does not know is current
        ("64405", 2024, "current"),
    ],
)
def test_status_of_a_code_in_a_year(code: str, year: int, status: str) -> None:
    assert HISTORY.status_of(code, year) == status


def test_replacements_and_what_a_code_replaced() -> None:
    assert HISTORY.replacement_of("62311") == ("62322", "62323")
    assert HISTORY.replacement_of("76005") == ("77003",)
    assert HISTORY.replacement_of("76001") == ()  # deleted in 2019, nothing replaced it
    assert HISTORY.replaced_by("74018") == ("74000",)
    assert [c.year for c in HISTORY.changes_after("62270", 2015)] == [2020]
    assert HISTORY.changes_after("62270", 2020) == ()
    assert HISTORY.status_of("62311") == "deleted" and not HISTORY.valid_in("62311", 2024)
    # A revised code's old meaning moved in part: 62270 under fluoroscopy is 62328 since 2020.
    assert HISTORY.replacement_of("62270") == () and HISTORY.successors_of("62270") == ("62328",)
    assert HISTORY.predecessors_of("62328") == ("62270",)
    assert HISTORY.table["62270"][0].describe() == "revised 2020 (part now 62328)"
    assert HISTORY.table["62311"][0].describe() == "deleted 2017 → 62322, 62323"


def test_a_malformed_history_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "history.json"
    bad.write_text(json.dumps({"changes": [{"codes": ["62311"], "change": "deleted"}]}))
    with pytest.raises(InvalidInput, match="fact 1: `year`"):
        load_history(bad)
    unsourced = tmp_path / "unsourced.json"
    fact = {"codes": ["62311"], "change": "deleted", "year": 2017, "source": " "}
    unsourced.write_text(json.dumps({"changes": [fact]}))
    with pytest.raises(InvalidInput, match="names its `source`"):
        load_history(unsourced)
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(InvalidInput, match="cannot be read"):
        load_history(tmp_path / "garbage.json")


def _changes(text: str) -> list[tuple[str, str, int | None, tuple[str, ...]]]:
    document = Document(id="d.txt", path="/d.txt", text=text, sha256="0")
    return [
        (c.code, c.change, c.year, c.replacements)
        for chunk in chunk_document(document)
        for c in stated_changes(chunk)
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "62311 was deleted in 2017 and replaced by 62322 or 62323.",
            [("62311", "deleted", 2017, ("62322", "62323"))],
        ),
        (
            "For 2007, 76005 became 77003 and 76003 became 77002.",
            [("76005", "renumbered", 2007, ("77003",)), ("76003", "renumbered", 2007, ("77002",))],
        ),
        (
            "A: 64402, 64410 and 64413 were deleted in 2020.",
            [("64402", "deleted", 2020, ()), ("64410", "deleted", 2020, ()),
             ("64413", "deleted", 2020, ())],
        ),
        (
            "That is facet nerve destruction, 64633 (created in 2012), imaging included.",
            [("64633", "added", 2012, ())],
        ),
        (
            "27096 (SI joint): revised in 2012 to include imaging guidance.",
            [("27096", "revised", 2012, ())],
        ),
        # said of the new code: the codes after "replaced" were deleted that year
        (
            "50435 Exchange nephrostomy catheter 000 1.82 replaced 50398 + 75984 (2016)",
            [("50398", "deleted", 2016, ("50435",)), ("75984", "deleted", 2016, ("50435",))],
        ),
        # a crosswalk row: old codes, their last year, new codes, the year after
        (
            "| 62311 | 2016 | 62322 or 62323 | 2017 | with imaging: 62323 |",
            [("62311", "deleted", 2017, ("62322", "62323"))],
        ),
        ("| 62311 | 2016 | 62322 | 2019 |", []),
        ("64483 2011 guidance included 2012", []),
        # no year, no stated change; a code that is only the origin is not the one added
        ("62311 was deleted; use 62323.", []),
        ("Created in 2007 from 76005.", []),
        ("We bill 62270 with 77003 in 2015.", []),
    ],
)  # fmt: skip
def test_changes_a_text_states(text: str, expected: list) -> None:
    assert _changes(text) == expected


@pytest.mark.parametrize(
    ("question", "year"),
    [
        ("correcting a 2019 claim: genicular block under fluoro, rebill as 64454?", 2019),
        ("correcting a claim w/ DOS 11/2010: TFESI under fluoro", 2010),
        ("rebilling a KUB from 12/2017 on a corrected claim - 74018 or 74000?", 2017),
        ("J1040 keeps rejecting for 2024 DOS, whats the new code", 2024),
        ("for 2015 dates of service, which epidural code?", 2015),
        # years that date something else: the coder asks about today's claim
        ("we billed 64483 + 76942 back in 2010 and it paid, still ok?", None),
        ("our 2015 cheat sheet says 62311 + 77003", None),
        ("is 20225 bundled into 22511", None),
    ],
)
def test_the_date_of_service_a_question_names(question: str, year: int | None) -> None:
    assert service_year(question).year == year


def test_a_passage_keeps_its_own_date_and_otherwise_inherits_its_documents() -> None:
    thread = DatedText(2015, "Nov 16, 2015")
    own = passage_date("Posted March 3, 2009: bill 62311 + 77003.", thread)
    assert (own.year, own.words, own.source) == (2009, "March 3, 2009", "passage")
    inherited = passage_date("bill 62311 + 77003 per region", thread)
    assert (inherited.year, inherited.words, inherited.source) == (2015, "Nov 16, 2015", "document")
    unknown = passage_date("bill 62311", DatedText(None, ""))
    assert (unknown.year, unknown.source) == (None, "")
