"""The built-in ``calculator`` tool: one arithmetic expression in, ``"expression = result"`` out.

Why an AST walker: the expression comes from a customer's message, so it is hostile until proven
otherwise. ``eval`` (even with empty builtins) can reach ``().__class__.__mro__`` and from there
anything; so the text is parsed with ``ast.parse(..., mode="eval")`` and only a small table of node
kinds is interpreted by hand. Nothing is ever compiled to code or executed.

Allowed: int and float literals; ``+ - * / // % **`` (``^`` is read as ``**``); unary ``+``/``-``;
parentheses; the functions ``sqrt abs round min max log log10 exp sin cos tan floor ceil factorial``
(``log(x)`` is natural, ``log(x, base)`` any base; angles in radians) and the constants ``pi`` and ``e``.
Anything else (names, attributes, indexing, other calls, text, lists, comprehensions, lambdas, keyword
arguments, ``*`` unpacking, comparisons) is refused with a :class:`ToolException` that names it.

Limits, so that hostile input costs milliseconds and little memory:

- the expression: at most :data:`MAX_EXPRESSION_CHARS` characters and :data:`MAX_NODES` syntax nodes,
  nested at most :data:`MAX_DEPTH` deep (deeper parses fail cleanly; ``RecursionError``,
  ``MemoryError`` and ``SyntaxError`` become a ``ToolException``);
- every intermediate result: an int of at most about :data:`MAX_INT_DIGITS` digits (checked by bit
  length; room for ``1000!``) or a finite float below :data:`MAX_FLOAT` in magnitude. ``**`` estimates
  the size of its result (``exponent * log10(|base|)``) *before* computing it, so ``9**9**9**9`` is
  refused at once, and an int product is bounded by its operands' bit lengths before it is taken;
- ``factorial`` takes integers 0 to :data:`MAX_FACTORIAL`; ``round``'s digits are within
  :data:`MAX_ROUND_DIGITS`;
- division by zero, overflow and math domain errors become plain words ("division by zero",
  "sqrt(-1) is not defined").

Results: ints print in full; floats rounded to :data:`SIGNIFICANT_DIGITS` significant digits without
trailing zeros (``15/100*80 = 12``, ``1/3 = 0.3333333333``).

Finding the expression in a turn (:meth:`Calculator.extract`) is pattern work: ``x``/``×``/"times" ->
``*``, ``÷``/"divided by" -> ``/``, ``^`` -> ``**``, ``15% of 80`` -> ``15/100*80``, ``20% off 50`` ->
``50*(1-20/100)``, ``59.99 + 8%`` -> ``59.99*(1+8/100)``, "square root of 16" -> ``sqrt(16)``; currency
signs and thousands separators are dropped. Order ids (``#W2611340``), zip codes and lone numbers are
not arithmetic. Because ranges, dates and sizes look like sums (``3-5 days``, ``12/25``, ``5x7 rug``),
an expression whose only operators are ``-``, ``/``, ``x`` or words counts only after a cue ("what is",
"how much is", "calculate", ...) or before ``=``.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from langchain_core.tools import ToolException
from pydantic import BaseModel, Field

from r1agent.tools.base import AgentTool, Turn

if TYPE_CHECKING:
    from r1agent.settings import Settings

Number: TypeAlias = int | float

MAX_EXPRESSION_CHARS: Final = 500
MAX_NODES: Final = 500
"""Syntax nodes (operators count too): ``1+2`` is 5 (Expression, BinOp, two Constants, Add)."""
MAX_DEPTH: Final = 100
MAX_INT_DIGITS: Final = 3000
MAX_FLOAT: Final = 1e300
MAX_FACTORIAL: Final = 1000
MAX_ROUND_DIGITS: Final = 100
SIGNIFICANT_DIGITS: Final = 10

_MAX_INT_BITS: Final = math.ceil(MAX_INT_DIGITS * math.log2(10))
_TOO_LARGE: Final = "the result is too large"
_ALLOWED_HELP: Final = (
    "only numbers, + - * / // % **, parentheses, pi, e and the functions "
    "sqrt, abs, round, min, max, log, log10, exp, sin, cos, tan, floor, ceil and factorial are allowed"
)


# --- evaluation ------------------------------------------------------------------------------------


def _factorial(x: Number) -> int:
    if isinstance(x, float):
        if not x.is_integer():
            raise ToolException(f"factorial needs a whole number, not {format_number(x)}")
        x = int(x)
    if not 0 <= x <= MAX_FACTORIAL:
        raise ToolException(f"factorial is only computed for whole numbers from 0 to {MAX_FACTORIAL}")
    return math.factorial(x)


def _round(x: Number, digits: Number | None = None) -> Number:
    if digits is None:
        return round(x)
    if isinstance(digits, float):
        if not digits.is_integer():
            raise ToolException("round needs a whole number of digits")
        digits = int(digits)
    if abs(digits) > MAX_ROUND_DIGITS:
        raise ToolException(f"round takes at most {MAX_ROUND_DIGITS} digits")
    return round(x, digits)


def _min(*args: Number) -> Number:
    return min(args)


def _max(*args: Number) -> Number:
    return max(args)


@dataclass(frozen=True)
class _Function:
    call: Callable[..., Number]
    min_args: int
    max_args: int


_FUNCTIONS: Final[dict[str, _Function]] = {
    "sqrt": _Function(math.sqrt, 1, 1),
    "abs": _Function(abs, 1, 1),
    "round": _Function(_round, 1, 2),
    "min": _Function(_min, 1, MAX_NODES),
    "max": _Function(_max, 1, MAX_NODES),
    "log": _Function(math.log, 1, 2),
    "log10": _Function(math.log10, 1, 1),
    "exp": _Function(math.exp, 1, 1),
    "sin": _Function(math.sin, 1, 1),
    "cos": _Function(math.cos, 1, 1),
    "tan": _Function(math.tan, 1, 1),
    "floor": _Function(math.floor, 1, 1),
    "ceil": _Function(math.ceil, 1, 1),
    "factorial": _Function(_factorial, 1, 1),
}
_CONSTANTS: Final[dict[str, float]] = {"pi": math.pi, "e": math.e}

_BINARY_OPERATORS: Final[dict[type[ast.operator], str]] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_OTHER_OPERATORS: Final[dict[type[ast.AST], str]] = {
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
    ast.Not: "not",
}
_REFUSED: Final[dict[type[ast.AST], str]] = {
    ast.Attribute: "attribute access (.) is",
    ast.Subscript: "indexing or slicing ([ ]) is",
    ast.Lambda: "lambda functions are",
    ast.List: "lists are",
    ast.Tuple: "tuples are",
    ast.Set: "sets are",
    ast.Dict: "dictionaries are",
    ast.ListComp: "comprehensions are",
    ast.SetComp: "comprehensions are",
    ast.DictComp: "comprehensions are",
    ast.GeneratorExp: "comprehensions are",
    ast.Starred: "unpacking with * is",
    ast.keyword: "keyword arguments are",
    ast.JoinedStr: "text is",
    ast.FormattedValue: "text is",
    ast.Compare: "comparisons are",
    ast.BoolOp: "and/or is",
    ast.IfExp: "if/else is",
    ast.NamedExpr: "assignments are",
    ast.Await: "await is",
    ast.Yield: "yield is",
    ast.YieldFrom: "yield is",
    ast.Slice: "slices are",
}
_ALLOWED_NODES: Final[tuple[type[ast.AST], ...]] = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.UAdd,
    ast.USub,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    *_BINARY_OPERATORS,
)


def _refuse(what: str) -> ToolException:
    return ToolException(f"{what} not allowed in a calculation: {_ALLOWED_HELP}")


def _describe_constant(value: object) -> str:
    if isinstance(value, str | bytes):
        return "text is"
    if isinstance(value, bool):
        return "True/False are"
    if isinstance(value, complex):
        return "complex numbers are"
    return f"the value {value!r} is"


def _parse(text: str) -> ast.Expression:
    """Parse and check ``text``: every node must be one the evaluator knows, within the limits."""
    try:
        tree = ast.parse(text, mode="eval")
    except (RecursionError, MemoryError) as exc:
        raise ToolException("the expression is nested too deeply") from exc
    except (SyntaxError, ValueError) as exc:
        raise ToolException(f"{text[:60]!r} is not a valid arithmetic expression") from exc
    for count, node in enumerate(ast.walk(tree), 1):  # iterative: deep trees cannot overflow the stack here
        if count > MAX_NODES:
            raise ToolException(f"the expression is too complex (at most {MAX_NODES} parts)")
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _refuse(_describe_constant(value))
        elif isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS):
                name = node.func.id if isinstance(node.func, ast.Name) else None
                raise _refuse(f"the function {name!r} is" if name else "calling this is")
        elif isinstance(node, ast.Name):
            if node.id not in _FUNCTIONS and node.id not in _CONSTANTS:
                raise _refuse(f"the name {node.id!r} is")
        elif type(node) in _OTHER_OPERATORS:
            raise _refuse(f"the operator {_OTHER_OPERATORS[type(node)]} is")
        elif not isinstance(node, _ALLOWED_NODES):
            raise _refuse(_REFUSED.get(type(node), f"{type(node).__name__} expressions are"))
    return tree


def _checked(value: object) -> Number:
    """``value`` if it is a real number within the limits; else a ToolException."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolException("the result is not a real number")
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:
            raise ToolException(f"{_TOO_LARGE} (at most {MAX_INT_DIGITS} digits)")
    elif not (math.isfinite(value) and abs(value) < MAX_FLOAT):
        raise ToolException(f"{_TOO_LARGE} (at most {MAX_FLOAT:g})")
    return value


