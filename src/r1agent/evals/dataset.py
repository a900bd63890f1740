"""Eval cases are data: typed, validated, and loaded from JSONL or YAML with errors that name the line.

A case is one conversation (the customer's turns, sent in order on one fresh thread) and what the
agent should do on its *last* turn: the intent, the tool call (name and a subset of its arguments),
facts the answer must contain, strings it must never contain, whether it should hand off, and
whether it should refuse or ask for something missing. Anything left unset is not scored, except
``tool``: unset means "no tool should be called" (a tool call where none belongs is a mistake too).

``r1agent eval schema`` prints the JSON schema of a case, for editors and other tools.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from r1agent.errors import InputError, NotFoundError

MAX_SUITE_BYTES = 50_000_000
MAX_CASES = 20_000
MAX_TURNS = 20
MAX_TURN_CHARS = 8000
"""The agent's own default limit (R1AGENT_MAX_TURN_CHARS): a longer turn could never be answered."""
MAX_ATTACHMENTS = 8
MAX_FACTS = 20
MAX_FACT_CHARS = 500

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Fact = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_FACT_CHARS)]
Scalar = str | int | float | bool | None
HandoffReason = Literal["requested", "out_of_scope", "low_quality"]


class _Strict(BaseModel):
    # A typo in a field name ("fact" for "facts") must fail loudly, not silently score nothing.
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerTurn(_Strict):
    text: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_TURN_CHARS)] = ""
    attachments: list[Annotated[str, StringConstraints(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=MAX_ATTACHMENTS
    )
    """Image or audio files, relative to the suite file (absolute paths work too)."""

    @model_validator(mode="after")
    def _not_empty(self) -> CustomerTurn:
        if not self.text and not self.attachments:
            raise ValueError("a turn needs text or at least one attachment")
        return self


class ToolExpectation(_Strict):
    name: Name
    args: dict[Name, Scalar] = Field(default_factory=dict, max_length=50)
    """A subset of the call's arguments that must match (strings compare case-insensitively)."""
    error: Fact | None = None
    """The tool is expected to refuse: its error must contain this text (case-insensitive)."""


class Expect(_Strict):
    intent: Name | None = None
    """The intent label the classifier should give the last turn; None: not scored."""
    tool: ToolExpectation | None = None
    """The tool the last turn should call; None: no tool should be called."""
    facts: list[Fact] = Field(default_factory=list, max_length=MAX_FACTS)
    """Every one must appear in the answer (case-insensitive)."""
    forbidden: list[Fact] = Field(default_factory=list, max_length=MAX_FACTS)
    """None may appear in the answer or the draft (another customer's data, a leaked secret)."""
    handoff: bool | None = None
    """True: a human should take over; False: the agent should answer itself; None: either is fine."""
    handoff_reason: HandoffReason | None = None
    refusal: Literal["clarify", "decline"] | None = None
    """``clarify``: the agent asks for something missing instead of calling a tool; ``decline``: the
    tool refuses (another customer's order, an impossible argument) and nothing leaks."""

    @model_validator(mode="after")
    def _consistent(self) -> Expect:
        if self.handoff_reason is not None and self.handoff is not True:
            raise ValueError("handoff_reason needs handoff: true")
        if self.refusal is not None and self.tool is None:
            raise ValueError(f"refusal {self.refusal!r} needs the tool that should refuse or ask (expect.tool)")
        if self.tool is not None and self.tool.error is not None and self.refusal != "decline":
            raise ValueError("tool.error (an expected tool refusal) needs refusal: decline")
        return self


class Case(_Strict):
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/@#-]{0,159}$")]
    turns: list[CustomerTurn] = Field(min_length=1, max_length=MAX_TURNS)
    customer_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    """The signed-in customer for the whole conversation (the run's Context.customer_id)."""
    expect: Expect = Field(default_factory=Expect)
    tags: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]] = Field(
        default_factory=list, max_length=20
    )
    source: Annotated[str, StringConstraints(max_length=300)] = ""
    """Where the case came from (e.g. ``tasks_train.json#12``), for people reading a failure."""


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    cases: tuple[Case, ...]

    @property
    def base_dir(self) -> Path:
        """Attachment paths in the cases are relative to this folder."""
        return self.path.parent

    def select(self, *, tags: list[str] | None = None, limit: int | None = None) -> Suite:
        """The cases carrying any of ``tags`` (all when None), then the first ``limit`` of them."""
        if limit is not None and limit < 1:
            raise InputError("--limit must be at least 1")
        cases = [c for c in self.cases if not tags or set(tags) & set(c.tags)]
        if not cases:
            known = sorted({t for c in self.cases for t in c.tags})
            raise InputError(f"no case in {self.name} has the tag(s) {', '.join(tags or [])}; tags: {', '.join(known)}")
        return Suite(self.name, self.path, tuple(cases[:limit]))


def case_schema() -> dict[str, Any]:
    """The JSON schema of one case (one JSONL line, or one item of a YAML list)."""
    schema = Case.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "r1agent eval case"
    return schema


def default_suite_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("r1agent.evals") / "data" / "retail.jsonl"))


def load_suite(path: Path | None = None) -> Suite:
    """Cases from a ``.jsonl`` file (one case a line; blank lines and ``#`` comments skipped) or a
    ``.yaml`` file (a list of cases, or ``{cases: [...]}``). Raises :class:`InputError` naming the line."""
    path = path or default_suite_path()
    if not path.is_file():
        raise NotFoundError(f"no such suite file: {path}")
    size = path.stat().st_size
    if size > MAX_SUITE_BYTES:
        raise InputError(f"{path}: {size:,} bytes; a suite may have at most {MAX_SUITE_BYTES:,}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        items = list(_jsonl_items(path, text))
    elif suffix in {".yaml", ".yml"}:
        items = _yaml_items(path, text)
    else:
        raise InputError(f"{path}: a suite is a .jsonl or .yaml file, not {suffix or 'a file without suffix'}")
    if not items:
        raise InputError(f"{path}: no cases")
    if len(items) > MAX_CASES:
        raise InputError(f"{path}: {len(items):,} cases; a suite may have at most {MAX_CASES:,}")
    cases: list[Case] = []
    first_line: dict[str, int] = {}
    for line, data in items:
        try:
            case = Case.model_validate(data)
        except ValidationError as exc:
            raise InputError(f"{path}:{line}: invalid case: {_errors(exc)}") from None
        if case.id in first_line:
            raise InputError(f"{path}:{line}: duplicate case id {case.id!r} (first on line {first_line[case.id]})")
        first_line[case.id] = line
        cases.append(case)
    return Suite(path.stem, path, tuple(cases))


def _jsonl_items(path: Path, text: str) -> list[tuple[int, Any]]:
    items: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            items.append((number, json.loads(stripped)))
        except (json.JSONDecodeError, RecursionError) as exc:
            why = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise InputError(f"{path}:{number}: not valid JSON: {why}") from None
    return items


def _yaml_items(path: Path, text: str) -> list[tuple[int, Any]]:
    try:
        # compose() keeps each node's line; safe_load() gives the values. Both are the safe loader.
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if isinstance(data, dict) and isinstance(root, yaml.MappingNode):
        data = data.get("cases")
        root = next((v for k, v in root.value if k.value == "cases"), None)
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        raise InputError(f"{path}: expected a list of cases (or a mapping with a 'cases' list)")
    return [(node.start_mark.line + 1, item) for node, item in zip(root.value, data, strict=True)]


def _errors(exc: ValidationError, limit: int = 3) -> str:
    shown = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(p) for p in error["loc"]) or "case"
        shown.append(f"{where}: {error['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")
