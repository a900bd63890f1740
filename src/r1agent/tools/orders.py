"""Order look-up tools: ``get_order_details`` and ``list_my_orders``, over a real SQL database.

Authorisation is the point of this module. Every read takes the customer id, which the graph injects
from the run's authenticated context (never from the message, see :mod:`r1agent.tools.base`), and the
SQL itself filters on it: an order is read with ``WHERE order_id = ? AND user_id = ?`` in one query.
Someone else's order and an order that does not exist therefore give the *same* answer, "I could not
find order #W… for your account", so the tool is no oracle for which order ids exist.

Every query is parameterised; no value is ever formatted into SQL text. Order ids are also checked
against their shape (``#W1234567``) before any query runs, so hostile text never reaches the database.

The database is SQLite (stdlib ``sqlite3``) at ``settings.orders_db`` or ``data_dir/orders.sqlite`` by
default, or Postgres (``psycopg``, the ``postgres`` extra) when ``settings.orders_postgres_url`` is set.
Its normalised schema is created when missing and seeded, inside one transaction, from the retail demo
data shipped in ``r1agent/data/retail`` (derived from tau-bench, MIT) when the orders table is empty.
"""

from __future__ import annotations

import gzip
import importlib
import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypedDict, cast

from langchain_core.tools import ToolException
from pydantic import BaseModel, Field

from r1agent.errors import ConfigurationError
from r1agent.settings import Settings
from r1agent.tools.base import AgentTool, Turn

ORDER_ID_SHAPE = re.compile(r"#?W[0-9]{7}", re.IGNORECASE)
BAD_ORDER_ID = "That is not an order id I can look up: order ids look like #W1234567."
NO_ORDERS = "I could not find any orders for your account."
_MAX_ID_CHARS = 128
"""Longer customer ids are not ours: answered as not found without a query."""
_SEED_LOCK_KEY = 7_310_426_118
"""Postgres advisory lock that serialises seeding across processes."""


def not_found(order_id: str) -> ToolException:
    """The one answer for a missing order *and* for another customer's order (no existence oracle)."""
    return ToolException(f"I could not find order {order_id} for your account")


def normalise_order_id(raw: str) -> str:
    """``"w2611340"`` -> ``"#W2611340"``; anything not shaped like an order id raises, before any query."""
    text = raw.strip() if isinstance(raw, str) else ""
    if len(text) > 9 or not ORDER_ID_SHAPE.fullmatch(text):
        raise ToolException(BAD_ORDER_ID)
    return "#W" + text[-7:]


class Address(TypedDict):
    address1: str
    address2: str
    city: str
    country: str
    state: str
    zip: str


class Item(TypedDict):
    name: str
    product_id: str
    item_id: str
    price: float
    options: dict[str, str]


class Fulfillment(TypedDict):
    tracking_id: list[str]
    item_ids: list[str]


class Payment(TypedDict):
    transaction_type: str
    amount: float
    payment_method_id: str


class Order(TypedDict):
    """One order, in the shape of the retail data it was seeded from (so it compares with it)."""

    order_id: str
    user_id: str
    address: Address
    items: list[Item]
    fulfillments: list[Fulfillment]
    status: str
    payment_history: list[Payment]


@dataclass(frozen=True)
class OrderSummary:
    order_id: str
    status: str
    items: int
    total: float


