"""Order-id checking and the customer-readable text of the order tools, without a database."""

from __future__ import annotations

import pytest
from langchain_core.tools import ToolException

from r1agent.tools.orders import (
    BAD_ORDER_ID,
    GetOrder,
    ListOrders,
    Order,
    OrderStore,
    OrderSummary,
    format_order,
    format_orders,
    normalise_order_id,
)


@pytest.mark.parametrize(
    ("raw", "want"),
    [("#W2611340", "#W2611340"), ("w2611340", "#W2611340"), (" #w2611340 ", "#W2611340"), ("W0000001", "#W0000001")],
)
def test_order_ids_are_normalised(raw: str, want: str) -> None:
    assert normalise_order_id(raw) == want


@pytest.mark.parametrize(
    "raw", ["W123", "#W123456789", "##W2611340", "#X2611340", "2611340", "#W2611340x", "#W 2611340", "x" * 10_000]
)
def test_malformed_ids_are_refused(raw: str) -> None:
    with pytest.raises(ToolException) as exc:
        normalise_order_id(raw)
    assert str(exc.value) == BAD_ORDER_ID


def test_store_needs_exactly_one_backend() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        OrderStore()


def test_text_of_an_order_and_of_a_list() -> None:
    order = Order(
        order_id="#W0000001",
        user_id="ann_lee_0001",
        address={
            "address1": "1 Main St",
            "address2": "",
            "city": "Austin",
            "country": "USA",
            "state": "TX",
            "zip": "78701",
        },
        items=[{"name": "Lamp", "product_id": "1", "item_id": "11", "price": 1234.5, "options": {"color": "red"}}],
        fulfillments=[],
        status="pending",
        payment_history=[{"transaction_type": "payment", "amount": 1234.5, "payment_method_id": "paypal_1"}],
    )
    text = format_order(order)
    assert "Order #W0000001: pending." in text
    assert "- Lamp (color: red): $1,234.50 (item 11)" in text
    assert "Shipments: none yet." in text and "- payment $1,234.50 via paypal_1" in text
    assert "Austin, TX 78701" in text and "1 Main St" not in text and "ann_lee_0001" not in text
    listing = format_orders([OrderSummary("#W0000001", "pending", 1, 1234.5), OrderSummary("#W0000002", "x", 2, 3.0)])
    assert listing.splitlines() == [
        "Your orders (2):",
        "- #W0000001: pending, 1 item, $1,234.50",
        "- #W0000002: x, 2 items, $3.00",
    ]


def test_tools_declare_what_they_serve() -> None:
    store = OrderStore(postgres_url="postgresql://unused")  # never connected: construction is lazy
    get, lst = GetOrder(store=store), ListOrders(store=store)
    assert get.intents == {"order_status", "after_sales"} and lst.intents == {"order_status"}
    assert get.schema_fields() == {"order_id": True, "customer_id": True}
    assert lst.schema_fields() == {"customer_id": True}
    assert not store.is_open
