"""Refusals of a request's fields, in words: what was wrong, and what to send instead.

pydantic's own messages ("0: JSON decode error", "Input should be a valid integer", a dump
with a documentation link) are for programmers of pydantic; a coder on the page and a model
calling a tool get a sentence per problem, naming the field as the API spells it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

EXAMPLE_BODY = '{"question": "which fluoro code for occipital nerve block", "k": 5}'


def field_hints(max_k: int, max_question_chars: int) -> dict[str, str]:
    """What each request field takes, as a person would say it."""
    return {
        "question": f"the question as text (1 to {max_question_chars} characters)",
        "k": f"a whole number of passages from 1 to {max_k}, such as 5",
        "explain": "true or false",
        "code": "a CPT or HCPCS code as text, such as 77002",
    }


def explain_errors(
    errors: Iterable[Mapping[str, Any]], hints: Mapping[str, str], known: Iterable[str]
) -> str:
    """One sentence per pydantic error, joined: e.g. "k must be a whole number, not "3":
    send a whole number of passages from 1 to 50, such as 5"."""
    sentences = [_sentence(error, hints, list(known)) for error in errors]
    return "; ".join(dict.fromkeys(sentences)) or "the request could not be read"


def _sentence(error: Mapping[str, Any], hints: Mapping[str, str], known: list[str]) -> str:
    kind = str(error.get("type", ""))
    where = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
    name = ".".join(where)
    hint = hints.get(where[-1], "") if where else ""
    sent = error.get("input")
    if kind == "json_invalid":
        why = (error.get("ctx") or {}).get("error", "it cannot be parsed")
        return f"the body is not valid JSON ({why}): send a JSON object such as {EXAMPLE_BODY}"
    if not name or kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"the body must be a JSON object, such as {EXAMPLE_BODY}"
    if kind == "missing":
        return f"{name} is missing: send {hint or 'it'}"
    if kind == "extra_forbidden":
        return f"{name} is not a field of this request: send only {', '.join(known)}"
    shown = _shown(sent)
    if kind.startswith(("int_", "float_")):
        return f"{name} must be a whole number, not {shown}: send {hint}"
    if kind.startswith("bool"):
        return f"{name} must be true or false, not {shown}"
    if kind.startswith("string_too_short"):
        return f"{name} is empty: send {hint}"
    if kind.startswith("string_too_long"):
        return f"{name} is too long: send {hint}"
    if kind.startswith("string"):
        return f"{name} must be text, not {shown}: send {hint}"
    if kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        return f"{name} is out of range ({shown}): send {hint}"
    return f"{name} is not valid ({error.get('msg', 'invalid')}): send {hint or 'a valid value'}"


def _shown(value: Any) -> str:
    """A value as the caller wrote it in JSON, short."""
    import json

    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