class _Cursor(Protocol):
    def execute(self, query: str, params: Sequence[Any] = ..., /) -> Any: ...
    def executemany(self, query: str, params: Iterable[Sequence[Any]], /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def close(self) -> None: ...


class _Connection(Protocol):
    def cursor(self) -> Any: ...
    def close(self) -> None: ...


# Standard SQL that SQLite and Postgres both accept. Money is integer cents: exact, portable.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS users (
        user_id TEXT PRIMARY KEY,
        first_name TEXT NOT NULL, last_name TEXT NOT NULL, email TEXT NOT NULL,
        address1 TEXT NOT NULL, address2 TEXT NOT NULL, city TEXT NOT NULL,
        state TEXT NOT NULL, zip TEXT NOT NULL, country TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS orders (
        order_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users (user_id),
        status TEXT NOT NULL,
        address1 TEXT NOT NULL, address2 TEXT NOT NULL, city TEXT NOT NULL,
        state TEXT NOT NULL, zip TEXT NOT NULL, country TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id)",
    """CREATE TABLE IF NOT EXISTS order_items (
        order_id TEXT NOT NULL REFERENCES orders (order_id),
        seq INTEGER NOT NULL,
        item_id TEXT NOT NULL, product_id TEXT NOT NULL, name TEXT NOT NULL,
        price_cents INTEGER NOT NULL,
        options TEXT NOT NULL,
        PRIMARY KEY (order_id, seq))""",
    """CREATE TABLE IF NOT EXISTS fulfillments (
        order_id TEXT NOT NULL REFERENCES orders (order_id),
        seq INTEGER NOT NULL,
        PRIMARY KEY (order_id, seq))""",
    """CREATE TABLE IF NOT EXISTS fulfillment_tracking (
        order_id TEXT NOT NULL, fulfillment INTEGER NOT NULL, seq INTEGER NOT NULL,
        tracking_id TEXT NOT NULL,
        PRIMARY KEY (order_id, fulfillment, seq),
        FOREIGN KEY (order_id, fulfillment) REFERENCES fulfillments (order_id, seq))""",
    """CREATE TABLE IF NOT EXISTS fulfillment_items (
        order_id TEXT NOT NULL, fulfillment INTEGER NOT NULL, seq INTEGER NOT NULL,
        item_id TEXT NOT NULL,
        PRIMARY KEY (order_id, fulfillment, seq),
        FOREIGN KEY (order_id, fulfillment) REFERENCES fulfillments (order_id, seq))""",
    """CREATE TABLE IF NOT EXISTS payments (
        order_id TEXT NOT NULL REFERENCES orders (order_id),
        seq INTEGER NOT NULL,
        transaction_type TEXT NOT NULL, amount_cents INTEGER NOT NULL, payment_method_id TEXT NOT NULL,
        PRIMARY KEY (order_id, seq))""",
)
TABLES = ("users", "orders", "order_items", "fulfillments", "fulfillment_tracking", "fulfillment_items", "payments")


def _cents(amount: float) -> int:
    return round(amount * 100)


def _read_seed(name: str) -> dict[str, Any]:
    blob = (resources.files("r1agent") / "data" / "retail" / name).read_bytes()
    return cast(dict[str, Any], json.loads(gzip.decompress(blob)))


