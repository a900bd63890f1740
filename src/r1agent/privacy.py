"""PII masking: the one function that keeps customers' personal data out of traces, logs and (later) answers.

``mask_pii(text)`` replaces, in this order:

- e-mail addresses → ``[EMAIL]``;
- payment card numbers → ``[CARD]``: 13 to 19 digits, optionally grouped by single spaces or dashes,
  that pass the Luhn check (so a random long number is left alone);
- street addresses → ``[ADDRESS]``: a house number, one to four street-name words and a street
  suffix ("986 Sunset Drive", "221B Baker St", "725 5th Avenue"), with an optional unit ("Suite 259",
  "Apt 4B", "#12"); also "123 Broadway" and PO boxes. City, state and zip code are kept: they are
  coarse, and the order tool's answers ("Shipping to: New York, NY 10083") stay readable;
- phone numbers → ``[PHONE]``: ``+`` and 8 to 15 digits ("+44 20 7946 0958"), North American numbers
  with separators ("(555) 123-4567", "555.123.4567", "+1 555 123 4567"), or 10 to 11 bare digits right
  after a word like "phone", "call me" or "mobile";
- customer ids of the retail demo (``james_li_5688``) → ``[USER_ID]``: they embed the customer's name.

Left alone on purpose (false positives cost debuggability): order ids (``#W2378156``), prices
(``$54.04``), dates, times, zip codes on their own, item and product ids (10 bare digits: a bare
10-digit number is only a phone number after a phone word), tracking numbers (12 digits), payment
method ids (``credit_card_4190576``), versions and hex ids. Names in free text are not detected (that
needs a named-entity model).

No pattern matches across a quote, a backslash or a line break, and matches never start inside a
JSON escape (``\\n4111…`` is seen as ``4111…``): masking JSON text keeps it valid JSON, and cutting a
text at one of those characters never splits a match (see :func:`safe_cut`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal

PiiKind = Literal["email", "card", "address", "phone", "user_id"]
ALL_KINDS: frozenset[PiiKind] = frozenset({"email", "card", "address", "phone", "user_id"})
PLACEHOLDERS: dict[PiiKind, str] = {
    "email": "[EMAIL]",
    "card": "[CARD]",
    "address": "[ADDRESS]",
    "phone": "[PHONE]",
    "user_id": "[USER_ID]",
}
BOUNDARY_CHARS = frozenset('"\\\n{}<>|')
"""Characters no match contains: a text may be cut at one of them without splitting a match."""

# A match starts at a word boundary, or right after a JSON escape (\n, \r, \t) whose letter would
# otherwise count as a word character: "Ship to:\n123 Main St" must still be masked inside JSON.
_ESC = r"(?<=\\[nrt])"
_START = rf"(?:(?<![\w\\])|{_ESC})"
_NUM_START = rf"(?:(?<![\w\\.,$€£#+-])|{_ESC})"  # not inside a decimal, a price, an id or a signed number
_NUM_END = r"(?!\w|[.,]\d|-\d)"

_EMAIL = re.compile(rf"{_START}[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{{2,}}\b")
_CARD = re.compile(rf"{_NUM_START}\d(?:[ -]?\d){{12,18}}{_NUM_END}")

_SUFFIX = (
    r"(?:street|st|avenue|ave|road|rd|drive|dr|lane|ln|boulevard|blvd|court|ct|way|place|pl|circle|cir"
    r"|terrace|ter|parkway|pkwy|highway|hwy|square|sq|trail|trl|crescent|cres|close|alley|plaza|loop)"
)
# Street-name words may not be these: "2 more on the way" and "3 items in the court" are not addresses.
_NOT_STREET = (
    r"(?:the|a|an|on|of|in|to|at|by|for|from|and|or|is|are|was|my|your|our|their|his|her|its|this|that"
    r"|more|less|other|items?|days?|weeks?|months?|years?|hours?|minutes?|times?|pieces?|units?|orders?)"
)
_STREET_WORD = rf"(?!{_NOT_STREET}\b)(?:[a-z][a-z'.-]*|\d{{1,3}}(?:st|nd|rd|th))"
_UNIT = (
    r"(?:,?[ \t]+(?:suite|ste|apt|apartment|unit|floor|fl|room|rm)\.?[ \t]*#?[ \t]*[a-z0-9-]{1,6}\b"
    r"|,?[ \t]*#[ \t]?\d{1,5}\b)"
)
_ADDRESS = re.compile(
    rf"{_NUM_START}\d{{1,6}}[a-z]?(?:[ \t]+{_STREET_WORD}){{1,4}}[ \t]+{_SUFFIX}\b\.?{_UNIT}?"
    rf"|{_NUM_START}\d{{1,6}}[ \t]+broadway\b{_UNIT}?"
    rf"|{_START}p\.?[ \t]?o\.?[ \t]+box[ \t]+\d{{1,6}}\b",
    re.IGNORECASE,
)

_PHONE_INTL = re.compile(rf"{_START}\+\d{{1,3}}(?:[ .-]?\(?\d{{1,4}}\)?){{2,5}}{_NUM_END}")
_PHONE_NANP = re.compile(rf"{_NUM_START}(?:1[ .-]?)?(?:\(\d{{3}}\)[ .-]?|\d{{3}}[ .-])\d{{3}}[ .-]\d{{4}}{_NUM_END}")
_PHONE_WORD = re.compile(
    rf"(?P<cue>(?:\b|{_ESC})(?:phone|tel|telephone|mobile|cell|cellphone|call[ \t]+me|text[ \t]+me|reach[ \t]+me"
    r"|whatsapp|fax)\b[^\d\n\"\\{}<>|]{0,20}?)(?P<number>\+?\d{10,11})(?!\w)",
    re.IGNORECASE,
)
_USER_ID = re.compile(rf"{_START}[a-z]+_[a-z]+_\d{{4}}(?!\w)")
_MAYBE_PII = re.compile(r"[\d@]")  # every kind needs a digit or an @: most strings skip all the patterns


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies (digits only)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return PLACEHOLDERS["card"] if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)


def _international(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    return PLACEHOLDERS["phone"] if 8 <= digits <= 15 else match.group(0)


def _cued(match: re.Match[str]) -> str:
    return match.group("cue") + PLACEHOLDERS["phone"]


_Replacement = str | Callable[[re.Match[str]], str]
# (kind, pattern, replacement, a character every match contains: a text without it skips the pattern)
_RULES: tuple[tuple[PiiKind, re.Pattern[str], _Replacement, str], ...] = (
    # E-mails first: their local part may hold digits that other patterns would bite into.
    ("email", _EMAIL, PLACEHOLDERS["email"], "@"),
    ("card", _CARD, _card, ""),
    ("address", _ADDRESS, PLACEHOLDERS["address"], ""),
    ("phone", _PHONE_INTL, _international, "+"),
    ("phone", _PHONE_NANP, PLACEHOLDERS["phone"], ""),
    ("phone", _PHONE_WORD, _cued, ""),
    ("user_id", _USER_ID, PLACEHOLDERS["user_id"], "_"),
)


def mask_pii(text: str, kinds: Collection[PiiKind] = ALL_KINDS) -> str:
    """``text`` with every e-mail, card number, street address, phone number and customer id replaced
    by a placeholder such as ``[EMAIL]`` (only the ``kinds`` asked for)."""
    if not _MAYBE_PII.search(text):
        return text
    for kind, pattern, replacement, needs in _RULES:
        if kind in kinds and needs in text:
            text = pattern.sub(replacement, text)
    return text


def mask_value(value: Any, kinds: Collection[PiiKind] = ALL_KINDS) -> Any:
    """Masks the strings in ``value``, recursing into mappings, lists and tuples; other values as is."""
    if isinstance(value, str):
        return mask_pii(value, kinds)
    if isinstance(value, Mapping):
        return {k: mask_value(v, kinds) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_value(v, kinds) for v in value)
    return value


def safe_cut(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text``, cut at a character no PII match contains, so the kept
    part never ends in half an e-mail or half a card number that masking would no longer recognise.
    Returns ``""`` when the text has no such character in its second half before the limit."""
    if len(text) <= limit:
        return text
    for i in range(limit - 1, limit // 2 - 1, -1):
        if text[i] in BOUNDARY_CHARS:
            return text[: i + 1]
    return ""
