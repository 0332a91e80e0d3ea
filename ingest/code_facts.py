"""Facts about code formats that the extractor needs, each with its source.

Written in our own words from public references (see CODING_FACTS.md in the team docs):
AMA CPT code set structure and appendices, CMS HCPCS Level II, USPS ZIP code areas and state
names (USPS Publication 28, Appendix B), the X12 837/835 segment layout (ASC X12 005010
implementation guides).
"""

from __future__ import annotations

# CPT Category I sections as (first, last, name) (AMA CPT code set structure).
CPT_SECTIONS: tuple[tuple[int, int, str], ...] = (
    (100, 1999, "Anesthesia"),
    (10004, 69990, "Surgery"),
    (70010, 79999, "Radiology"),
    (80047, 89398, "Pathology and Laboratory"),
    (90281, 99199, "Medicine"),
    (99202, 99499, "Evaluation and Management"),
    (99500, 99607, "Medicine"),
)
# Codes of the code history outside today's section bounds: deleted codes are still codes in
# the texts that cite them (the answer decides what is current). 99201, the first E/M code,
# was deleted in CPT 2021 (AMA CPT 2021 E/M changes).
CPT_DELETED_SPANS: tuple[tuple[int, int, str], ...] = ((99201, 99201, "Evaluation and Management"),)
# Category I numbers run from 00100 to 99607 (AMA CPT code set structure). A range over a whole
# section may be written with round ends inside this span ("Radiology 70000-79999").
CPT_CATEGORY_I_SPAN = (100, 99607)

# Category II, III and PLA codes: four digits and a letter (AMA CPT).
CPT_SUFFIX_CATEGORIES = {"F": "II", "T": "III", "U": "PLA"}

# HCPCS Level II first letters in use; F, I, N, O, W, X, Y and Z are not used (CMS HCPCS).
HCPCS_LETTERS = frozenset("ABCDEGHJKLMPQRSTUV")

# Modifiers that may follow a code after a space, as in a separate claim field (AMA CPT
# Appendix A; CMS HCPCS modifiers). After a hyphen any two characters are read as a modifier,
# by the rule in CODING_FACTS.md; after a space only these known ones are, so that a count
# ("77003 2 levels") is not taken for one.
SPACED_MODIFIERS = frozenset(
    {
        "22",
        "23",
        "24",
        "25",
        "26",
        "27",
        "32",
        "33",
        "47",
        "50",
        "51",
        "52",
        "53",
        "54",
        "55",
        "56",
        "57",
        "58",
        "59",
        "62",
        "63",
        "66",
        "76",
        "77",
        "78",
        "79",
        "80",
        "81",
        "82",
        "90",
        "91",
        "92",
        "95",
        "96",
        "97",
        "99",
        "TC",
        "RT",
        "LT",
        "XE",
        "XS",
        "XP",
        "XU",
        "JW",
        "JZ",
        "KX",
        "GA",
        "GZ",
        "GY",
        "GX",
        "PT",
        "PO",
        "PN",
        "QW",
        "FA",
        "F1",
        "F2",
        "F3",
        "F4",
        "F5",
        "F6",
        "F7",
        "F8",
        "F9",
        "TA",
        "T1",
        "T2",
        "T3",
        "T4",
        "T5",
        "T6",
        "T7",
        "T8",
        "T9",
        "E1",
        "E2",
        "E3",
        "E4",
        "LC",
        "LD",
        "RC",
        "RI",
        "LM",
        "AS",
        "AA",
        "QK",
        "QX",
        "QY",
        "QZ",
        "AI",
        "SA",
        "SG",
        "GC",
        "GE",
        "CR",
        "CS",
        "KO",
        "KP",
        "KQ",
    }
)