class OrderStore:
    """The order database. Opens (and seeds) lazily on the first read; safe to share between threads.

    One connection per store, used under a lock. Reads always take the customer id and filter on it.
    """

    def __init__(self, path: Path | None = None, *, postgres_url: str | None = None) -> None:
        if (path is None) == (postgres_url is None):
            raise ValueError("give exactly one of path (SQLite) or postgres_url")
        self.path = path
        self._postgres_url = postgres_url
        self._lock = threading.Lock()
        self._conn: _Connection | None = None
        self._db_error: type[Exception] = sqlite3.Error
        # Postgres (psycopg) takes %s placeholders, SQLite takes ?. Queries are written with ? and the
        # markers alone are rewritten for Postgres; values always travel as parameters.
        self._mark = "?" if postgres_url is None else "%s"
        self._begin_write = "BEGIN IMMEDIATE" if postgres_url is None else "BEGIN"

    @classmethod
    def from_settings(cls, settings: Settings) -> OrderStore:
        if settings.orders_postgres_url is not None:
            return cls(postgres_url=settings.orders_postgres_url.get_secret_value())
        return cls(settings.orders_db or settings.data_dir / "orders.sqlite")

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- reads ------------------------------------------------------------------------------------

    def get_order(self, order_id: str, customer_id: str) -> Order:
        """The order, only if it belongs to ``customer_id``; else the same not-found error either way."""
        oid = normalise_order_id(order_id)
        if not customer_id or len(customer_id) > _MAX_ID_CHARS:
            raise not_found(oid)
        with self._read() as cur:
            cur.execute(
                self._q(
                    "SELECT user_id, status, address1, address2, city, country, state, zip FROM orders "
                    "WHERE order_id = ? AND user_id = ?"
                ),
                (oid, customer_id),
            )
            row = cur.fetchone()
            if row is None:
                raise not_found(oid)
            cur.execute(
                self._q(
                    "SELECT name, product_id, item_id, price_cents, options FROM order_items "
                    "WHERE order_id = ? ORDER BY seq"
                ),
                (oid,),
            )
            items = [
                Item(name=n, product_id=p, item_id=i, price=c / 100, options=json.loads(o))
                for n, p, i, c, o in cur.fetchall()
            ]
            cur.execute(self._q("SELECT seq FROM fulfillments WHERE order_id = ? ORDER BY seq"), (oid,))
            shipments = {seq: Fulfillment(tracking_id=[], item_ids=[]) for (seq,) in cur.fetchall()}
            cur.execute(
                self._q(
                    "SELECT fulfillment, tracking_id FROM fulfillment_tracking WHERE order_id = ? "
                    "ORDER BY fulfillment, seq"
                ),
                (oid,),
            )
            for seq, tracking_id in cur.fetchall():
                shipments[seq]["tracking_id"].append(tracking_id)
            cur.execute(
                self._q(
                    "SELECT fulfillment, item_id FROM fulfillment_items WHERE order_id = ? ORDER BY fulfillment, seq"
                ),
                (oid,),
            )
            for seq, item_id in cur.fetchall():
                shipments[seq]["item_ids"].append(item_id)
            cur.execute(
                self._q(
                    "SELECT transaction_type, amount_cents, payment_method_id FROM payments "
                    "WHERE order_id = ? ORDER BY seq"
                ),
                (oid,),
            )
            payments = [Payment(transaction_type=t, amount=c / 100, payment_method_id=m) for t, c, m in cur.fetchall()]
        user_id, status, address1, address2, city, country, state, zip_code = row
        address = Address(address1=address1, address2=address2, city=city, country=country, state=state, zip=zip_code)
        return Order(
            order_id=oid,
            user_id=user_id,
            address=address,
            items=items,
            fulfillments=list(shipments.values()),
            status=status,
            payment_history=payments,
        )

    def list_orders(self, customer_id: str) -> list[OrderSummary]:
        """The customer's orders. An unknown customer and one without orders get the same answer."""
        if not customer_id or len(customer_id) > _MAX_ID_CHARS:
            raise ToolException(NO_ORDERS)
        with self._read() as cur:
            cur.execute(
                self._q(
                    "SELECT o.order_id, o.status, COUNT(i.seq), COALESCE(SUM(i.price_cents), 0) FROM orders o "
                    "LEFT JOIN order_items i ON i.order_id = o.order_id WHERE o.user_id = ? "
                    "GROUP BY o.order_id, o.status ORDER BY o.order_id"
                ),
                (customer_id,),
            )
            rows = cur.fetchall()
        if not rows:
            raise ToolException(NO_ORDERS)
        return [OrderSummary(order_id=o, status=s, items=int(n), total=int(c) / 100) for o, s, n, c in rows]

    # -- connection, schema, seed -----------------------------------------------------------------

    def _q(self, query: str) -> str:
        return query if self._mark == "?" else query.replace("?", self._mark)

    @contextmanager
    def _read(self) -> Iterator[_Cursor]:
        """A cursor inside one read transaction (a consistent view across the order's tables)."""
        with self._lock:
            conn = self._conn if self._conn is not None else self._open()
            cur = cast(_Cursor, conn.cursor())
            try:
                cur.execute("BEGIN")
                try:
                    yield cur
                finally:
                    cur.execute("COMMIT")
            finally:
                cur.close()

    def _open(self) -> _Connection:
        """Connect, create the schema and seed it if needed. Called under the lock; retried if it fails."""
        conn: _Connection
        if self._postgres_url is not None:
            try:
                psycopg = importlib.import_module("psycopg")
            except ImportError as exc:
                raise ConfigurationError(
                    "R1AGENT_ORDERS_POSTGRES_URL is set but psycopg is not installed: pip install 'r1agent[postgres]'"
                ) from exc
            self._db_error = cast(type[Exception], psycopg.Error)
            conn = psycopg.connect(self._postgres_url, autocommit=True)
        else:
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are ours (BEGIN IMMEDIATE ... COMMIT), not implicit.
            lite = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            lite.execute("PRAGMA foreign_keys = ON")
            conn = lite
        try:
            self._ensure_seeded(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _ensure_seeded(self, conn: _Connection) -> None:
        """Create and seed in one transaction when the orders table is missing or empty.

        Two processes may start at once: the write transaction (SQLite ``BEGIN IMMEDIATE``, a Postgres
        advisory lock) admits one at a time, and the count is checked again inside it.
        """
        cur = cast(_Cursor, conn.cursor())
        try:
            try:
                cur.execute("SELECT 1 FROM orders LIMIT 1")
                if cur.fetchone() is not None:
                    return
            except self._db_error:
                pass  # no orders table yet
            cur.execute(self._begin_write)
            try:
                if self._postgres_url is not None:
                    cur.execute(self._q("SELECT pg_advisory_xact_lock(?)"), (_SEED_LOCK_KEY,))
                for statement in _SCHEMA:
                    cur.execute(statement)
                cur.execute("SELECT COUNT(*) FROM orders")
                if cur.fetchone()[0] == 0:
                    self._seed(cur)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
        finally:
            cur.close()

    def _seed(self, cur: _Cursor) -> None:
        users = _read_seed("users.json.gz")
        orders = _read_seed("orders.json.gz")
        cur.executemany(
            self._q("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            [
                (uid, u["name"]["first_name"], u["name"]["last_name"], u["email"], *_address(u["address"]))
                for uid, u in users.items()
            ],
        )
        cur.executemany(
            self._q("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            [(o["order_id"], o["user_id"], o["status"], *_address(o["address"])) for o in orders.values()],
        )
        cur.executemany(
            self._q("INSERT INTO order_items VALUES (?, ?, ?, ?, ?, ?, ?)"),
            [
                (
                    o["order_id"],
                    n,
                    i["item_id"],
                    i["product_id"],
                    i["name"],
                    _cents(i["price"]),
                    json.dumps(i["options"]),
                )
                for o in orders.values()
                for n, i in enumerate(o["items"])
            ],
        )
        cur.executemany(
            self._q("INSERT INTO fulfillments VALUES (?, ?)"),
            [(o["order_id"], n) for o in orders.values() for n in range(len(o["fulfillments"]))],
        )
        for table, key in (("fulfillment_tracking", "tracking_id"), ("fulfillment_items", "item_ids")):
            cur.executemany(
                self._q(f"INSERT INTO {table} VALUES (?, ?, ?, ?)"),  # noqa: S608 - table from the constant above
                [
                    (o["order_id"], n, k, value)
                    for o in orders.values()
                    for n, f in enumerate(o["fulfillments"])
                    for k, value in enumerate(f[key])
                ],
            )
        cur.executemany(
            self._q("INSERT INTO payments VALUES (?, ?, ?, ?, ?)"),
            [
                (o["order_id"], n, p["transaction_type"], _cents(p["amount"]), p["payment_method_id"])
                for o in orders.values()
                for n, p in enumerate(o["payment_history"])
            ],
        )


def _address(a: dict[str, str]) -> tuple[str, str, str, str, str, str]:
    return a["address1"], a["address2"], a["city"], a["state"], a["zip"], a["country"]


# -- customer-readable text -----------------------------------------------------------------------


def _money(amount: float) -> str:
    return f"${amount:,.2f}"


def format_order(order: Order) -> str:
    """Compact and factual: what the customer asked about, nothing of anyone else, no street address."""
    items = order["items"]
    names = {item["item_id"]: item["name"] for item in items}
    lines = [f"Order {order['order_id']}: {order['status']}.", f"Items ({len(items)}):"]
    for item in items:
        options = ", ".join(f"{k}: {v}" for k, v in item["options"].items())
        described = f"{item['name']} ({options})" if options else item["name"]
        lines.append(f"- {described}: {_money(item['price'])} (item {item['item_id']})")
    lines.append(f"Total: {_money(sum(item['price'] for item in items))}")
    if order["fulfillments"]:
        lines.append("Shipments:")
        for shipment in order["fulfillments"]:
            tracking = ", ".join(shipment["tracking_id"]) or "no tracking number yet"
            contents = ", ".join(names.get(i, f"item {i}") for i in shipment["item_ids"])
            lines.append(f"- tracking {tracking}: {contents}")
    else:
        lines.append("Shipments: none yet.")
    lines.append("Payments:")
    for payment in order["payment_history"]:
        lines.append(f"- {payment['transaction_type']} {_money(payment['amount'])} via {payment['payment_method_id']}")
    a = order["address"]
    lines.append(f"Shipping to: {a['city']}, {a['state']} {a['zip']}, {a['country']}")
    return "\n".join(lines)


def format_orders(orders: Sequence[OrderSummary]) -> str:
    lines = [f"Your orders ({len(orders)}):"]
    for o in orders:
        count = f"{o.items} item" + ("" if o.items == 1 else "s")
        lines.append(f"- {o.order_id}: {o.status}, {count}, {_money(o.total)}")
    return "\n".join(lines)


# -- tools ----------------------------------------------------------------------------------------


class OrderArgs(BaseModel):
    order_id: str = Field(description="The order id, like #W1234567 (the '#' is optional).")
    customer_id: str = Field(description="The signed-in customer; injected from the run, never from the message.")


class CustomerArgs(BaseModel):
    customer_id: str = Field(description="The signed-in customer; injected from the run, never from the message.")


class GetOrder(AgentTool):
    """One order of the signed-in customer; the default ``extract`` fills ``order_id`` from the turn."""

    name: str = "get_order_details"
    description: str = (
        "Look up one of the signed-in customer's orders by id: status, items with options and prices, "
        "tracking numbers, payments and the shipping city."
    )
    args_schema: type[BaseModel] = OrderArgs
    intents: frozenset[str] = frozenset({"order_status", "after_sales"})
    store: OrderStore

    def close(self) -> None:
        self.store.close()

    def serves(self, turn: Turn) -> bool:
        # A return or exchange of a named order starts from that order; a general after-sales question
        # ("what is your return policy?") is for the knowledge base, not a sign-in prompt.
        if turn.intent == "after_sales":
            return bool(turn.entities.get("order_id"))
        return super().serves(turn)

    def _run(self, order_id: str, customer_id: str) -> str:
        return format_order(self.store.get_order(order_id, customer_id))


class ListOrders(AgentTool):
    """The signed-in customer's orders, one line each (when they do not give an order id)."""

    name: str = "list_my_orders"
    description: str = "List the signed-in customer's orders: id, status, number of items and total."
    args_schema: type[BaseModel] = CustomerArgs
    intents: frozenset[str] = frozenset({"order_status"})
    store: OrderStore

    def close(self) -> None:
        self.store.close()

    def _run(self, customer_id: str) -> str:
        return format_orders(self.store.list_orders(customer_id))


def make_tools(settings: Settings) -> list[AgentTool]:
    """Entry point ``orders``. Cheap: the database is opened (and seeded) on the first call only."""
    store = OrderStore.from_settings(settings)
    return [GetOrder(store=store), ListOrders(store=store)]
