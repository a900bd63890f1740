"""Entities found by patterns: precise, fast and explainable for the ids a shop deals in."""

from __future__ import annotations

import re

_PATTERNS: dict[str, re.Pattern[str]] = {
    # Order ids look like #W2378156; customers drop the '#', and speech recognisers split the digits
    # ("W2-3-7-8-1-5-6", "W 23 78 156"): up to two separator characters between digits are allowed.
    "order_id": re.compile(r"(?<![\w#])#?W(?:[\s,.-]{0,2}\d){7}(?![\d])", re.IGNORECASE),
    "email": re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    "user_id": re.compile(r"\b[a-z]+_[a-z]+_\d{4}\b"),
    # Five digits that are not money ($12345, 12345 dollars) and not part of an order id.
    "zip_code": re.compile(
        r"(?<![\d#W$€£])(?<![$€£]\s)\b\d{5}(?:-\d{4})?\b(?!\.\d)(?!\s?(?:usd|dollars|eur|euros)\b)", re.IGNORECASE
    ),
    "amount": re.compile(
        r"(?:[$€£]\s?\d[\d,]*(?:\.\d{1,2})?|\b\d[\d,]*(?:\.\d{1,2})?\s?(?:usd|dollars|eur|euros)\b)", re.I
    ),
}

_HUMAN = re.compile(
    r"\b(?:(?:talk|speak|chat)\s+(?:to|with)\s+(?:a|an|the|some|your)?\s*"
    r"(?:human|person|agent|representative|rep|manager|supervisor|someone|real\s+person|operator)"
    r"|(?:human|live|real)\s+(?:agent|person|support|being)"
    r"|(?:transfer|connect|put)\s+me\s+(?:through\s+)?(?:to|with)\s+(?:a|an|the|some|your)?\s*"
    r"(?:human|person|agent|representative|rep|manager|supervisor|someone|operator)"
    r"|escalate\s+(?:this|my\s+(?:case|issue|complaint)))",
    re.IGNORECASE,
)


def extract_entities(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, pattern in _PATTERNS.items():
        values = [m.group(0).strip() for m in pattern.finditer(text)]
        if name == "order_id":
            values = ["#W" + re.sub(r"\D", "", v) for v in values]
        if values:
            found[name] = list(dict.fromkeys(values))
    return found


_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_DIGIT_RUN = re.compile(
    rf"\b(?:{'|'.join(_DIGIT_WORDS)})(?:[\s,.-]+(?:{'|'.join(_DIGIT_WORDS)})){{2,}}\b", re.IGNORECASE
)
_DOUBLE_U = re.compile(r"\bdouble[\s-]?u\b", re.IGNORECASE)


def normalize_spoken(text: str) -> str:
    """Spoken ids as a recogniser writes them, in the form patterns find: "double U, two, three, seven"
    becomes "W, 2, 3, 7". Only runs of three or more digit words change, so "one or two items" stays."""
    text = _DOUBLE_U.sub("W", text)
    return _DIGIT_RUN.sub(
        lambda m: re.sub(r"[a-z]+", lambda w: _DIGIT_WORDS[w.group(0).lower()], m.group(0), flags=re.I), text
    )


def wants_human(text: str) -> bool:
    """The customer explicitly asks for a person: honoured whatever the classifier thinks."""
    return _HUMAN.search(text) is not None
