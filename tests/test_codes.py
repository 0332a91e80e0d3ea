"""The code extractor: public cases, each refusal rule, ranges, modifiers, footnotes, roles,
and property tests that no non-code number leaks through and offsets point at the mention."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import classify_code, extract_codes, is_well_formed_code, normalize_code
from ingest.codes import code_section, unique_codes

EXAMPLES = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "code_examples.jsonl").read_text().splitlines()
    if line.strip()
]


def codes_in(text: str, known: set[str] | None = None) -> list[str]:
    return unique_codes(extract_codes(text, known_codes=known))


@pytest.mark.parametrize("case", EXAMPLES, ids=[f"{c['kind']}-{i}" for i, c in enumerate(EXAMPLES)])
def test_public_extractor_cases(case: dict) -> None:
    assert codes_in(case["text"]) == case["codes"], case["note"]


def test_every_written_mention_points_at_its_code() -> None:
    for case in EXAMPLES:
        for mention in extract_codes(case["text"]):
            if not mention.from_range:
                assert case["text"][mention.start : mention.end] == mention.code


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("62270", ("CPT", "I")),
        ("00635", ("CPT", "I")),
        ("3008F", ("CPT", "II")),
        ("0213T", ("CPT", "III")),
        ("0001U", ("CPT", "PLA")),
        ("J3301", ("HCPCS", "Level II")),
        ("G0260", ("HCPCS", "Level II")),
        ("W2140", None),  # W is not a HCPCS letter
        ("00050", None),  # below the Anesthesia section
        ("05000", None),  # between Anesthesia and Surgery
        ("1234X", None),
        ("64405A", None),
    ],
)
def test_classify_code(code: str, kind: tuple[str, str] | None) -> None:
    assert classify_code(code) == kind


def test_normalize_and_well_formed() -> None:
    assert normalize_code(" cpt® code 77003 ") == "77003"
    assert normalize_code("+64494") == "64494"
    assert normalize_code("j3301") == "J3301"
    assert is_well_formed_code("0216t")
    assert not is_well_formed_code("7700")
    assert not is_well_formed_code("M54.81")
    assert code_section("77002") == "Radiology"
    assert code_section("99213") == "Evaluation and Management"
    assert code_section("J3301") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CT 77012 guidance for the biopsy", ["77012"]),  # CT guidance, not a Connecticut ZIP
        ("Dallas, TX 75201 office", []),
        ("Send to 1200 Main St, Boston, MA 02114.", []),
        ("PO Box 64405, Austin", []),
        ("patient account 62270-1183 was billed", []),
        ("account 77002 closed", []),
        ("bilateral pays 77002% more", []),
        ("a value of 62270.5 units", []),
        ("see 77002, 77003 and 77012", ["77002", "77003", "77012"]),
        ("Dx M5481, G4486 on the claim", []),
        ("the lot 12345 was recalled", []),
    ],
)
def test_refusal_rules(text: str, expected: list[str]) -> None:
    assert codes_in(text) == expected


def test_small_range_expands_and_marks_interior_codes() -> None:
    mentions = extract_codes("Report 64490 through 64495 once per level.")
    assert [m.code for m in mentions] == ["64490", "64491", "64492", "64493", "64494", "64495"]
    assert [m.from_range for m in mentions] == [False, True, True, True, True, False]
    interior = mentions[1]
    assert "64490 through 64495" in "Report 64490 through 64495"[interior.start : interior.end]


def test_large_or_cross_family_range_keeps_endpoints() -> None:
    assert codes_in("see 76003-77002") == ["76003", "77002"]
    assert codes_in("range 20526-20553") == ["20526", "20553"]  # 28 numbers > 20


def test_descending_pair_is_two_codes_not_a_range() -> None:
    assert codes_in("62272-62270 were both billed") == ["62272", "62270"]


def test_hyphen_and_spaced_modifiers_stay_on_the_mention() -> None:
    first, second = extract_codes("Bill 77003-26-59 and 76942 TC today.")
    assert (first.code, first.modifiers) == ("77003", ("26", "59"))
    assert (second.code, second.modifiers) == ("76942", ("TC",))


def test_footnote_needs_a_known_code_and_a_sentence_start() -> None:
    text = "Fluoroscopy is integral.\n760008. Fluoroscopy reported as 76000 is integral."
    assert codes_in(text) == ["76000"]
    first = extract_codes(text)[0]
    assert text[first.start : first.end] == "76000"
    unknown = "It is integral.\n760008. Fluoroscopy is integral."
    assert codes_in(unknown) == []
    assert codes_in(unknown, known={"76000"}) == ["76000"]
    assert codes_in("Claim 760008. was paid", known={"76000"}) == []


@pytest.mark.parametrize(
    ("text", "code", "role"),
    [
        ("62272 Spinal puncture, therapeutic, for drainage of fluid", "62272", "defined"),
        ("Code 77003 is used to describe spinal guidance.", "77003", "defined"),
        ("Fluoroscopy other than 71023 or 71034 is included.", "71034", "excluded"),
        ("Report 62272, not 62270, for a therapeutic tap.", "62270", "excluded"),
        ("77002 is an add-on code.", "77002", "add-on"),
        ("Report +64494 with the first level.", "64494", "add-on"),
        ("It is added to the primary procedure 62270.", "62270", "primary"),
        ("Older texts cite 76003 and 76005 (deleted 2007).", "76003", "deleted"),
        ("We bill 77003 once per region.", "77003", "mentioned"),
        ("Code 76000 is integral to most spinal procedures.", "76000", "bundled"),
        ("76000 shall not be reported separately with 62270.", "76000", "bundled"),
        ("77002 is reported separately in addition to 20610.", "77002", "mentioned"),
        ("The answer was that 64505 is not appropriate here.", "64505", "excluded"),
        ("Facility claims do not recognize 27096 at all.", "27096", "excluded"),
        ("52352 (stone removal) on the same side is bundled, so no.", "52352", "bundled"),
        ("The stent code 52332 can't be added on that side.", "52332", "bundled"),
        ("62311 (lumbar, single) became 62322 without imaging.", "62311", "deleted"),
        ("62311 (lumbar, single) became 62322 without imaging.", "62322", "mentioned"),
        ("Fluoroscopic guidance 76003 was replaced by 77002.", "76003", "deleted"),
    ],
)
def test_roles(text: str, code: str, role: str) -> None:
    mention = next(m for m in extract_codes(text) if m.code == code)
    assert mention.role == role


# --- properties --------------------------------------------------------------------------

numbers = st.integers(min_value=0, max_value=99999)
digits5 = numbers.map(lambda n: f"{n:05d}")


def _non_code_numbers() -> st.SearchStrategy[str]:
    """Number patterns that are never codes, each built around five code-like digits."""
    return st.one_of(
        digits5.map(lambda d: f"${d[:2]},{d[2:]}.00"),
        digits5.map(lambda d: f"${d}"),
        digits5.map(lambda d: f"{d}%"),
        digits5.map(lambda d: f"{d}.{d[:2]}"),
        digits5.map(lambda d: f"0.{d}"),
        digits5.map(lambda d: f"Houston, TX 7{d[1:]}"),
        digits5.map(lambda d: f"Boston, MA 0{d[1:]}-1234"),
        digits5.map(lambda d: f"{d}-{d[:4]}-{d[:2]}"),  # NDC 5-4-2
        digits5.map(lambda d: f"1-800-{d[:3]}-{d[1:]}"),
        digits5.map(lambda d: f"({d[:3]}) {d[2:]}-{d[:4]}"),
        digits5.map(lambda d: f"{d}{d[:3]}"),  # longer digit run
        digits5.map(lambda d: f"{d[:1]}{d}{d[:4]}"),  # NPI-like 10 digits
        digits5.map(lambda d: f"account {d}-{d[:4]}"),
        digits5.map(lambda d: f"M{d[:2]}.{d[2:4]}"),  # ICD-10-CM
        digits5.map(lambda d: f"{d[:2]}/{d[2:4]}/20{d[:2]}"),  # date
        digits5.map(lambda d: f"Pub 100-{d[:2]}"),
        digits5.map(lambda d: f"{d}A"),
        digits5.map(lambda d: f"L{d}"),  # LCD id
        digits5.map(lambda d: f"PO Box {d}"),
    )


@settings(max_examples=300, deadline=None)
@given(pattern=_non_code_numbers(), left=st.sampled_from(["", "See ", "paid ", "(", "x "]))
def test_no_non_code_number_pattern_leaks_through(pattern: str, left: str) -> None:
    assert extract_codes(f"{left}{pattern} today.") == []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789 -,.$%/()+:;\nTXFJGU")), max_size=80))
def test_offsets_always_point_at_the_mention(text: str) -> None:
    for mention in extract_codes(text):
        assert 0 <= mention.start < mention.end <= len(text)
        if mention.from_range:
            span = text[mention.start : mention.end].upper()
            low, high = span[:5], span[-5:]
            assert low < mention.code < high  # an interior code of the range written there
        else:
            written = text[mention.start : mention.end].upper()
            assert written == mention.code or written == mention.code[:5]