# First digit of a ZIP code by state (USPS national areas 0-9). A five-digit number right after
# a state abbreviation is a ZIP code only when its first digit fits the state, so that
# "CT 77012" (CT guidance, 77012) is not read as a Connecticut ZIP.
ZIP_AREA_BY_STATE: dict[str, str] = {
    **dict.fromkeys(("CT", "MA", "ME", "NH", "NJ", "PR", "RI", "VT", "VI"), "0"),
    **dict.fromkeys(("DE", "NY", "PA"), "1"),
    **dict.fromkeys(("DC", "MD", "NC", "SC", "VA", "WV"), "2"),
    **dict.fromkeys(("AL", "FL", "GA", "MS", "TN"), "3"),
    **dict.fromkeys(("IN", "KY", "MI", "OH"), "4"),
    **dict.fromkeys(("IA", "MN", "MT", "ND", "SD", "WI"), "5"),
    **dict.fromkeys(("IL", "KS", "MO", "NE"), "6"),
    **dict.fromkeys(("AR", "LA", "OK", "TX"), "7"),
    **dict.fromkeys(("AZ", "CO", "ID", "NM", "NV", "UT", "WY"), "8"),
    **dict.fromkeys(("AK", "CA", "HI", "OR", "WA", "GU"), "9"),
}
# New York's 005 and 063 areas (Fishers Island, Holtsville) start with 0 too.
ZIP_EXTRA_AREAS = {"NY": "0"}

# State and territory names with their USPS abbreviations (USPS Publication 28, Appendix B):
# "Boise, Idaho 83702" is an address as surely as "Boise, ID 83702".
STATE_NAMES: dict[str, str] = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL",
    "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA",
    "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
    "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR",
    "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD",
    "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA",
    "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Puerto Rico": "PR", "Guam": "GU", "Virgin Islands": "VI",
}  # fmt: skip

# X12 837/835 (ASC X12 005010 implementation guides): a segment is an id of two or three
# characters and elements joined by "*", ended by "~" (or a line break). Procedure codes sit only
# in the service-line composites (SV1-01 and SV2-02 of the 837, SVC-01 and SVC-06 of the 835),
# after the product/service qualifier HC (HCPCS and CPT codes) and a component separator:
# "SV1*HC:62270:26*...". Elsewhere (ISA's version 00501, N4's ZIP code, dates, amounts) a
# five-digit value is never a code.
X12_PROCEDURE_QUALIFIER = "HC"
X12_ADDRESS_SEGMENT = "N4"  # city, state, ZIP code

# X12 837 HI segment qualifiers that mark diagnosis codes (ABK principal, ABF other, ABJ
# admitting, ABN external cause, APR reason for visit; BK/BF/BJ/BN/PR are the ICD-9 forms).
X12_DIAGNOSIS_QUALIFIERS = frozenset(
    {"ABK", "ABF", "ABJ", "ABN", "APR", "BK", "BF", "BJ", "BN", "PR"}
)

# Range policy (CODING_FACTS.md §2): expand a range when both ends share their first three
# characters and their letter, and it spans at most this many numbers; else keep the endpoints.
RANGE_EXPAND_MAX = 20


def cpt_section(number: int) -> str | None:
    """The Category I section that a five-digit number falls in (today's or, for a deleted code
    of the code history, the one it was in), or None."""
    for first, last, name in (*CPT_SECTIONS, *CPT_DELETED_SPANS):
        if first <= number <= last:
            return name
    return None


def spans_a_section(low: int, high: int) -> bool:
    """True when the Category I range low-high covers a whole section of the code set
    ("70000-79999" Radiology, "10004-69990" Surgery): it names the section (CODING_FACTS.md §2)."""
    return any(low <= first and last <= high for first, last, _ in CPT_SECTIONS)


# HCPCS Level II is sectioned by its first letter (CMS HCPCS: A transport and supplies, J drugs
# ...). A range of one letter over at least nine tenths of its 10,000 numbers ("J0120-J9999")
# names that letter's section; "J9000-J9999" (chemotherapy) is a family of codes inside it.
HCPCS_SECTION_SPAN = 9000


def spans_a_hcpcs_section(low: str, high: str) -> bool:
    """True when the HCPCS range low-high ("J0000-J9999") covers its letter's section."""
    return low[:1] == high[:1] and int(high[1:]) - int(low[1:]) >= HCPCS_SECTION_SPAN


def zip_fits_state(state: str, number: str) -> bool:
    """True when `number` could be a ZIP code of `state` (by its first digit)."""
    areas = {ZIP_AREA_BY_STATE.get(state), ZIP_EXTRA_AREAS.get(state)}
    return number[:1] in areas
