"""Entities found by patterns: precise, fast and explainable for the ids a shop deals in."""

from __future__ import annotations

import re

_PATTERNS: dict[str, re.Pattern[str]] = {
    # Order ids look like #W2378156; customers often drop the '#'.
    "order_id": re.compile(r"(?<![\w#])#?W\d{7}\b", re.IGNORECASE),
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
            values = ["#" + v.lstrip("#").upper() for v in values]
        if values:
            found[name] = list(dict.fromkeys(values))
    return found


def wants_human(text: str) -> bool:
    """The customer explicitly asks for a person: honoured whatever the classifier thinks."""
    return _HUMAN.search(text) is not None
