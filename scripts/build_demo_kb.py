"""Build the shipped retail demo knowledge base from the tau-bench retail data.

Reads ``wiki.md``, ``products.json`` and ``LICENSE`` from the source folder and
writes ``policy.md``, ``products.md``, ``LICENSE`` and ``README.md`` to the
output folder. The output depends only on the input, so running it twice gives
byte-identical files.

Usage: python scripts/build_demo_kb.py [--source DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT / ".." / "shared" / "data" / "retail"
DEFAULT_OUT = REPO_ROOT / "src" / "r1agent" / "data" / "kb"

ATTRIBUTION = (
    "The files in this folder are derived from the retail domain of tau-bench "
    "(https://github.com/sierra-research/tau-bench), tau_bench/envs/retail, "
    "under the MIT licence below."
)

README = """\
# Retail demo knowledge base

This folder is the retail demo knowledge base that r1agent ingests into Qdrant
by default: `policy.md` is the shop's customer-service policy and `products.md`
describes its 50 products. Both are derived from the retail domain of tau-bench
(sierra-research/tau-bench, tau_bench/envs/retail).
Do not edit these files by hand: regenerate them with `python scripts/build_demo_kb.py`.
Licence: MIT (see `LICENSE`).
"""

# Named sizes in their natural order, used when every value of an option is one.
SIZE_ORDER = ["XS", "S", "M", "L", "XL", "XXL", "small", "medium", "large"]
LEADING_NUMBER = re.compile(r"^\d+(?:\.\d+)?")
NUMBER_CHARS = re.compile(r"[\d.\-]+")


def leading_number(value: str) -> float | None:
    """The number a value starts with, if any: '1.5L' -> 1.5."""
    match = LEADING_NUMBER.match(value)
    return float(match.group()) if match else None


def unit_of(value: str) -> str:
    """The non-numeric part of a value: '1.5 liters' -> 'liter', '5-25 lbs' -> 'lb'."""
    return NUMBER_CHARS.sub("", value).strip().removesuffix("s")


def sort_values(values: Iterable[str]) -> list[str]:
    """Order option values naturally: S < M < L, 7 < 10, 1L < 1.5L < 2L.

    Values sort by number only when all of them are numbers in the same unit
    (so '4K' and '1080p' are not compared as 4 < 1080); otherwise alphabetically.
    """
    items = sorted(set(values), key=str.lower)
    if all(value in SIZE_ORDER for value in items):
        return sorted(items, key=SIZE_ORDER.index)
    numbers = {value: leading_number(value) for value in items}
    if None not in numbers.values() and len({unit_of(v) for v in items}) == 1:
        return sorted(items, key=lambda value: numbers[value] or 0.0)
    return items


def join_words(words: Iterable[str]) -> str:
    """Join words as an English list: 'a', 'a and b', 'a, b and c'."""
    items = list(words)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def describe_product(product: Mapping[str, Any]) -> str:
    """Return the Markdown section for one product."""
    name: str = product["name"]
    product_id: str = product["product_id"]
    variants: list[Mapping[str, Any]] = list(product["variants"].values())

    # Option names in first-seen order, each with its distinct values.
    options: dict[str, set[str]] = {}
    for variant in variants:
        for key, value in variant["options"].items():
            options.setdefault(key, set()).add(str(value))

    prices = [float(variant["price"]) for variant in variants]
    available = sum(1 for variant in variants if variant["available"])
    total = len(variants)

    lines = [
        f"## {name}",
        "",
        f"The {name} is a product sold by the shop (product id {product_id}).",
    ]
    if options:
        lines.append(f"It comes in different {join_words(options)} options.")
        for key, values in options.items():
            ordered = sort_values(values)
            lines.append(f"The available {key} options are {join_words(ordered)}.")
    if min(prices) == max(prices):
        lines.append(f"It costs {min(prices):.2f} USD.")
    else:
        lines.append(f"Prices range from {min(prices):.2f} USD to {max(prices):.2f} USD.")
    variant_word = "variant" if total == 1 else "variants"
    lines.append(f"There are {total} {variant_word} of the {name}, of which {available} are currently available.")
    return "\n".join(lines) + "\n"


def render_products(products: Mapping[str, Mapping[str, Any]]) -> str:
    """Return the whole products.md document, one section per product, by name."""
    ordered = sorted(products.values(), key=lambda p: (p["name"], p["product_id"]))
    header = (
        "# Product catalogue\n\n"
        f"This catalogue describes the {len(ordered)} products the shop sells, "
        "with their options, prices and availability.\n"
    )
    return "\n".join([header, *(describe_product(p) for p in ordered)])


def write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    print(f"wrote {path} ({len(data)} bytes)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="tau-bench retail data")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="knowledge base folder")
    args = parser.parse_args(argv)
    source: Path = args.source.resolve()
    out: Path = args.out.resolve()

    products = json.loads((source / "products.json").read_text(encoding="utf-8"))
    licence = (source / "LICENSE").read_bytes()

    out.mkdir(parents=True, exist_ok=True)
    write(out / "policy.md", (source / "wiki.md").read_bytes())
    write(out / "products.md", render_products(products).encode("utf-8"))
    write(out / "LICENSE", ATTRIBUTION.encode("utf-8") + b"\n\n" + licence)
    write(out / "README.md", README.encode("utf-8"))


if __name__ == "__main__":
    main()
