"""The order tools on a real SQLite database seeded from the shipped retail data, checked against the
source data in /work/shared: every order field by field, authorisation (someone else's order reads
exactly like a missing one), hostile ids, per-customer listing, idempotent and concurrent seeding, the
gold order ids of the retail tasks, and the tools called through LangChain and the graph's router."""

from __future__ import annotations

import gzip
import json
import random
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import ToolException

from r1agent.intents.entities import extract_entities
from r1agent.plugins.testing import check_plugin
from r1agent.settings import Settings
from r1agent.tools import Turn, choose_tool
from r1agent.tools.orders import (
    BAD_ORDER_ID,
    NO_ORDERS,
    TABLES,
    GetOrder,
    ListOrders,
    OrderStore,
    make_tools,
)
from tests.conftest import REPO, SHARED

RETAIL = SHARED / "data" / "retail"
SHIPPED = REPO / "src" / "r1agent" / "data" / "retail"
HOSTILE_IDS = [
    "W123",
    "#W123456789",
    "'; DROP TABLE orders; --",
    "#W2611340' OR '1'='1",
    "x" * 10_000,
    "",
    "#W261134O",
    "#W２６１１３４０",  # full-width digits are not ASCII digits
    "#W2611340; DELETE FROM orders",
    "\x00#W2611340",
]


def _settings(path: Path) -> Settings:
    return Settings(data_dir=path, cache_dir=path)


def _message(exc: pytest.ExceptionInfo[ToolException]) -> str:
    return str(exc.value)


def _counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


@pytest.fixture(scope="module")
def source_orders() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RETAIL / "orders.json").read_text())
    return data


@pytest.fixture(scope="module")
def source_users() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RETAIL / "users.json").read_text())
    return data


@pytest.fixture(scope="module")
def db_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("orders")


@pytest.fixture(scope="module")
def store(db_dir: Path) -> Iterator[OrderStore]:
    store = OrderStore.from_settings(_settings(db_dir))
    yield store
    store.close()


def test_shipped_data_is_the_source_data_gzipped_deterministically() -> None:
    for name in ("orders.json", "users.json"):
        blob = (SHIPPED / f"{name}.gz").read_bytes()
        assert gzip.decompress(blob) == (RETAIL / name).read_bytes()
        assert blob[4:8] == b"\0\0\0\0", "gzip mtime must be 0 (reproducible bytes)"
    licence = (SHIPPED / "LICENSE").read_text()
    first, rest = licence.split("\n", 1)
    assert "tau-bench" in first and "https://github.com/sierra-research/tau-bench" in first
    assert "tau_bench/envs/retail" in first
    assert rest.strip() == (RETAIL / "LICENSE").read_text().strip()


def test_make_tools_is_lazy_and_uses_the_settings_path(tmp_path: Path) -> None:
    tools = make_tools(_settings(tmp_path))
    assert [t.name for t in tools] == ["get_order_details", "list_my_orders"]
    assert not (tmp_path / "orders.sqlite").exists(), "listing tools must not open the database"
    custom = tmp_path / "elsewhere" / "shop.sqlite"
    get, _ = make_tools(Settings(data_dir=tmp_path, cache_dir=tmp_path, orders_db=custom))
    assert "processed" in get.invoke({"order_id": "#W2611340", "customer_id": "james_li_5688"})
    assert custom.exists() and not (tmp_path / "orders.sqlite").exists()


def test_every_seed_order_matches_the_source_field_by_field(
    store: OrderStore, source_orders: dict[str, Any], db_dir: Path
) -> None:
    assert len(source_orders) == 1000
    for oid, want in source_orders.items():
        got = store.get_order(oid, want["user_id"])
        assert got["order_id"] == oid
        assert got["user_id"] == want["user_id"]
        assert got["status"] == want["status"], oid
        assert got["address"] == want["address"], oid
        assert len(got["items"]) == len(want["items"]), oid
        for g, w in zip(got["items"], want["items"], strict=True):
            assert (g["name"], g["item_id"], g["product_id"]) == (w["name"], w["item_id"], w["product_id"]), oid
            assert g["price"] == w["price"], oid
            assert g["options"] == w["options"] and list(g["options"]) == list(w["options"]), oid
        assert [f["tracking_id"] for f in got["fulfillments"]] == [f["tracking_id"] for f in want["fulfillments"]]
        assert [f["item_ids"] for f in got["fulfillments"]] == [f["item_ids"] for f in want["fulfillments"]]
        assert [(p["transaction_type"], p["amount"], p["payment_method_id"]) for p in got["payment_history"]] == [
            (p["transaction_type"], p["amount"], p["payment_method_id"]) for p in want["payment_history"]
        ], oid
        assert got == want, oid  # nothing else differs either
    assert _counts(db_dir / "orders.sqlite")["orders"] == 1000


