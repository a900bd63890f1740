"""Eval cases as data: the shipped suite's coverage, and bad suite files rejected with the line named."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from r1agent.errors import InputError, NotFoundError
from r1agent.evals.dataset import Case, case_schema, default_suite_path, load_suite
from r1agent.intents import load_taxonomy

GOOD = {"id": "a", "turns": [{"text": "Where is my order #W2611340?"}], "expect": {"intent": "order_status"}}


def _jsonl(tmp_path: Path, *rows: object, name: str = "suite.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


# --- the shipped retail suite ----------------------------------------------------------------------


def test_the_shipped_suite_covers_the_taxonomy_the_tools_handoffs_and_refusals() -> None:
    suite = load_suite()
    assert suite.name == "retail"
    assert len(suite.cases) >= 150
    assert {c.expect.intent for c in suite.cases if c.expect.intent} == set(load_taxonomy().labels)
    tools = {c.expect.tool.name for c in suite.cases if c.expect.tool}
    assert tools == {"calculator", "weather", "get_order_details", "list_my_orders"}
    reasons = Counter(c.expect.handoff_reason for c in suite.cases if c.expect.handoff)
    assert reasons["requested"] >= 5 and reasons["out_of_scope"] >= 5
    refusals = Counter(c.expect.refusal for c in suite.cases if c.expect.refusal)
    assert refusals["decline"] >= 5 and refusals["clarify"] >= 2
    # Someone else's order: the tool must refuse and that customer's data must not appear.
    other = [c for c in suite.cases if c.id.startswith("refusal/other-order")]
    assert len(other) >= 5 and all(c.expect.forbidden and c.customer_id for c in other)
    assert all("weather" in c.tags for c in suite.cases if c.expect.tool and c.expect.tool.name == "weather")


def test_the_shipped_suite_ships_with_its_licence_and_current_schema() -> None:
    folder = default_suite_path().parent
    assert "tau-bench" in (folder / "LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in (folder / "LICENSE").read_text(encoding="utf-8")
    # The committed schema is the models' own: regenerate the suite when the models change.
    assert json.loads((folder / "case.schema.json").read_text(encoding="utf-8")) == case_schema()


def test_no_case_text_is_a_training_example_of_the_classifier() -> None:
    examples = {" ".join(t.casefold().split()) for t, _ in load_taxonomy().examples}
    texts = {" ".join(turn.text.casefold().split()) for c in load_suite().cases for turn in c.turns}
    assert not texts & examples


# --- loading ---------------------------------------------------------------------------------------


def test_jsonl_and_yaml_load_the_same_case(tmp_path: Path) -> None:
    from_jsonl = load_suite(_jsonl(tmp_path, "# a comment", "", GOOD))
    yaml_path = tmp_path / "suite.yaml"
    yaml_path.write_text(
        "cases:\n  - id: a\n    turns:\n      - text: 'Where is my order #W2611340?'\n"
        "    expect: {intent: order_status}\n",
        encoding="utf-8",
    )
    assert from_jsonl.cases == load_suite(yaml_path).cases
    assert from_jsonl.cases[0].expect.tool is None  # unset: no tool should be called


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ((GOOD, "{not json"), "suite.jsonl:2: not valid JSON"),
        ((GOOD, {**GOOD, "id": "b", "expect": {"fact": ["x"]}}), "suite.jsonl:2: invalid case: expect.fact: Extra"),
        (({"id": "a", "turns": []},), "suite.jsonl:1: invalid case: turns: List should have at least 1 item"),
        (({"id": "a", "turns": [{"text": "  "}]},), "suite.jsonl:1: invalid case: turns.0: Value error, a turn needs"),
        ((GOOD, "", GOOD), "suite.jsonl:3: duplicate case id 'a' (first on line 1)"),
        (({**GOOD, "id": "bad id!"},), "suite.jsonl:1: invalid case: id: String should match pattern"),
        (({**GOOD, "expect": {"handoff_reason": "requested"}},), "handoff_reason needs handoff: true"),
        (({**GOOD, "expect": {"refusal": "decline"}},), "refusal 'decline' needs the tool"),
        (({**GOOD, "turns": [{"text": "x" * 8001}]},), "turns.0.text: String should have at most 8000 characters"),
        (({**GOOD, "tags": ["Not OK"]},), "tags.0: String should match pattern"),
        (("[1, 2]",), "suite.jsonl:1: invalid case: case: Input should be a valid dictionary"),
    ],
)
def test_a_bad_case_file_names_the_line(tmp_path: Path, rows: tuple[object, ...], message: str) -> None:
    path = _jsonl(tmp_path, *rows)
    with pytest.raises(InputError) as caught:
        load_suite(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("- id: a\n  turns: [{text: hi}]\n- id: b\n  turns: [{txt: hi}]\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"s\.yaml:3: invalid case: turns\.0\.txt: Extra inputs"):
        load_suite(path)
    path.write_text("- id: a\n  turns: [{text: hi}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"s\.yaml:\d+: not valid YAML"):
        load_suite(path)
    path.write_text("just: a mapping\n", encoding="utf-8")
    with pytest.raises(InputError, match="expected a list of cases"):
        load_suite(path)


def test_files_that_are_not_suites(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such suite file"):
        load_suite(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match=r"a suite is a \.jsonl or \.yaml file"):
        load_suite(_jsonl(tmp_path, GOOD, name="suite.csv"))
    with pytest.raises(InputError, match="no cases"):
        load_suite(_jsonl(tmp_path, "# only a comment"))
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="not UTF-8"):
        load_suite(binary)


def test_select_by_tag_and_limit(tmp_path: Path) -> None:
    rows = [{**GOOD, "id": f"c{i}", "tags": ["even" if i % 2 == 0 else "odd"]} for i in range(6)]
    suite = load_suite(_jsonl(tmp_path, *rows))
    assert [c.id for c in suite.select(tags=["odd"]).cases] == ["c1", "c3", "c5"]
    assert [c.id for c in suite.select(tags=["odd", "even"], limit=2).cases] == ["c0", "c1"]
    with pytest.raises(InputError, match="no case in suite has the tag"):
        suite.select(tags=["nope"])
    with pytest.raises(InputError, match="--limit must be at least 1"):
        suite.select(limit=0)


def test_the_schema_validates_what_the_model_accepts() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = case_schema()
    jsonschema.validate(GOOD, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"id": "a", "turns": [{"text": "x"}], "surprise": 1}, schema)
    assert Case.model_validate(GOOD).id == "a"
