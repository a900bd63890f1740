"""Loading an intent taxonomy from the bundled YAML, a user's YAML or a CSV, and its errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from r1agent.errors import ConfigurationError
from r1agent.intents.taxonomy import OUT_OF_SCOPE, default_taxonomy_path, load_taxonomy


def test_bundled_default() -> None:
    taxonomy = load_taxonomy()
    counts = Counter(label for _, label in taxonomy.examples)
    assert taxonomy.labels == [
        "account",
        "after_sales",
        "order_status",
        "out_of_scope",
        "product_inquiry",
        "small_talk",
        "tech_support",
    ]
    assert set(counts.values()) == {60}
    assert OUT_OF_SCOPE in taxonomy.labels
    assert all(text and text == text.strip() for text, _ in taxonomy.examples)
    assert set(taxonomy.descriptions) == set(taxonomy.labels)
    assert default_taxonomy_path().is_file()


def test_yaml(tmp_path: Path) -> None:
    path = tmp_path / "intents.yml"
    path.write_text(
        "intents:\n"
        "  billing:\n"
        "    description: Money questions\n"
        "    examples: ['Why was I charged twice?', '  refund status  ', '   ']\n"
        "  greeting:\n"
        "    examples: [hi, hello]\n",
        encoding="utf-8",
    )
    taxonomy = load_taxonomy(path)
    assert taxonomy.labels == ["billing", "greeting"]
    # Blank examples are dropped and the rest stripped.
    assert taxonomy.examples == (
        ("Why was I charged twice?", "billing"),
        ("refund status", "billing"),
        ("hi", "greeting"),
        ("hello", "greeting"),
    )
    assert taxonomy.descriptions == {"billing": "Money questions", "greeting": ""}


@pytest.mark.parametrize("label_column", ["label", "category"])
def test_csv(tmp_path: Path, label_column: str) -> None:
    path = tmp_path / "intents.CSV"
    path.write_text(
        f"text,{label_column}\n"
        '"Where is my parcel, please?",shipping\n'
        "track my order,shipping\n"
        ",shipping\n"
        "hi,greeting\n"
        "hello there , greeting \n",
        encoding="utf-8",
    )
    taxonomy = load_taxonomy(path)
    assert taxonomy.examples == (
        ("Where is my parcel, please?", "shipping"),
        ("track my order", "shipping"),
        ("hi", "greeting"),
        ("hello there", "greeting"),
    )
    assert taxonomy.labels == ["greeting", "shipping"]


def _assert_names_file(exc: pytest.ExceptionInfo[ConfigurationError], path: Path) -> None:
    assert str(path) in str(exc.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigurationError) as exc:
        load_taxonomy(path)
    _assert_names_file(exc, path)


def test_bad_suffix(tmp_path: Path) -> None:
    path = tmp_path / "intents.json"
    path.write_text('{"intents": {}}', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"\.json") as exc:
        load_taxonomy(path)
    _assert_names_file(exc, path)


def test_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "intents.yaml"
    path.write_text("intents: [unclosed\n  - : :\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid YAML") as exc:
        load_taxonomy(path)
    _assert_names_file(exc, path)


@pytest.mark.parametrize(
    "body",
    [
        "- just\n- a list\n",
        "intents: [a, b]\n",
        "intents:\n  billing: {examples: 'not a list'}\n  greeting: {examples: [hi, hello]}\n",
        "intents:\n  billing: {examples: [1, 2]}\n  greeting: {examples: [hi, hello]}\n",
    ],
)
def test_wrong_yaml_shape(tmp_path: Path, body: str) -> None:
    path = tmp_path / "intents.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigurationError) as exc:
        load_taxonomy(path)
    _assert_names_file(exc, path)


def test_one_label_only(tmp_path: Path) -> None:
    path = tmp_path / "intents.yaml"
    path.write_text("intents:\n  billing:\n    examples: [a, b, c]\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="at least two labels") as exc:
        load_taxonomy(path)
    _assert_names_file(exc, path)


def test_label_with_one_example(tmp_path: Path) -> None:
    path = tmp_path / "intents.yaml"
    path.write_text(
        "intents:\n  billing:\n    examples: [a, b]\n  greeting:\n    examples: [hi]\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError, match="greeting") as exc:
        load_taxonomy(path)
    _assert_names_file(exc, path)


def test_csv_without_text_column(tmp_path: Path) -> None:
    path = tmp_path / "intents.csv"
    path.write_text("utterance,label\nhi,greeting\nhello,greeting\nrefund,billing\ncharge,billing\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="'text'") as exc:
        load_taxonomy(path)
    _assert_names_file(exc, path)


def test_csv_without_label_column(tmp_path: Path) -> None:
    path = tmp_path / "intents.csv"
    path.write_text("text,topic\nhi,greeting\nhello,greeting\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as exc:
        load_taxonomy(path)
    _assert_names_file(exc, path)


def test_empty_csv(tmp_path: Path) -> None:
    path = tmp_path / "intents.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigurationError) as exc:
        load_taxonomy(path)
    _assert_names_file(exc, path)


def test_csv_with_byte_order_mark(tmp_path: Path) -> None:
    # Spreadsheet programs commonly save "CSV UTF-8" with a BOM.
    path = tmp_path / "intents.csv"
    path.write_bytes("text,label\nhi,greeting\nhello,greeting\nrefund,billing\ncharge,billing\n".encode("utf-8-sig"))
    assert load_taxonomy(path).labels == ["billing", "greeting"]
