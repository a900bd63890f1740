"""Unit conversion as an r1agent tool plugin.

Everything r1agent needs is here: an argument schema, an ``AgentTool`` subclass saying which turns it
serves (``triggers``) and how to find its arguments in a turn (``extract``), and ``make_tools``, the
factory the ``r1agent.tools`` entry point names.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from langchain_core.tools import ToolException
from pydantic import BaseModel, Field

from r1agent.tools.base import AgentTool, Turn

if TYPE_CHECKING:
    from r1agent.settings import Settings

# unit -> (dimension, factor to the dimension's base unit). Temperature is affine: handled apart.
UNITS: dict[str, tuple[str, float]] = {
    "mm": ("length", 0.001),
    "cm": ("length", 0.01),
    "m": ("length", 1.0),
    "km": ("length", 1000.0),
    "in": ("length", 0.0254),
    "ft": ("length", 0.3048),
    "yd": ("length", 0.9144),
    "mi": ("length", 1609.344),
    "g": ("mass", 0.001),
    "kg": ("mass", 1.0),
    "oz": ("mass", 0.028349523125),
    "lb": ("mass", 0.45359237),
    "ml": ("volume", 0.001),
    "l": ("volume", 1.0),
    "floz": ("volume", 0.0295735295625),
    "gal": ("volume", 3.785411784),
    "c": ("temperature", 1.0),
    "f": ("temperature", 1.0),
    "k": ("temperature", 1.0),
}
ALIASES = {
    "millimeter": "mm",
    "millimeters": "mm",
    "centimeter": "cm",
    "centimeters": "cm",
    "meter": "m",
    "meters": "m",
    "metre": "m",
    "metres": "m",
    "kilometer": "km",
    "kilometers": "km",
    "kilometre": "km",
    "kilometres": "km",
    "inch": "in",
    "inches": "in",
    "foot": "ft",
    "feet": "ft",
    "yard": "yd",
    "yards": "yd",
    "mile": "mi",
    "miles": "mi",
    "gram": "g",
    "grams": "g",
    "kilogram": "kg",
    "kilograms": "kg",
    "kilo": "kg",
    "kilos": "kg",
    "ounce": "oz",
    "ounces": "oz",
    "pound": "lb",
    "pounds": "lb",
    "lbs": "lb",
    "milliliter": "ml",
    "milliliters": "ml",
    "liter": "l",
    "liters": "l",
    "litre": "l",
    "litres": "l",
    "gallon": "gal",
    "gallons": "gal",
    "fl oz": "floz",
    "celsius": "c",
    "°c": "c",
    "fahrenheit": "f",
    "°f": "f",
    "kelvin": "k",
}
_UNIT = "|".join(sorted((re.escape(u) for u in [*UNITS, *ALIASES]), key=len, reverse=True))
_CONVERT = re.compile(rf"(-?\d+(?:\.\d+)?)\s*({_UNIT})\s+(?:to|in|into)\s+({_UNIT})\b", re.IGNORECASE)
_HOW_MANY = re.compile(rf"how\s+many\s+({_UNIT})\s+(?:is|are|in)\s+(-?\d+(?:\.\d+)?)\s*({_UNIT})\b", re.I)


def unit(name: str) -> str:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in UNITS:
        raise ToolException(f"I don't know the unit {name!r}")
    return key


def convert(value: float, source: str, target: str) -> float:
    a, b = unit(source), unit(target)
    if UNITS[a][0] != UNITS[b][0]:
        raise ToolException(f"{source} ({UNITS[a][0]}) cannot be converted to {target} ({UNITS[b][0]})")
    if UNITS[a][0] == "temperature":
        kelvin = {"c": value + 273.15, "f": (value - 32) * 5 / 9 + 273.15, "k": value}[a]
        return {"c": kelvin - 273.15, "f": (kelvin - 273.15) * 9 / 5 + 32, "k": kelvin}[b]
    return value * UNITS[a][1] / UNITS[b][1]


class ConvertArgs(BaseModel):
    value: float = Field(description="The quantity to convert.", allow_inf_nan=False)
    from_unit: str = Field(description="The unit it is in, e.g. km, lb, °F.", max_length=20)
    to_unit: str = Field(description="The unit wanted, e.g. mi, kg, °C.", max_length=20)


class UnitConverter(AgentTool):
    name: str = "convert_units"
    description: str = "Converts a quantity between units of length, weight, volume or temperature."
    args_schema: type[BaseModel] = ConvertArgs
    triggers: tuple[str, ...] = (_CONVERT.pattern, _HOW_MANY.pattern)

    def extract(self, turn: Turn) -> dict[str, Any]:
        if m := _CONVERT.search(turn.text):
            return {"value": float(m.group(1)), "from_unit": m.group(2), "to_unit": m.group(3)}
        if m := _HOW_MANY.search(turn.text):
            return {"value": float(m.group(2)), "from_unit": m.group(3), "to_unit": m.group(1)}
        return {}

    def _run(self, value: float, from_unit: str, to_unit: str) -> str:
        result = convert(value, from_unit, to_unit)
        return f"{value:g} {from_unit} = {result:.4g} {to_unit}"


def make_tools(settings: Settings) -> list[AgentTool]:
    return [UnitConverter()]
