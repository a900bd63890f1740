"""The plugin's own tests: its logic, and r1agent's conformance kit."""

from __future__ import annotations

import pytest
from langchain_core.tools import ToolException

from r1agent.plugins.testing import check_plugin
from r1agent.tools.base import Turn
from r1agent_units import UnitConverter, convert


def test_conforms_to_the_r1agent_tool_contract() -> None:
    (tool,) = check_plugin(
        "units",
        samples=[
            ({"value": 10, "from_unit": "km", "to_unit": "mi"}, "6.214 mi"),
            ({"value": 100, "from_unit": "°C", "to_unit": "°F"}, "212 °F"),
        ],
    )
    assert tool.name == "convert_units"


@pytest.mark.parametrize(
    ("value", "source", "target", "expected"),
    [(1, "mi", "km", 1.609344), (1, "lb", "oz", 16.0), (0, "c", "k", 273.15), (1, "gal", "l", 3.785411784)],
)
def test_conversions(value: float, source: str, target: str, expected: float) -> None:
    assert convert(value, source, target) == pytest.approx(expected)


def test_nonsense_is_refused_in_plain_words() -> None:
    with pytest.raises(ToolException, match="cannot be converted"):
        convert(1, "kg", "km")
    with pytest.raises(ToolException, match="don't know the unit"):
        convert(1, "parsec", "km")


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("Can you convert 10 km to miles?", {"value": 10.0, "from_unit": "km", "to_unit": "miles"}),
        ("how many grams is 3 oz", {"value": 3.0, "from_unit": "oz", "to_unit": "grams"}),
        ("Where is my order #W2611340?", {}),
    ],
)
def test_arguments_come_from_the_turn(text: str, args: dict[str, object]) -> None:
    turn = Turn(text=text, intent="out_of_scope", entities={})
    tool = UnitConverter()
    assert tool.extract(turn) == args
    assert tool.serves(turn) is bool(args)
