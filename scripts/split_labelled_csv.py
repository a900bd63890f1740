"""Split a labelled CSV (``text`` and ``label``/``category``/``intent`` columns) into train and test parts:
stratified (each label keeps its share in both), seeded, so the same input and seed always give the
same files. The output goes outside the repository (a data set is not source code).

Used to evaluate the intent classifier on BANKING77 without touching its official test split:

    python scripts/split_labelled_csv.py ../shared/data/banking77/train.csv --out /tmp/banking77-split
    r1agent eval intents --train /tmp/banking77-split/train.csv --test /tmp/banking77-split/test.csv

``--per-label N`` keeps at most N rows of each label before splitting (a small, quick set for tests);
``--labels K`` keeps only the first K labels in sorted order.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import defaultdict
from pathlib import Path

LABEL_COLUMNS = ("label", "category", "intent")


def read_rows(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        label = next((c for c in LABEL_COLUMNS if c in fields), None)
        if "text" not in fields or label is None:
            raise SystemExit(f"{path}: needs a 'text' column and one of {', '.join(LABEL_COLUMNS)}")
        return [(row["text"].strip(), row[label].strip()) for row in reader if row["text"].strip()]


def split(
    rows: list[tuple[str, str]],
    *,
    test_size: float,
    seed: int,
    per_label: int | None = None,
    labels: int | None = None,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row)
    rng = random.Random(seed)  # noqa: S311 - a reproducible split, not a secret
    train: list[tuple[str, str]] = []
    test: list[tuple[str, str]] = []
    for label in sorted(by_label)[:labels]:
        group = list(by_label[label])
        rng.shuffle(group)
        group = group[:per_label]
        # At least one row on each side, so every test label was seen in training.
        cut = min(max(1, round(len(group) * test_size)), len(group) - 1)
        test.extend(group[:cut])
        train.extend(group[cut:])
    return train, test


def write_rows(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="folder for train.csv and test.csv")
    parser.add_argument("--test-size", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--per-label", type=int, default=None)
    parser.add_argument("--labels", type=int, default=None)
    args = parser.parse_args(argv)
    if not 0 < args.test_size < 1:
        raise SystemExit("--test-size must be between 0 and 1")
    train, test = split(
        read_rows(args.input), test_size=args.test_size, seed=args.seed, per_label=args.per_label, labels=args.labels
    )
    write_rows(args.out / "train.csv", train)
    write_rows(args.out / "test.csv", test)
    print(f"{len(train)} train rows, {len(test)} test rows, {len({lab for _, lab in test})} labels -> {args.out}")


if __name__ == "__main__":
    main()
