"""The built-in calculator: exact results, expressions found in natural turns, and hostile input refused
quickly with a ToolException (never eval, never a crash)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from langchain_core.tools import ToolException
from pydantic import ValidationError

from r1agent.plugins.testing import check_plugin, tool_problems
from r1agent.settings import Settings
from r1agent.tools import Turn, calculator
from r1agent.tools.calculator import Calculator, evaluate, make_tools

TIME_BOUND_S = 1.0


def _turn(text: str) -> Turn:
    return Turn(text=text, intent="out_of_scope", entities={})


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("2+2", "4"),
        ("2+3*4", "14"),  # precedence
        ("(2+3)*4", "20"),
        ("2**3**2", "512"),  # ** is right-associative
        ("-2**2", "-4"),  # unary minus binds looser than **
        ("-3+5", "2"),
        ("--1", "1"),
        ("+7", "7"),
        ("7//2", "3"),
        ("-7%3", "2"),
        ("7/2", "3.5"),
        ("1/3", "0.3333333333"),  # 10 significant digits
        ("0.1+0.2", "0.3"),
        ("3*19.99", "59.97"),
        ("15/100*80", "12"),  # a float that is whole prints without ".0"
        ("2/4", "0.5"),
        ("-0.0", "0"),
        ("1e-7", "1e-07"),
        ("2^10", "1024"),  # ^ is read as a power, not XOR
        ("3×4", "12"),
        ("12÷4", "3"),
        ("2**-1", "0.5"),
        ("2**0.5", "1.414213562"),
        ("sqrt(16)", "4"),
        ("abs(-3)", "3"),
        ("round(2.5)", "2"),
        ("round(3.14159, 2)", "3.14"),
        ("round(1234.5, -2)", "1200"),
        ("min(3, 1, 2)", "1"),
        ("max(3, 1, 2)", "3"),
        ("log(e)", "1"),
        ("log(8, 2)", "3"),
        ("log10(1000)", "3"),
        ("exp(0)", "1"),
        ("sin(0)", "0"),
        ("cos(pi)", "-1"),
        ("tan(0)", "0"),
        ("floor(2.7)", "2"),
        ("ceil(2.1)", "3"),
        ("factorial(5)", "120"),
        ("factorial(0)", "1"),
        ("2*pi", "6.283185307"),
        ("10**20", "100000000000000000000"),  # ints print in full
        ("2.0**70", "1.180591621e+21"),
    ],
)
def test_results(expression: str, result: str) -> None:
    assert Calculator()._run(expression).rsplit(" = ", 1)[1] == result


def test_the_result_repeats_the_expression() -> None:
    assert Calculator()._run("15/100*80") == "15/100*80 = 12"
    assert Calculator()._run(" 2^10 ") == "2**10 = 1024"


def test_large_but_allowed_results() -> None:
    assert len(Calculator()._run("factorial(1000)").split(" = ")[1]) == 2568
    assert evaluate("9**9**2") == 9**81


@pytest.mark.parametrize(
    ("text", "expression", "result"),
    [
        ("What is 15% of 80?", "15/100*80", "12"),
        ("how much is 3 x 19.99", "3*19.99", "59.97"),
        ("can you compute (2+3)*4", "(2+3)*4", "20"),
        ("12*7", "12*7", "84"),
        ("what is 2^10?", "2**10", "1024"),
        ("sqrt(16)", "sqrt(16)", "4"),
        ("What's the square root of 16?", "sqrt(16)", "4"),
        ("what is 3 times 4", "3*4", "12"),
        ("How much is $1,299.99 x 3?", "1299.99*3", "3899.97"),
        ("what is 20% off 59.99", "59.99*(1-20/100)", "47.992"),
        ("59.99 + 8% please", "59.99*(1+8/100)", "64.7892"),
        ("what is 12-7", "12-7", "5"),
        ("12 - 7 = ?", "12-7", "5"),
        ("what is 100 ÷ 8", "100/8", "12.5"),
        ("max(1, 2, 3) please", "max(1,2,3)", "3"),
        ("2+2. Thanks!", "2+2", "4"),
        ("What is SQRT(81) + 1", "sqrt(81)+1", "10"),
    ],
)
def test_extract_finds_the_expression_in_a_natural_turn(text: str, expression: str, result: str) -> None:
    tool = Calculator()
    assert tool.extract(_turn(text)) == {"expression": expression}
    assert tool.serves(_turn(text))
    assert tool.invoke(tool.extract(_turn(text))) == f"{expression} = {result}"


@pytest.mark.parametrize(
    "text",
    [
        "Where is my order #W2611340?",
        "my zip is 10083",
        "I bought 2 shirts",
        "Hi, I need help",
        "delivery in 3-5 days?",  # a range, not a subtraction
        "it was placed on 12/25/2024",  # a date
        "is the rug 5x7?",  # a size
        "my phone is 555-123-4567",
        "I got 50% off",
        "50% of my order is missing",
        "I called 3 times 4 days ago",
        "buy 2, get 1 free",
        "order #W123-456",
        "",
        "x" * 10_000,
    ],
)
def test_no_arithmetic_no_expression(text: str) -> None:
    assert Calculator().extract(_turn(text)) == {}
    assert not Calculator().serves(_turn(text))


@pytest.mark.parametrize(
    "text", ["1" * 8000, "1," * 4000, "1 x " * 2000, "(1" * 4000, "1 % of " * 1000, "sqrt(" * 1500]
)
def test_scanning_long_turns_is_quick(text: str) -> None:
    started = time.perf_counter()
    Calculator().serves(_turn(text))
    Calculator().extract(_turn(text))
    assert time.perf_counter() - started < TIME_BOUND_S


HOSTILE = [
    ("9**9**9**9", "too large"),
    ("(" * 10000 + "1" + ")" * 10000, "too long"),
    ("__import__('os')", "'__import__' is not allowed"),
    ("().__class__", "attribute access"),
    ("a.b", "attribute access"),
    ("x[0]", "indexing"),
    ("x", "the name 'x' is not allowed"),
    ("factorial(100000)", "factorial"),
    ("factorial(2.5)", "whole number"),
    ("10**10**10", "too large"),
    ("2^10^10", "too large"),
    ("(10**1000)*(10**1000)*(10**1000)*(10**1000)", "too large"),
    ("1e308*10", "too large"),
    ("1e999", "too large"),
    ("exp(1000)", "too large"),
    ("10**400/3", "too large"),
    ("round(5, -10**9)", "round"),
    ("1/0", "division by zero"),
    ("1%0", "division by zero"),
    ("0**-1", "division by zero"),
    ("sqrt(-1)", "sqrt(-1) is not defined"),
    ("log(0)", "log(0) is not defined"),
    ("(-8)**0.5", "fractional power"),
    ("'a'*10", "text is not allowed"),
    ("[1]*10", "lists are not allowed"),
    ("lambda: 1", "lambda"),
    ("max(*[1,2])", "unpacking"),
    ("max(1, key=abs)", "keyword arguments"),
    ("min()", "min takes"),
    ("sqrt", "is a function"),
    ("(1)(2)", "not allowed"),
    ("True+1", "True/False"),
    ("2j", "complex"),
    ("1<2", "comparisons"),
    ("1 if 1 else 2", "if/else"),
    ("~1", "operator ~"),
    ("[x for x in ()]", "comprehensions"),
    ("-" * 499 + "1", "too complex"),
    ("1 2", "not a valid"),
    ("\x00", "not a valid"),
    ("", "empty"),
    ("1+" * 300 + "1", "too long"),  # 601 characters
]


@pytest.mark.parametrize(("expression", "message"), HOSTILE)
def test_hostile_input_is_refused_quickly(expression: str, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ToolException) as raised:
        Calculator()._run(expression)
    assert time.perf_counter() - started < TIME_BOUND_S
    assert message in str(raised.value)


@pytest.mark.parametrize("expression", ["(" * 10_000 + "1" + ")" * 10_000, "-" * 100_000 + "1", "1+" * 100_000 + "1"])
def test_deep_nesting_fails_cleanly_even_past_the_length_limit(
    expression: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calculator, "MAX_EXPRESSION_CHARS", 10**6)  # reach the parser and the walker
    started = time.perf_counter()
    with pytest.raises(ToolException):
        evaluate(expression)
    assert time.perf_counter() - started < TIME_BOUND_S


def test_invoked_through_langchain() -> None:
    assert Calculator().invoke({"expression": "2+2"}) == "2+2 = 4"
    with pytest.raises(ToolException, match="division by zero"):
        Calculator().invoke({"expression": "1/0"})
    with pytest.raises(ValidationError):  # the schema caps the length before the tool runs
        Calculator().invoke({"expression": "1+" * 300 + "1"})


def test_conforms_to_the_plugin_contract(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, cache_dir=tmp_path)
    (tool,) = make_tools(settings)
    assert isinstance(tool, Calculator)
    assert tool_problems(tool) == []
    assert not tool.intents
    (loaded,) = check_plugin("calculator", samples=[({"expression": "12*7"}, "= 84")], settings=settings)
    assert loaded.name == "calculator"
