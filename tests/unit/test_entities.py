"""Pattern entities and the explicit request for a human."""

from __future__ import annotations

import pytest

from r1agent.intents.entities import extract_entities, wants_human


@pytest.mark.parametrize(
    "text",
    [
        "Where is my order #W2378156?",
        "where is order W2378156",
        "status of w2378156 please",
        "(#w2378156)",
    ],
)
def test_order_id_is_normalised(text: str) -> None:
    assert extract_entities(text)["order_id"] == ["#W2378156"]


@pytest.mark.parametrize("text", ["order W12345678", "order 2378156", "code AW2378156", "##W2378156x"])
def test_not_an_order_id(text: str) -> None:
    assert "order_id" not in extract_entities(text)


def test_order_ids_are_deduplicated_in_order() -> None:
    found = extract_entities("#W1111111, w2222222 and again W1111111")
    assert found["order_id"] == ["#W1111111", "#W2222222"]


def test_email() -> None:
    found = extract_entities("Reach me at jane.doe+shop@example.co.uk, thanks.")
    assert found["email"] == ["jane.doe+shop@example.co.uk"]


def test_zip_code_is_not_taken_from_order_id_digits() -> None:
    found = extract_entities("Ship #W2378156 and W1234567 to 90210")
    assert found["zip_code"] == ["90210"]
    assert found["order_id"] == ["#W2378156", "#W1234567"]


def test_zip_plus_four_and_leading_zero() -> None:
    assert extract_entities("zip 02134-1234")["zip_code"] == ["02134-1234"]


@pytest.mark.parametrize("text", ["#12345", "item 123456", "total 12345.67"])
def test_not_a_zip_code(text: str) -> None:
    assert "zip_code" not in extract_entities(text)


def test_five_digit_amount_is_not_a_zip_code() -> None:
    found = extract_entities("I was charged $12345 by mistake")
    assert found["amount"] == ["$12345"]
    assert "zip_code" not in found


def test_amounts() -> None:
    found = extract_entities("Refund $12.50 or 30 dollars, not €1,299.99 or 15 USD")
    assert found["amount"] == ["$12.50", "30 dollars", "€1,299.99", "15 USD"]


def test_user_id() -> None:
    found = extract_entities("my user id is yusuf_rossi_9620")
    assert found["user_id"] == ["yusuf_rossi_9620"]


def test_user_id_needs_four_digits() -> None:
    assert "user_id" not in extract_entities("yusuf_rossi_962 or snake_case_name")


def test_nothing_found_is_an_empty_dict() -> None:
    assert extract_entities("Hello, how are you?") == {}


@pytest.mark.parametrize(
    "text",
    [
        "can I talk to a real person",
        "Connect me to an agent",
        "I want a human agent",
        "let me speak with your manager",
        "LIVE AGENT please",
        "please escalate this",
        "I need to chat with someone",
    ],
)
def test_wants_human(text: str) -> None:
    assert wants_human(text)


@pytest.mark.parametrize(
    "text",
    [
        "my human resources department ordered this",
        "the agent of change",
        "my travel agent booked the hotel",
        "I chatted with the agent yesterday and it was fine",
        "Is the human-size bean bag in stock?",
        "Where is my order #W2378156?",
    ],
)
def test_does_not_want_human(text: str) -> None:
    assert not wants_human(text)


@pytest.mark.parametrize(
    "text",
    [
        "How do I connect this speaker to my TV?",
        "Please transfer me the refund to my original card",
    ],
)
def test_device_or_money_requests_do_not_want_human(text: str) -> None:
    assert not wants_human(text)
