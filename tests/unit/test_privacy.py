"""mask_pii: the shapes of personal data it masks, and the shop's own numbers it must leave alone."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from r1agent.privacy import BOUNDARY_CHARS, PLACEHOLDERS, luhn_valid, mask_pii, mask_value, safe_cut

DATA = Path(__file__).resolve().parents[2] / "src" / "r1agent" / "data"

MASKED = [
    # e-mails
    ("mail me at a.b@example.com please", "mail me at [EMAIL] please"),
    ("noah.brown7922@example.com", "[EMAIL]"),
    ("x+tag@sub.example.co.uk.", "[EMAIL]."),
    ("<jane_doe-99@mail-server.org>", "<[EMAIL]>"),
    # card numbers (Luhn-valid), 13 to 19 digits, grouped or not
    ("card 4111 1111 1111 1111 please", "card [CARD] please"),
    ("4111-1111-1111-1111", "[CARD]"),
    ("5500000000000004", "[CARD]"),
    ("amex 3782 822463 10005", "amex [CARD]"),
    ("old visa 4222222222222", "old visa [CARD]"),
    ("6011000990139424.", "[CARD]."),
    ("19 digits: 4000 0000 0000 0000 006", "19 digits: [CARD]"),
    ("card:4111111111111111", "card:[CARD]"),
    # street addresses (the retail data's shapes, and what customers type)
    ("986 Sunset Drive, Suite 259, Denver, CO 80279", "[ADDRESS], Denver, CO 80279"),
    ("ship it to 445 maple drive instead", "ship it to [ADDRESS] instead"),
    ("221B Baker Street", "[ADDRESS]"),
    ("725 5th Avenue, New York", "[ADDRESS], New York"),
    ("123 Broadway Apt 4B", "[ADDRESS]"),
    ("PO Box 1234", "[ADDRESS]"),
    ("10 Downing St.", "[ADDRESS]"),
    ("12 Elm St #4", "[ADDRESS]"),
    ("1600 Pennsylvania Avenue NW", "[ADDRESS] NW"),
    ("at 42 Old Mill Road, Unit 7", "at [ADDRESS]"),
    # phone numbers
    ("+1 555 123 4567", "[PHONE]"),
    ("(555) 123-4567", "[PHONE]"),
    ("call 555-123-4567 now", "call [PHONE] now"),
    ("555.123.4567", "[PHONE]"),
    ("+44 20 7946 0958", "[PHONE]"),
    ("+4915112345678", "[PHONE]"),
    ("1-800-555-1234", "[PHONE]"),
    ("call me at 5551234567", "call me at [PHONE]"),
    ("my phone number is 15551234567", "my phone number is [PHONE]"),
    ("Mobile: 07700900123", "Mobile: [PHONE]"),
    # the retail demo's customer ids embed the customer's name
    ("orders of james_li_5688", "orders of [USER_ID]"),
    # several at once, in JSON as OpenInference writes it (escapes included)
    (
        '{"content": "I am a.b@example.com,\\n986 Sunset Drive; card 4111111111111111"}',
        '{"content": "I am [EMAIL],\\n[ADDRESS]; card [CARD]"}',
    ),
    ('"x\\n4111111111111111"', '"x\\n[CARD]"'),
    ('"\\nphone 5551234567"', '"\\nphone [PHONE]"'),
    ('"mail:\\na.b@example.com"', '"mail:\\n[EMAIL]"'),
    ('"\\njames_li_5688"', '"\\n[USER_ID]"'),
]

KEPT = [
    "#W2378156",
    "Where is my order #W2611340?",
    "W2-3-7-8-1-5-6",
    "$54.04",
    "$1,234.56 or 1,234.56 dollars",
    "2024-01-15",
    "15/01/2024",
    "Jan 15, 2024 at 12:30",
    "10083",
    "zip 10012",
    "Shipping to: New York, NY 10083, USA",
    "- Water Bottle (capacity: 1000ml, material: glass): $47.84 (item 6469567736)",
    "tracking number 357962501027",
    "credit_card_4190576 and gift_card_1725971",
    "15% of 80",
    "15/100*80 = 12",
    "version 1.45.2",
    "8b6105d6-9c50-4b35-afca-6777552f3e2e",
    "aec34fc267fa4e23a477433ad3b6751f",
    "SmolLM2-135M-Instruct",
    "2 more on the way",
    "I have 3 items in the court",
    "order 2 chairs for the terrace",
    "returns within 30 days",
    "1234567812345678",  # 16 digits, but not a card number (Luhn)
    "3.14159265358979323",
    "last four 9212",
    "created 1736951234.567",
    "call me tomorrow at 5",
    "4 chairs at $120 each",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_masks(text: str, expected: str) -> None:
    assert mask_pii(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_leaves_the_shops_own_numbers_alone(text: str) -> None:
    assert mask_pii(text) == text


def test_masked_json_is_still_json() -> None:
    value = {"messages": ["Ship to:\n986 Sunset Drive", "call +1 555 123 4567", 'say "a.b@example.com"']}
    masked = mask_pii(json.dumps(value, ensure_ascii=False))
    assert json.loads(masked) == {"messages": ["Ship to:\n[ADDRESS]", "call [PHONE]", 'say "[EMAIL]"']}


def test_only_the_kinds_asked_for() -> None:
    text = "a.b@example.com, 4111 1111 1111 1111"
    assert mask_pii(text, kinds={"card"}) == "a.b@example.com, [CARD]"
    assert mask_pii(text, kinds={"email"}) == "[EMAIL], 4111 1111 1111 1111"


def test_mask_value_recurses_and_keeps_types() -> None:
    value = {"to": ["a.b@example.com"], "card": ("4111111111111111", 3), "n": 5, "ok": None}
    assert mask_value(value) == {"to": ["[EMAIL]"], "card": ("[CARD]", 3), "n": 5, "ok": None}


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")


def test_placeholders_are_not_pii_themselves() -> None:
    joined = " ".join(PLACEHOLDERS.values())
    assert mask_pii(joined) == joined


def test_no_match_spans_a_boundary_character() -> None:
    """safe_cut relies on it. A match over a boundary character would replace it: inserted anywhere in
    any of the shapes above, each such character must survive masking."""
    for text, _ in MASKED:
        for ch in sorted(BOUNDARY_CHARS):
            for i in range(len(text) + 1):
                probe = text[:i] + ch + text[i:]
                assert mask_pii(probe).count(ch) == probe.count(ch), (probe, mask_pii(probe))


def test_safe_cut_never_splits_pii() -> None:
    text = '{"a": "x", "b": "mail a.b@example.com now"}'
    for limit in range(1, len(text)):
        kept = safe_cut(text, limit)
        assert len(kept) <= limit
        assert not kept or kept[-1] in BOUNDARY_CHARS
        # Whatever is kept masks cleanly: no half e-mail survives.
        assert "a.b@" not in mask_pii(kept)
    assert safe_cut(text, 1000) == text
    assert safe_cut("no boundary here at all", 10) == ""


def test_every_street_address_of_the_retail_customers_is_masked() -> None:
    with gzip.open(DATA / "retail" / "users.json.gz") as f:
        users = json.load(f)
    for user in users.values():
        a = user["address"]
        line = f"My address is {a['address1']}, {a['address2']}, {a['city']}, {a['state']} {a['zip']}."
        masked = mask_pii(line)
        assert masked == f"My address is [ADDRESS], {a['city']}, {a['state']} {a['zip']}.", line
        assert mask_pii(user["email"]) == "[EMAIL]"


def test_the_demo_knowledge_base_has_nothing_to_mask() -> None:
    """Policy and catalogue text (prices, sizes, days) reach spans as retrieved sources: no false positives."""
    for path in (DATA / "kb").glob("*.md"):
        text = path.read_text()
        assert mask_pii(text) == text, path.name