def test_tool_text_is_factual_and_holds_only_that_order(store: OrderStore, source_orders: dict[str, Any]) -> None:
    tool = GetOrder(store=store)
    for oid in random.Random(7).sample(sorted(source_orders), 60):
        want = source_orders[oid]
        text = tool.invoke({"order_id": oid.lower().lstrip("#"), "customer_id": want["user_id"]})
        assert text.startswith(f"Order {oid}: {want['status']}.")
        for item in want["items"]:
            assert item["name"] in text and f"${item['price']:,.2f}" in text and item["item_id"] in text
            assert all(f"{k}: {v}" in text for k, v in item["options"].items())
        for shipment in want["fulfillments"]:
            assert all(t in text for t in shipment["tracking_id"])
        for payment in want["payment_history"]:
            assert f"{payment['transaction_type']} ${payment['amount']:,.2f} via {payment['payment_method_id']}" in text
        address = want["address"]
        assert f"{address['city']}, {address['state']} {address['zip']}" in text
        assert address["address1"] not in text, "the street address is not needed to answer"
        others = {o for o in source_orders if o != oid}
        assert not any(o in text for o in others)


def test_someone_elses_order_reads_exactly_like_a_missing_one(
    store: OrderStore, source_orders: dict[str, Any], source_users: dict[str, Any]
) -> None:
    rng = random.Random(20240607)
    users = sorted(source_users)
    existing = set(source_orders)
    missing = [f"#W{n:07d}" for n in rng.sample(range(10_000_000), 400) if f"#W{n:07d}" not in existing][:150]
    tool = GetOrder(store=store)
    checked = 0
    for oid, ghost in zip(rng.sample(sorted(source_orders), 150), missing, strict=True):
        owner = source_orders[oid]["user_id"]
        intruder = rng.choice([u for u in users if u != owner])
        with pytest.raises(ToolException) as theirs:
            store.get_order(oid, intruder)
        with pytest.raises(ToolException) as nobodys:
            store.get_order(ghost, intruder)
        assert _message(theirs) == f"I could not find order {oid} for your account"
        assert _message(theirs).replace(oid, "<id>") == _message(nobodys).replace(ghost, "<id>")
        with pytest.raises(ToolException) as via_tool:
            tool.invoke({"order_id": oid, "customer_id": intruder})
        assert _message(via_tool) == _message(theirs)
        checked += 1
    assert checked >= 100
    # Unknown or hostile customer ids: the same answer, never someone's data.
    for customer in ("nobody_here_0000", "' OR '1'='1", "x" * 10_000, ""):
        with pytest.raises(ToolException, match=r"^I could not find order #W2611340 for your account$"):
            store.get_order("#W2611340", customer)


@pytest.mark.parametrize("bad", HOSTILE_IDS, ids=lambda s: repr(s[:24]))
def test_malformed_and_hostile_ids_are_refused_before_any_query(bad: str, store: OrderStore, db_dir: Path) -> None:
    before = _counts(db_dir / "orders.sqlite")
    with pytest.raises(ToolException) as exc:
        store.get_order(bad, "james_li_5688")
    assert _message(exc) == BAD_ORDER_ID and "#W1234567" in _message(exc)
    with pytest.raises(ToolException, match="order ids look like #W1234567"):
        GetOrder(store=store).invoke({"order_id": bad, "customer_id": "james_li_5688"})
    assert _counts(db_dir / "orders.sqlite") == before
    assert before["orders"] == 1000 and before["users"] == 500


def test_bad_ids_never_open_the_database(tmp_path: Path) -> None:
    fresh = OrderStore(tmp_path / "never.sqlite")
    for bad in HOSTILE_IDS:
        with pytest.raises(ToolException):
            fresh.get_order(bad, "james_li_5688")
    assert not fresh.is_open and not (tmp_path / "never.sqlite").exists()


def test_list_my_orders_is_exactly_the_customers_orders(
    store: OrderStore, source_users: dict[str, Any], source_orders: dict[str, Any]
) -> None:
    without = 0
    for uid, user in source_users.items():
        if not user["orders"]:  # 62 demo customers have none: the same answer as an unknown customer
            with pytest.raises(ToolException, match=f"^{re.escape(NO_ORDERS)}$"):
                store.list_orders(uid)
            without += 1
            continue
        summaries = store.list_orders(uid)
        assert {s.order_id for s in summaries} == set(user["orders"]), uid
        for s in summaries:
            want = source_orders[s.order_id]
            assert (s.status, s.items) == (want["status"], len(want["items"]))
            assert s.total == pytest.approx(sum(i["price"] for i in want["items"]), abs=0.005)
    assert 0 < without < len(source_users) / 4
    tool = ListOrders(store=store)
    for uid in random.Random(3).sample(sorted(u for u in source_users if source_users[u]["orders"]), 25):
        text = tool.invoke({"customer_id": uid})
        lines = text.splitlines()[1:]
        assert {line.split(":")[0].removeprefix("- ") for line in lines} == set(source_users[uid]["orders"])
        assert not any(o in text for o in set(source_orders) - set(source_users[uid]["orders"]))
    for customer in ("nobody_here_0000", "' OR '1'='1", "x" * 10_000, ""):
        with pytest.raises(ToolException) as exc:
            tool.invoke({"customer_id": customer})
        assert _message(exc) == NO_ORDERS


