"""The extractor on published coding texts, claim files and tables (issue 16): the public
devset cases, and for each rule cases of our own, both the codes it must find and the numbers
it must leave alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import extract_codes
from ingest.code_facts import STATE_NAMES, ZIP_AREA_BY_STATE
from ingest.codes import unique_codes

CASE_DIR = Path(__file__).parent / "data" / "devset" / "code_cases"
CASE_FILES = sorted(CASE_DIR.glob("*.jsonl"))
CASES = [
    (path.stem, number, json.loads(line))
    for path in CASE_FILES
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
    if line.strip()
]


def codes_in(text: str) -> list[str]:
    return unique_codes(extract_codes(text))


def test_the_public_case_files_are_in_the_repository() -> None:
    assert [p.name for p in CASE_FILES] == [
        "imaging.jsonl",
        "nerves.jsonl",
        "rules.jsonl",
        "spine.jsonl",
    ]
    assert len(CASES) == 120
    assert all({"text", "codes", "kind"} <= set(case) for _, _, case in CASES)


@pytest.mark.parametrize(
    "case", [c for _, _, c in CASES], ids=[f"{f}:{n}-{c['kind']}" for f, n, c in CASES]
)
def test_public_devset_cases_are_exact(case: dict) -> None:
    assert codes_in(case["text"]) == case["codes"], case.get("note")


# --- not codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ridgeline Billing, Boise, Idaho 83702", []),
        ("Omaha, Nebraska 68154 is the office; report 64405 there.", ["64405"]),
        ("Kansas City,\nMissouri 64105", []),
        ("Washington, District of Columbia 20001", []),
        # The first digit must fit the state (USPS areas): 77012 cannot be a Maine ZIP code.
        ("Portland, Maine 77012 guidance", ["77012"]),
        # A state name not written as an address ("In Texas ...") does not make a ZIP code.
        ("In Texas 77012 is paid once per session.", ["77012"]),
    ],
)
def test_zip_code_after_a_state_written_in_full(text: str, expected: list[str]) -> None:
    assert codes_in(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"city": "Kansas City", "zip": "64105", "cpt": "64483"}', ["64483"]),
        ("patient = Patient(postal_code='76001')", []),
        ("billing_zip=77002&code=77003", ["77003"]),
        ("ZIP code: 62270", []),
        ("postalCode => 64450", []),
        ("<PostalCode>76001</PostalCode><Code>77003</Code>", ["77003"]),
        ("city,state,zip\nBoise,Idaho,83702\nHouston,TX,77002", []),
    ],
)
def test_zip_code_as_the_value_of_a_key(text: str, expected: list[str]) -> None:
    assert codes_in(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Written as a ZIP code once, the same value bare is that ZIP code again.
        ("Omaha, Nebraska 68154\nOmaha 68154\nMessages 212", []),
        ('{"zip": "64105"}\n64105 | 64105', []),
        # Words that make it a code: a role, a modifier, a code label, another code beside it.
        ("Arlington, TX 76001\n76001 was deleted in 2019; report 76000 once.", ["76001", "76000"]),
        ("Houston, TX 77002\nI bill 77002 with 20610.", ["77002", "20610"]),
        ("Houston, TX 77003\nCPT 77003 per region.", ["77003"]),
        ("Houston, TX 77003\nThe line went out as 77003-26.", ["77003"]),
        # A forum poster from Houston still discusses 77003 in sentences and claim lines.
        ("Location Houston, TX 77003\nOne unit of 77003 per session.", ["77003"]),
        ("Houston, TX 77003\nI billed\n64483-50\n77003\nand it paid.", ["64483", "77003"]),
    ],
)
def test_a_zip_value_written_again_bare_is_still_a_zip(text: str, expected: list[str]) -> None:
    assert codes_in(text) == expected


X12_837 = (
    "ISA*00*          *00*          *ZZ*SUBMITTER01    *ZZ*RECEIVER01     *240115*1030*^*00501"
    "*000012345*0*P*:~GS*HC*SUBMITTER01*RECEIVER01*20240115*1030*12345*X*005010X222A1~"
    "ST*837*0001*005010X222A1~NM1*85*2*RIDGELINE PAIN*****XX*1234567893~N3*100 MAIN ST~"
    "N4*HOUSTON*TX*77002~REF*EI*123456789~CLM*64483*450***11:B:1*Y*A*Y*Y~"
    "HI*ABK:M5416*ABF:G8929~LX*1~SV1*HC:64483:50*450*UN*1***1~DTP*472*D8*20240110~"
    "LX*2~SV1*HC:77003*120*UN*1***1~SE*14*0001~"
)


def test_x12_claim_codes_only_in_the_procedure_composites() -> None:
    mentions = extract_codes(X12_837)
    assert unique_codes(mentions) == ["64483", "77003"]
    assert mentions[0].modifiers == ("50",)
    assert X12_837[mentions[0].start : mentions[0].end] == "64483"


def test_x12_remittance_and_segments_one_a_line() -> None:
    text = "CLP*77012*1*300*120**12*9999~\nSVC*HC:62270:26*300*120**1~\nN4*ARLINGTON*TX*76001~"
    assert codes_in(text) == ["62270"]
    assert codes_in("ISA version 00501 is the envelope.") == []


def test_prose_about_x12_keeps_its_codes() -> None:
    assert codes_in("Loop 2400 SV1 carries HC:64483 and the N4 segment the ZIP code.") == ["64483"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Part B contractor number 12502 (Jurisdiction 15) issued it.", []),
        ("Jurisdiction No. 12402 covers the state.", []),
        ("Contractor numbers 12501, 12502 and 12302 (Novitas) bill 64483.", ["64483"]),
        ("see pages 64483 and 64484", []),
        ("See CR 12345 and CR# 11712 for the MUE change.", []),
        ("Change Request 20610 revised the edit.", []),
        ("Section 20610 of the manual covers it.", []),
        ("See § 62270 of the statute.", []),
        ("Transmittal 10852 implemented it.", []),
        ("doi: https://doi.org/10.1016/j.jpain.A4550", []),
        ("Cited as jpain.A4550 in the journal.", []),
        (
            "The LCD is at https://www.cms.gov/medicare-coverage-database/view/lcd.aspx?lcdid=38801",
            [],
        ),
        ("Download L35936.pdf or 64483.pdf", []),
        ("Pain Med. 2019;20(4):64405-64410 and J Pain 2020;21:62270", []),
        ("policy MP-64483-02 and policy number 64490", []),
        ("see p. 76942 and pp. 64490", []),
        ("Manual version 00501, rev. 62270", []),
        # Labels that qualify a code are no identifier labels.
        ("Anesthesia section 00100-01999 is not a code list.", ["00100", "01999"]),
        ("The CR modifier: 64483 CR was paid.", ["64483"]),
    ],
)
def test_identifiers_introduced_by_their_label(text: str, expected: list[str]) -> None:
    assert codes_in(text) == expected


@pytest.mark.parametrize(
    ("text", "ends"),
    [
        ("Radiology (CPT Codes 70000 - 79999) needs prior authorization.", ["70000", "79999"]),
        ("Anesthesia section 00100-01999", ["00100", "01999"]),
        (
            "Surgery 10000 through 69999 and Medicine 90281-99199",
            ["10000", "69999", "90281", "99199"],
        ),
    ],
)
def test_a_range_over_a_whole_section_names_the_section(text: str, ends: list[str]) -> None:
    mentions = extract_codes(text)
    assert unique_codes(mentions) == ends
    assert all(m.names_section and not m.from_range for m in mentions)


def test_a_hcpcs_range_over_its_letter_names_the_section() -> None:
    mentions = extract_codes("Drugs (HCPCS J0120-J9999) and chemotherapy J9000-J9999")
    assert [(m.code, m.names_section) for m in mentions] == [
        ("J0120", True),
        ("J9999", True),
        ("J9000", False),
        ("J9999", False),
    ]


def test_a_range_inside_a_section_is_an_ordinary_range() -> None:
    mentions = extract_codes("Our MUE sheet covers 64400-64999 and 70010-70015.")
    assert [m.code for m in mentions if not m.from_range] == ["64400", "64999", "70010", "70015"]
    assert not any(m.names_section for m in mentions)
    assert codes_in("account 70000-79999") == []  # a label still refuses it


# --- codes missed before -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CPT:64483 and CPT-64484", ["64483", "64484"]),
        ("HCPCS-J1040 was deleted", ["J1040"]),
        ("J1100x2 and 64490x3, 0213Tx1", ["J1100", "64490", "0213T"]),
        ("20610 x 2 and 64493-50x2", ["20610", "64493"]),
        # Glued to something else they are not codes.
        ("ID-64483 and 64483x and x64483 and 6448x3", []),
    ],
)
def test_a_code_glued_to_a_label_or_a_unit(text: str, expected: list[str]) -> None:
    assert codes_in(text) == expected


def test_glued_units_and_modifiers_stay_off_the_code() -> None:
    text = "64493-50x2 and J1100x2"
    first, second = extract_codes(text)
    assert (first.code, first.modifiers, text[first.start : first.end]) == (
        "64493",
        ("50",),
        "64493",
    )
    assert text[second.start : second.end] == "J1100"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64490,64491,64492", ["64490", "64491", "64492"]),
        ("64490;64491;64492", ["64490", "64491", "64492"]),
        ("64490/64491/64492", ["64490", "64491", "64492"]),
        ("J1020,J1030,J1040", ["J1020", "J1030", "J1040"]),
        # Digit groups are not lists: a thousands comma is followed by exactly three digits.
        ("12,64483 and 64483,5 and 1,204,62270", []),
    ],
)
def test_lists_without_spaces(text: str, expected: list[str]) -> None:
    assert codes_in(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64405-Injection, anesthetic agent; greater occipital nerve", ["64405"]),
        ("77012-Computed tomography guidance for needle placement", ["77012"]),
        ("64405–injection of the greater occipital nerve", ["64405"]),
        # An identifier after the hyphen still makes a longer number.
        ("account 62270-ABC and 62270-1183 and 62270-ab12", []),
    ],
)
def test_a_hyphen_and_a_word_introduce_the_descriptor(text: str, expected: list[str]) -> None:
    assert codes_in(text) == expected


def test_hyphen_descriptor_defines_the_code() -> None:
    (mention,) = extract_codes("64405-Injection, anesthetic agent, greater occipital nerve")
    assert mention.role == "defined"


def test_modifier_after_a_space_and_a_hyphen() -> None:
    first, second = extract_codes("Bill 64493 -RT and 64494 -LT today.")
    assert (first.code, first.modifiers) == ("64493", ("RT",))
    assert (second.code, second.modifiers) == ("64494", ("LT",))
    # Five characters after the hyphen are a range's end, not a modifier.
    mentions = extract_codes("64490 -64495")
    assert [m.code for m in mentions][-1] == "64495"
    assert not any(m.modifiers for m in mentions)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Office visit 99201 was deleted in 2021.", ["99201"]),
        ("99201-99205", ["99201", "99202", "99203", "99204", "99205"]),
        ("76003 and 76005 became 77002 and 77003", ["76003", "76005", "77002", "77003"]),
        ("99200 is no code, before or after 2021", []),
    ],
)
def test_deleted_codes_are_still_codes(text: str, expected: list[str]) -> None:
    assert codes_in(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("J0585Injection, onabotulinumtoxinA, 1 unit", ["J0585"]),
        ("20610Arthrocentesis, aspiration and/or injection, major joint", ["20610"]),
        (
            "Code Description\n64405Injection, greater occipital nerve\n64450Injection, other",
            ["64405", "64450"],
        ),
        # Not a descriptor: capitals, lower case, a too-short word, a longer number.
        ("Part 64405ABC, lot 20610Blue, 20610abc, 20610In, 120610Arthrocentesis", []),
    ],
)
def test_flattened_table_text_where_the_code_touches_its_descriptor(
    text: str, expected: list[str]
) -> None:
    assert codes_in(text) == expected


def test_a_flattened_descriptor_defines_the_code() -> None:
    text = "20610Arthrocentesis, aspiration and/or injection, major joint"
    (mention,) = extract_codes(text)
    assert (mention.role, text[mention.start : mention.end]) == ("defined", "20610")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64490--64492", ["64490", "64491", "64492"]),
        ("62320 – 62323", ["62320", "62321", "62322", "62323"]),
        ("62320 — 62322", ["62320", "62321", "62322"]),
        ("64490 -- 64492", ["64490", "64491", "64492"]),
    ],
)
def test_ranges_with_a_doubled_hyphen_or_a_spaced_dash(text: str, expected: list[str]) -> None:
    assert codes_in(text) == expected


# --- properties --------------------------------------------------------------------------

_digits4 = st.integers(min_value=0, max_value=9999).map(lambda n: f"{n:04d}")


@settings(max_examples=200, deadline=None)
@given(state=st.sampled_from(sorted(STATE_NAMES)), tail=_digits4)
def test_no_zip_after_a_state_name_is_a_code(state: str, tail: str) -> None:
    zip_code = ZIP_AREA_BY_STATE[STATE_NAMES[state]] + tail
    assert extract_codes(f"Billing office, {state} {zip_code}") == []
    assert extract_codes(f"Springfield, {state} {zip_code}\n{zip_code}\n") == []


@settings(max_examples=200, deadline=None)
@given(
    segment=st.sampled_from(["ISA", "GS", "ST", "N4", "REF", "CLM", "DTP", "AMT", "CLP", "NM1"]),
    value=st.integers(min_value=0, max_value=99999).map(lambda n: f"{n:05d}"),
    code=st.sampled_from(["62270", "64483", "77003", "J3301", "0213T"]),
)
def test_x12_values_outside_the_procedure_composite_are_never_codes(
    segment: str, value: str, code: str
) -> None:
    text = f"{segment}*AB*{value}*{value}:{value}~SV1*HC:{code}:26*100*UN*1~"
    assert unique_codes(extract_codes(text)) == [code]
