"""Coder language: abbreviations, synonyms and misspellings, applied to a question before search.

Coders write "fluoro", "flouro", "LP", "GON blk", "ESI", "w/ US guidance"; reference texts write
"fluoroscopic guidance", "lumbar puncture", "greater occipital nerve injection". Each entry maps
the ways coders write a term to the words the references use; the question keeps its own words
and gains these. Entries are general coding vocabulary in our own words, with their source:
  [F6]  CODING_FACTS.md §6 (lexicon), drawn from AMA CPT terminology and common coder usage
  [F3]  CODING_FACTS.md §3 (77002 outside the spine; 77003 spine and paraspinous, AMA CPT)
  [CPT] AMA CPT section and subsection headings (e.g. "Injection, Anesthetic Agent(s) and/or
        Steroid; Nerve Block" for 64400-64530, so a nerve "block" is an "injection")
No entry names a question, a passage or a corpus file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Term:
    variants: tuple[str, ...]
    meaning: str
    case_sensitive: bool = False  # for short upper-case forms that are also English words


TERMS: tuple[Term, ...] = (
    # Imaging [F6]
    Term(
        ("fluoro", "flouro", "fluro", "floro", "fluoroscopically", "c-arm", "c arm"),
        "fluoroscopy fluoroscopic guidance",
    ),
    Term(("fluroscopy", "flouroscopy", "floroscopy", "fluoroscopy"), "fluoroscopy fluoroscopic"),
    Term(("fluroscopic", "flouroscopic", "fluoroscopic"), "fluoroscopic fluoroscopy"),
    Term(("US", "U/S"), "ultrasound", case_sensitive=True),
    Term(("sono", "ultrasonic", "us-guided", "us guided", "usg"), "ultrasound"),
    Term(("CT-guided", "CT guided"), "CT computed tomography guidance"),
    Term(("myelo", "myelogram", "myelograms"), "myelography"),
    Term(("KUB",), "abdomen radiograph", case_sensitive=True),
    Term(("S&I", "RS&I"), "supervision and interpretation", case_sensitive=True),
    # Procedures [F6]
    Term(("LP", "LPs"), "lumbar puncture spinal puncture", case_sensitive=True),
    Term(("spinal tap", "thecal puncture", "spinal puncture"), "lumbar puncture spinal puncture"),
    Term(("GON", "ONB"), "greater occipital nerve injection", case_sensitive=True),
    Term(("ON block", "ON blk"), "occipital nerve injection", case_sensitive=True),
    Term(("TON", "3rd occipital"), "third occipital nerve facet", case_sensitive=True),
    Term(("ESI", "ESIs"), "epidural steroid injection", case_sensitive=True),
    Term(("ILESI",), "interlaminar epidural injection", case_sensitive=True),
    Term(("CESI",), "caudal epidural injection", case_sensitive=True),
    Term(("TFESI", "TFE"), "transforaminal epidural injection", case_sensitive=True),
    Term(
        ("SNRB",),
        "selective nerve root block transforaminal epidural injection",
        case_sensitive=True,
    ),
    Term(("MBB", "MBBs"), "medial branch block facet joint nerve injection", case_sensitive=True),
    Term(("FJI",), "facet joint injection", case_sensitive=True),
    Term(("RFA", "RF"), "radiofrequency ablation destruction neurotomy", case_sensitive=True),
    Term(("rhizotomy", "neurotomy", "denervation"), "radiofrequency ablation destruction"),
    Term(("SI joint", "SIJ", "SI jt", "S-I joint"), "sacroiliac joint", case_sensitive=True),
    Term(("ESWL", "SWL"), "extracorporeal shock wave lithotripsy", case_sensitive=True),
    Term(("litho",), "lithotripsy"),
    Term(("PCNL", "PNL"), "percutaneous nephrolithotomy", case_sensitive=True),
    Term(("TPI", "TPIs"), "trigger point injection", case_sensitive=True),
    Term(("EBP",), "epidural blood patch", case_sensitive=True),
    Term(("IT",), "intrathecal", case_sensitive=True),
    Term(("ITB",), "intrathecal baclofen", case_sensitive=True),
    Term(("SPG",), "sphenopalatine ganglion", case_sensitive=True),
    # A nerve block is an anesthetic/steroid injection of the nerve [CPT].
    Term(("block", "blocks", "blk", "blks", "blockade"), "injection nerve block"),
    Term(("inj", "injxn", "injs", "inj(s)"), "injection"),
    # Shorthand [F6]
    Term(("w/",), "with"),
    Term(("w/o",), "without"),
    Term(("bilat", "B/L", "b/l"), "bilateral"),
    Term(("dx",), "diagnosis diagnostic"),
    Term(("tx",), "treatment therapeutic"),
    Term(("px",), "procedure"),
    Term(("fx",), "fracture"),
    Term(("hx",), "history"),
    Term(("NCCI", "CCI", "PTP"), "correct coding initiative edits bundled", case_sensitive=True),
    Term(("MUE", "MUEs"), "medically unlikely edit units", case_sensitive=True),
    Term(
        ("bundled", "bundle", "inclusive", "integral", "incidental", "included"),
        "bundled included integral",
    ),
    Term(("unbundling", "unbundle"), "bundled separately reported"),
    Term(("pro fee", "PC"), "professional component", case_sensitive=True),
    # Add-on codes are reported only with a primary procedure (CODING_FACTS.md §2, AMA CPT).
    Term(("add on", "add-on", "addon"), "add-on primary procedure"),
)

# Where a needle goes decides 77002 (outside the spine) or 77003 (spine and paraspinous) [F3].
# Sites are plain anatomy: peripheral nerves, joints, muscles and organs are not spinal.
NON_SPINAL_SITES = (
    "occipital",
    "supraorbital",
    "supratrochlear",
    "trigeminal",
    "sphenopalatine",
    "intercostal",
    "suprascapular",
    "femoral",
    "sciatic",
    "genicular",
    "pudendal",
    "ilioinguinal",
    "peripheral",
    "shoulder",
    "knee",
    "hip",
    "elbow",
    "wrist",
    "ankle",
    "bursa",
    "tendon",
    "trigger point",
    "muscle",
    "breast",
    "thyroid",
    "kidney",
    "renal",
    "liver",
    "lung",
    "joint injection",
    "arthrogram",
    "arthrocentesis",
    "aspiration",
    "biopsy",
)
SPINAL_SITES = (
    "epidural",
    "facet",
    "transforaminal",
    "interlaminar",
    "caudal",
    "intrathecal",
    "vertebral",
    "vertebroplasty",
    "kyphoplasty",
    "paravertebral",
    "paraspinal",
    "paraspinous",
    "spine",
    "medial branch",
    "nerve root",
    "discography",
    "myelography",
    "lumbar puncture",
)
NON_SPINAL_MEANING = "non-spinal"
SPINAL_MEANING = "spinal paraspinous"


@dataclass(frozen=True)
class ExpandedQuestion:
    original: str
    added: tuple[str, ...]

    @property
    def text(self) -> str:
        """The question with the words its terms mean appended."""
        return " ".join((self.original, *self.added)) if self.added else self.original


def _pattern(variants: tuple[str, ...], case_sensitive: bool) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True))
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.compile(rf"(?<![\w/&-])(?:{alternatives})(?![\w/&]|-\w)", flags)


_COMPILED = tuple((_pattern(t.variants, t.case_sensitive), t.meaning) for t in TERMS)
_NON_SPINAL = _pattern(NON_SPINAL_SITES, case_sensitive=False)
_SPINAL = _pattern(SPINAL_SITES, case_sensitive=False)
_GUIDANCE = re.compile(r"fluoro|flouro|fluro|guidance|guided|c-arm|imaging", re.IGNORECASE)


@lru_cache(maxsize=1024)  # a search reads it 2-3 times; about 50 patterns a call
def expand_question(question: str) -> ExpandedQuestion:
    """The question with the reference wording of the coder terms it uses."""
    added: list[str] = []
    for pattern, meaning in _COMPILED:
        if pattern.search(question):
            added.append(meaning)
    # The site class only matters when the question is about imaging guidance.
    if _GUIDANCE.search(question) or any("fluoro" in a for a in added):
        if _SPINAL.search(question):
            added.append(SPINAL_MEANING)
        elif _NON_SPINAL.search(question):
            added.append(NON_SPINAL_MEANING)
    return ExpandedQuestion(question, tuple(dict.fromkeys(added)))


_STATED_NON_SPINAL = re.compile(
    r"\bnon-?\s?spinal\b|\boutside\s+(?:of\s+)?the\s+spine\b|\bnot\s+(?:for\s+)?the\s+spine\b",
    re.IGNORECASE,
)
_STATED_SPINAL = re.compile(r"\b(?:spine|spinal|paraspinous|paravertebral)\b", re.IGNORECASE)


def question_site(question: str) -> str | None:
    """ "non-spinal" or "spinal" when the question names a needle site of that kind [F3]."""
    if _STATED_NON_SPINAL.search(question):
        return "non-spinal"
    if _SPINAL.search(question):
        return "spinal"
    if _NON_SPINAL.search(question):
        return "non-spinal"
    return None


def stated_site(text: str) -> str | None:
    """The site kind a piece of reference text assigns ("for non-spinal procedures",
    "for spine or paraspinous injection"), or None."""
    if _STATED_NON_SPINAL.search(text):
        return "non-spinal"
    if _STATED_SPINAL.search(text):
        return "spinal"
    return None


# "which fluoro code for ...", "fluoroscopic guidance code for ...", "add on code?": the words
# right before "code" say what kind of code is asked for. Words that only ask are not a kind.
_ASKED_KIND = re.compile(r"((?:[A-Za-z][\w/&-]*\s+){1,2})codes?\b", re.IGNORECASE)
_NOT_A_KIND = frozenset(
    {"which", "what", "whats", "what's", "the", "a", "an", "any", "correct", "right"}
    | {"proper", "cpt", "hcpcs", "cpt®", "procedure", "billing", "this", "that", "same"}
    | {"one", "new", "my", "our"}
)


def asked_kind(question: str) -> str | None:
    """The kind of code a question asks for ("fluoro" in "which fluoro code for occipital
    nerve block"), or None when it asks for any code. A kind is a term of the lexicon above
    (a modality, a procedure, an add-on); other words before "code" ("the replacement code",
    "staghorn stone code") name a relation or the case, not a kind of code."""
    match = _ASKED_KIND.search(question)
    if match is None:
        return None
    words = match.group(1).split()
    while words and words[0].lower() in _NOT_A_KIND:
        words = words[1:]
    kind = " ".join(words)
    if not kind or not any(pattern.search(kind) for pattern, _ in _COMPILED):
        return None
    return kind


def named_site(text: str) -> str | None:
    """The site kind a piece of reference text assigns, by its words ("for non-spinal
    procedures") or else by the one kind of needle site it names ("a C2-C3 facet nerve
    block", "a hip injection"); None when it names neither or both."""
    stated = stated_site(text)
    if stated is not None:
        return stated
    spinal, non_spinal = bool(_SPINAL.search(text)), bool(_NON_SPINAL.search(text))
    if spinal == non_spinal:
        return None
    return "spinal" if spinal else "non-spinal"


SITE_NON_SPINAL = 1  # bit of `site_flags`: the text assigns guidance to non-spinal sites
SITE_SPINAL = 2  # bit of `site_flags`: the text assigns guidance to spinal sites


def site_flags(text: str) -> int:
    """Which kinds of needle site a piece of reference text assigns, as SITE_* bits (computed
    once per chunk at ingest, so that ranking never re-reads candidate texts)."""
    flags = SITE_NON_SPINAL if _STATED_NON_SPINAL.search(text) else 0
    if _STATED_SPINAL.search(_STATED_NON_SPINAL.sub(" ", text)):
        flags |= SITE_SPINAL
    return flags


def flags_agreement(question_kind: str, flags: int) -> float:
    """1.0 when the flags assign the question's kind of needle site, 0.0 when they assign only
    the other kind, 0.5 when they assign neither or both."""
    non_spinal, spinal = bool(flags & SITE_NON_SPINAL), bool(flags & SITE_SPINAL)
    if non_spinal == spinal:
        return 0.5
    stated = "non-spinal" if non_spinal else "spinal"
    return 1.0 if stated == question_kind else 0.0


def site_agreement(question_kind: str, text: str) -> float:
    """`flags_agreement` of the site kinds `text` assigns."""
    return flags_agreement(question_kind, site_flags(text))