def _power(base: Number, exponent: Number) -> Number:
    """``base ** exponent``, refused *before* computing when the result would be too large."""
    if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0:
        if exponent == 0 or base in (0, 1, -1):
            small: int = base**exponent
            return small
        # |base| >= 2, so the result has at least `exponent` bits: bound it before taking logs.
        if exponent > _MAX_INT_BITS or exponent * math.log10(abs(base)) >= MAX_INT_DIGITS:
            raise ToolException(f"{_TOO_LARGE} (at most {MAX_INT_DIGITS} digits)")
        power: int = base**exponent
        return power
    b, x = float(base), float(exponent)  # OverflowError for a huge int: reported as too large
    if b == 0 and x < 0:
        raise ZeroDivisionError
    if b < 0 and not x.is_integer():
        raise ToolException("a negative number cannot be raised to a fractional power")
    if b not in (0.0, 1.0, -1.0) and x * math.log10(abs(b)) >= math.log10(MAX_FLOAT):
        raise ToolException(f"{_TOO_LARGE} (at most {MAX_FLOAT:g})")
    return math.pow(b, x)


def _binary(op: ast.operator, left: Number, right: Number) -> Number:
    if isinstance(op, ast.Add):
        return left + right
    if isinstance(op, ast.Sub):
        return left - right
    if isinstance(op, ast.Mult):
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and left.bit_length() + right.bit_length() > _MAX_INT_BITS + 1
        ):
            raise ToolException(f"{_TOO_LARGE} (at most {MAX_INT_DIGITS} digits)")
        return left * right
    if isinstance(op, ast.Div):
        return left / right
    if isinstance(op, ast.FloorDiv):
        return left // right
    if isinstance(op, ast.Mod):
        return left % right
    if isinstance(op, ast.Pow):
        return _power(left, right)
    raise _refuse(f"the operator {type(op).__name__} is")  # unreachable after _parse