def test_seeding_is_idempotent_and_stores_share_a_file(tmp_path: Path) -> None:
    db = tmp_path / "orders.sqlite"
    first = OrderStore(db)
    assert len(first.list_orders("james_li_5688")) == 4
    first.close()
    counts = _counts(db)
    assert counts["orders"] == 1000 and counts["users"] == 500
    second, third = OrderStore(db), OrderStore(db)
    assert second.get_order("#W2611340", "james_li_5688")["status"] == "processed"
    assert third.get_order("W2611340", "james_li_5688")["items"][0]["name"] == "Water Bottle"
    assert second.list_orders("james_li_5688") == third.list_orders("james_li_5688")
    second.close()
    third.close()
    assert _counts(db) == counts


def test_concurrent_first_opens_seed_once(tmp_path: Path) -> None:
    db = tmp_path / "orders.sqlite"
    stores = [OrderStore(db) for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def start(store: OrderStore) -> None:
        barrier.wait()
        try:
            assert store.get_order("#W2611340", "james_li_5688")["status"] == "processed"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert not errors
    assert _counts(db)["orders"] == 1000 and _counts(db)["order_items"] == 2978


def test_one_store_is_safe_across_threads(store: OrderStore, source_orders: dict[str, Any]) -> None:
    ids = sorted(source_orders)
    errors: list[BaseException] = []

    def work(part: list[str]) -> None:
        try:
            for oid in part:
                assert store.get_order(oid, source_orders[oid]["user_id"])["order_id"] == oid
                assert store.list_orders(source_orders[oid]["user_id"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(ids[i::8][:60],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_gold_order_ids_of_the_retail_tasks_belong_to_the_tasks_customer(store: OrderStore) -> None:
    checked: dict[str, int] = {}
    for name in ("tasks_train.json", "tasks_dev.json"):
        for task in json.loads((RETAIL / name).read_text()):
            for action in task["actions"]:
                if action["name"] == "get_order_details" or "order_id" in action["kwargs"]:
                    oid = action["kwargs"]["order_id"]
                    assert store.get_order(oid, task["user_id"])["order_id"] == oid
                    checked[action["name"]] = checked.get(action["name"], 0) + 1
    print(f"gold order ids checked: {sum(checked.values())} {checked}")
    assert sum(checked.values()) >= 700


def test_through_langchain_and_the_router(store: OrderStore) -> None:
    result = GetOrder(store=store).invoke({"order_id": "#W2611340", "customer_id": "james_li_5688"})
    assert "processed" in result and "Water Bottle" in result
    tools = [GetOrder(store=store), ListOrders(store=store)]

    def turn(text: str, intent: str, customer: str | None = "james_li_5688") -> Turn:
        return Turn(text=text, intent=intent, entities=extract_entities(text), customer_id=customer)

    chosen = choose_tool(tools, turn("where is my order w2611340?", "order_status"))
    assert chosen is not None
    tool, args, missing = chosen
    assert (tool.name, args, missing) == (
        "get_order_details",
        {"order_id": "#W2611340", "customer_id": "james_li_5688"},
        [],
    )
    assert "tracking 357962501027" in tool.invoke(args)
    chosen = choose_tool(tools, turn("what did I order lately?", "order_status"))
    assert chosen is not None and chosen[0].name == "list_my_orders" and not chosen[2]
    assert "#W2611340: processed, 2 items, $536.65" in chosen[0].invoke(chosen[1])
    chosen = choose_tool(tools, turn("I want to return the bottle from #W2611340", "after_sales"))
    assert chosen is not None and chosen[0].name == "get_order_details" and not chosen[2]
    # A customer id typed into the message is ignored: the context's id is the one used.
    chosen = choose_tool(tools, turn("show order #W2611340 of james_li_5688", "order_status", "noah_brown_6181"))
    assert chosen is not None and chosen[1]["customer_id"] == "noah_brown_6181"
    with pytest.raises(ToolException, match="could not find order #W2611340"):
        chosen[0].invoke(chosen[1])
    chosen = choose_tool(tools, turn("where is #W2611340?", "order_status", None))
    assert chosen is not None and "customer_id" in chosen[2]


def test_plugin_conformance_kit(tmp_path: Path) -> None:
    check_plugin(
        "orders",
        settings=_settings(tmp_path),
        samples=[
            ({"order_id": "#W2611340", "customer_id": "james_li_5688"}, "Water Bottle"),
            ({"customer_id": "james_li_5688"}, "#W2611340"),
        ],
    )
