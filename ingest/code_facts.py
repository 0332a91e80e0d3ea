"""Facts about code formats that the extractor needs, each with its source.

Written in our own words from public references (see CODING_FACTS.md in the team docs):
AMA CPT code set structure and appendices, CMS HCPCS Level II, USPS ZIP code areas,
X12 837P HI segment qualifiers.
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

# X12 837 HI segment qualifiers that mark diagnosis codes (ABK principal, ABF other, ABJ
# admitting, ABN external cause, APR reason for visit; BK/BF/BJ/BN/PR are the ICD-9 forms).
X12_DIAGNOSIS_QUALIFIERS = frozenset(
    {"ABK", "ABF", "ABJ", "ABN", "APR", "BK", "BF", "BJ", "BN", "PR"}
)

# Range policy (CODING_FACTS.md §2): expand a range when both ends share their first three
# characters and their letter, and it spans at most this many numbers; else keep the endpoints.
RANGE_EXPAND_MAX = 20


def cpt_section(number: int) -> str | None:
    """The Category I section that a five-digit number falls in, or None."""
    for first, last, name in CPT_SECTIONS:
        if first <= number <= last:
            return name
    return None


def zip_fits_state(state: str, number: str) -> bool:
    """True when `number` could be a ZIP code of `state` (by its first digit)."""
    areas = {ZIP_AREA_BY_STATE.get(state), ZIP_EXTRA_AREAS.get(state)}
    return number[:1] in areas