def _call(name: str, args: list[Number]) -> Number:
    function = _FUNCTIONS[name]
    if not function.min_args <= len(args) <= function.max_args:
        wanted = (
            str(function.min_args)
            if function.min_args == function.max_args
            else f"{function.min_args} to {function.max_args}"
        )
        raise ToolException(f"{name} takes {wanted} argument{'s' if wanted != '1' else ''}, not {len(args)}")
    shown = f"{name}({', '.join(format_number(a) for a in args)})"
    if len(shown) > 60:
        shown = f"{name}(...)"
    try:
        return function.call(*args)
    except ToolException:
        raise
    except ZeroDivisionError as exc:
        raise ToolException(f"{shown} divides by zero") from exc
    except OverflowError as exc:
        raise ToolException(f"the result of {shown} is too large") from exc
    except (ValueError, TypeError) as exc:
        raise ToolException(f"{shown} is not defined") from exc


def _evaluate(node: ast.AST, depth: int = 0) -> Number:
    if depth > MAX_DEPTH:
        raise ToolException(f"the expression is nested too deeply (at most {MAX_DEPTH} levels)")
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, depth + 1)
    if isinstance(node, ast.Constant):
        return _checked(node.value)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolException(f"{node.id} is a function: write {node.id}(...)")
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, depth + 1)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return +operand
    if isinstance(node, ast.BinOp):
        left = _evaluate(node.left, depth + 1)
        right = _evaluate(node.right, depth + 1)
        return _checked(_binary(node.op, left, right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        args = [_evaluate(arg, depth + 1) for arg in node.args]
        return _checked(_call(node.func.id, args))
    raise _refuse(f"{type(node).__name__} is")  # unreachable after _parse


def evaluate(expression: str) -> Number:
    """The value of one arithmetic expression (see the module docstring for what is allowed)."""
    text = expression.strip()
    if not text:
        raise ToolException("the expression is empty")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ToolException(f"the expression is too long (at most {MAX_EXPRESSION_CHARS} characters)")
    tree = _parse(text)
    try:
        return _evaluate(tree)
    except ZeroDivisionError as exc:
        raise ToolException("division by zero") from exc
    except OverflowError as exc:
        raise ToolException(_TOO_LARGE) from exc
    except (RecursionError, MemoryError) as exc:
        raise ToolException("the expression is too complex") from exc
    except ValueError as exc:
        raise ToolException("the expression has no value (outside a function's domain)") from exc


def format_number(value: Number) -> str:
    """Ints in full; floats to SIGNIFICANT_DIGITS significant digits, without trailing zeros."""
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"  # also -0.0
    return f"{value:.{SIGNIFICANT_DIGITS}g}"


def normalise_operators(expression: str) -> str:
    """The operators people type, as Python writes them: ``×`` -> ``*``, ``÷`` -> ``/``, ``^`` -> ``**``."""
    return expression.strip().translate(_OPERATOR_SIGNS).replace("^", "**")


_OPERATOR_SIGNS: Final = str.maketrans({"×": "*", "÷": "/", "−": "-", "–": "-"})


# --- finding the expression in a turn --------------------------------------------------------------

# Private-use characters stand for operators written in ways that are often not arithmetic at all
# ("3-5 days", "12/25", "a 5x7 rug", "3 times"); they are written out as Python operators at the end.
_WEAK_MUL, _WEAK_DIV, _WEAK_ADD, _WEAK_SUB = "\ue000", "\ue001", "\ue002", "\ue003"
_WEAK_SIGNS: Final = str.maketrans({_WEAK_MUL: "*", _WEAK_DIV: "/", _WEAK_ADD: "+", _WEAK_SUB: "-"})
_WEAK: Final = _WEAK_MUL + _WEAK_DIV + _WEAK_ADD + _WEAK_SUB

_NAMES: Final = "|".join(sorted(_FUNCTIONS, key=len, reverse=True))  # log10 before log
_NUM: Final = r"(?<![\d.])(?:\d+(?:\.\d+)?|\.\d+)"  # starts only where a number starts: linear scans
_FLAGS: Final = re.IGNORECASE

_CURRENCY = re.compile(r"[$€£](?=\s?\d)")
_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?!\d|,\d)")
_ANY_CALL = re.compile(rf"\b(?:{_NAMES})\s*\(", _FLAGS)
_SQUARE_ROOT = re.compile(rf"\bsquare\s+root\s+of\s+({_NUM})", _FLAGS)
_PERCENT_OF = re.compile(rf"({_NUM})\s*%\s*of\s*({_NUM})", _FLAGS)
_PERCENT_OFF = re.compile(rf"({_NUM})\s*%\s*off\s*({_NUM})", _FLAGS)
# "59.99 + 8%" -> 59.99*(1+8/100), only when the first number starts the expression.
_PLUS_PERCENT = re.compile(rf"(?<![\w.)*/^%+-])(?<![*/^%+-]\s)({_NUM})\s*([-+])\s*({_NUM})\s*%(?!\s*[\d(.])")
_TIMES_PERCENT = re.compile(rf"([*/]\s*)({_NUM})\s*%(?!\s*[\d(.])")
_WORD_OPERATORS: Final = (
    (re.compile(r"(?<=[\d)])\s*x\s*(?=[\d(.])", _FLAGS), _WEAK_MUL),
    (re.compile(r"(?<=[\d)])\s+(?:times|multiplied\s+by)\s+(?=[-+]?[\d(.])", _FLAGS), _WEAK_MUL),
    (re.compile(r"(?<=[\d)])\s+(?:divided\s+by|over)\s+(?=[-+]?[\d(.])", _FLAGS), _WEAK_DIV),
    (re.compile(r"(?<=[\d)])\s+plus\s+(?=[-+]?[\d(.])", _FLAGS), _WEAK_ADD),
    (re.compile(r"(?<=[\d)])\s+minus\s+(?=[-+]?[\d(.])", _FLAGS), _WEAK_SUB),
)

_CONSTANT_WORD: Final = r"(?:pi|e)(?![\w(])"
_TOKEN: Final = rf"(?:{_NUM}|(?:{_NAMES})(?=\s*\()|{_CONSTANT_WORD}|\*\*|//|[-+*/%^(),{_WEAK}])"
_SPAN = re.compile(rf"(?<![\w#.]){_TOKEN}(?:[ \t]*{_TOKEN})*", _FLAGS)
_OPERAND = re.compile(rf"{_NUM}|\b{_CONSTANT_WORD}", _FLAGS)
_BINARY = re.compile(rf"(?:\d|\)|\bpi|\be)\s*(?:\*\*|//|[-+*/%^{_WEAK}])", _FLAGS)
_STRONG = re.compile(rf"\*\*|//|[+*%^]|\b(?:{_NAMES})\s*\(", _FLAGS)
_CUE = re.compile(
    r"(?:\bwhat(?:'s|’s|s|\s+is|\s+are)|\bhow\s+much\s+(?:is|are)|\bcalculate|\bcompute|\bevaluate|\bsolve"
    r"|\bwork\s+out|\bfigure\s+out)[\s:]*(?:the\s+(?:value|result|answer|sum|product)\s+of[\s:]*)?$",
    _FLAGS,
)
_EQUALS = re.compile(r"\s*=")
_EDGE_JUNK: Final = " \t,+-*/^(" + _WEAK


def _normalise_text(text: str) -> str:
    text = text.translate(_OPERATOR_SIGNS)
    text = _CURRENCY.sub("", text)
    if not _ANY_CALL.search(text):  # "max(1,200)" is ambiguous; without calls, 1,299.99 is a number
        text = _THOUSANDS.sub(lambda m: m.group().replace(",", ""), text)
    text = _SQUARE_ROOT.sub(r"sqrt(\1)", text)
    text = _PERCENT_OF.sub(r"\1/100*\2", text)
    text = _PERCENT_OFF.sub(r"\2*(1-\1/100)", text)
    text = _PLUS_PERCENT.sub(r"\1*(1\2\3/100)", text)
    text = _TIMES_PERCENT.sub(r"\1\2/100", text)
    for pattern, sign in _WORD_OPERATORS:
        text = pattern.sub(sign, text)
    return text


def _pieces(span: str) -> list[str]:
    """``span`` cut at commas outside parentheses ("2, 3 and 4" is not one expression)."""
    pieces: list[str] = []
    depth = start = 0
    for i, ch in enumerate(span):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth <= 0:
            pieces.append(span[start:i])
            start = i + 1
    pieces.append(span[start:])
    return pieces


def _tidy(piece: str) -> str | None:
    """``piece`` without dangling operators, with balanced parentheses; None for a lone percentage."""
    kept: list[str] = []
    depth = 0
    for ch in piece:
        if ch == ")":
            if depth == 0:
                continue  # a ")" closing something before the expression
            depth -= 1
        elif ch == "(":
            depth += 1
        kept.append(ch)
    text = "".join(kept).lstrip(" \t,*/^%" + _WEAK_MUL + _WEAK_DIV).rstrip(_EDGE_JUNK)
    if text.endswith("%"):
        return None  # "50% off" and the like: a percentage of nothing
    return text + ")" * (text.count("(") - text.count(")"))


def _render(piece: str) -> str:
    text = piece.translate(_WEAK_SIGNS).replace("^", "**").lower()
    text = re.sub(r"\s*([-+*/%(),])\s*", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def find_expression(text: str) -> str | None:
    """The longest arithmetic expression in a customer's ``text``, in Python syntax; None if none."""
    normal = _normalise_text(text)
    best: str | None = None
    for span in _SPAN.finditer(normal):
        offset = span.start()
        for raw in _pieces(span.group()):
            piece = _tidy(raw)
            start = normal.find(raw.strip(), offset) if raw.strip() else offset
            offset += len(raw) + 1
            if not piece or not (
                _ANY_CALL.search(piece) or (len(_OPERAND.findall(piece)) >= 2 and _BINARY.search(piece))
            ):
                continue  # a lone number, or a sign without two operands
            if not _STRONG.search(piece):  # only -, / or word operators: a range, date or size?
                before = normal[max(0, start - 60) : start]
                after = normal[start + len(raw.strip()) :]
                if not (_CUE.search(before) or _EQUALS.match(after)):
                    continue
            expression = _render(piece)
            if len(expression) > MAX_EXPRESSION_CHARS or (best is not None and len(expression) <= len(best)):
                continue
            try:
                _parse(expression)
            except ToolException:
                continue
            best = expression
    return best


# --- the tool --------------------------------------------------------------------------------------


class CalculatorArgs(BaseModel):
    expression: str = Field(
        description=(
            "One arithmetic expression, e.g. '3*19.99', '15/100*80', '(2+3)**2' or 'sqrt(16)'. Numbers, "
            "+ - * / // % ** (or ^), parentheses, pi, e and sqrt, abs, round, min, max, log, log10, exp, "
            "sin, cos, tan, floor, ceil, factorial."
        ),
        max_length=MAX_EXPRESSION_CHARS,
    )


class Calculator(AgentTool):
    name: str = "calculator"
    description: str = (
        "Compute the exact value of one arithmetic expression: totals, prices times quantities, discounts, "
        "percentages ('15% of 80' is 15/100*80), powers and square roots. Takes a single expression using "
        "numbers, + - * / // % ** (or ^), parentheses, the constants pi and e and the functions sqrt, abs, "
        "round, min, max, log (natural, or log(x, base)), log10, exp, sin, cos, tan (radians), floor, ceil, "
        "factorial. Returns 'expression = result'."
    )
    args_schema: type[BaseModel] = CalculatorArgs
    intents: frozenset[str] = frozenset()
    triggers: tuple[str, ...] = (
        r"\d\s*%\s*(?:of|off)\b",  # 15% of 80, 20% off 50
        # 12*7, 2^10, 3 x 19.99, (2+3)*4: a number, an operator, a number
        r"(?<![\w#.,])(?:\d+(?:[.,]\d+)*|pi|e)\s*(?:\*\*|//|[-+*/^%×÷x])\s*[-+]?\s*\(?\s*(?:\.?\d|pi\b|e\b)",
        rf"\b(?:{_NAMES})\s*\(",  # sqrt(16)
        r"\d\s+(?:times|multiplied\s+by|divided\s+by|over|plus|minus)\s+[-+(]*\d",  # 3 times 4
        r"\bsquare\s+root\s+of\s+\d",
    )

    def serves(self, turn: Turn) -> bool:
        # Triggers are the quick filter; a turn is served only when an expression is really there
        # (a trigger alone would take "delivery in 3-5 days" for a subtraction).
        return super().serves(turn) and find_expression(turn.text) is not None

    def extract(self, turn: Turn) -> dict[str, Any]:
        expression = find_expression(turn.text)
        return {"expression": expression} if expression else {}

    def _run(self, expression: str) -> str:
        shown = normalise_operators(expression)
        return f"{shown} = {format_number(evaluate(shown))}"

    def direct_answer(self, result: str) -> str:
        # An exact computation is the answer; a small model paraphrasing it can only add mistakes.
        return f"{result}."


def make_tools(settings: Settings) -> list[AgentTool]:
    return [Calculator()]
