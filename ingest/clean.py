"""Normalise text before chunking.

Cleaning happens once, before any offset is taken: every offset cptqa stores points into the
cleaned text, so a passage can always be cut out of its document again.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u200c\u200d\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_TRAILING = re.compile(r" +\n")
_LEADING = re.compile(r"\n +")
_MANY_BREAKS = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Normalise Unicode (NFC), line breaks and white space; drop control characters.

    Paragraph breaks (blank lines) survive as exactly one blank line; runs of spaces and tabs
    become one space; lines lose leading and trailing spaces. Idempotent.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    text = text.replace("\u2029", "\n\n")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _TRAILING.sub("\n", text)
    text = _LEADING.sub("\n", text)
    text = _MANY_BREAKS.sub("\n\n", text)
    # NFC last: a control character dropped above may have stood between a letter and its
    # combining accent, which compose only now (cleaning stays idempotent).
    return unicodedata.normalize("NFC", text.strip())
