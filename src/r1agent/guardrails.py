"""Guardrails: the input content filter, prompt-data escaping and output PII masking.

- :class:`ContentFilter` refuses abusive or disallowed turns (threats, requests for other customers'
  data, weapons, malware) from a word/regex list (``R1AGENT_BLOCKLIST``, default
  ``r1agent/data/blocklist.yaml``). A rule either always blocks or only blocks when the intent classifier
  also calls the turn ``out_of_scope`` ("hack into someone's account" vs "my account was hacked").
  Text is matched case-insensitively after :func:`normalize_for_matching` (NFKC, zero-width and
  format characters and combining marks removed), so "k\\u200bill" and full-width letters do not slip past,
  and again with look-alike letters of other scripts spelled in Latin (:func:`fold_confusables`: "kіll"
  with a Cyrillic "і").
- :func:`escape_data` / :func:`neutralize_tags` keep retrieved text, tool results and OCR text from
  forging the prompt's ``<sources>`` / ``<tool_results>`` delimiters or the chat template's special tokens.
- :func:`mask_foreign_pii` masks, in an answer, the personal data that is not the signed-in customer's
  (reusing :func:`r1agent.privacy.mask_pii`: one masker for logs, traces and answers).

See docs/guardrails.md for the design and the reasons behind it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from r1agent.errors import ConfigurationError
from r1agent.intents.taxonomy import OUT_OF_SCOPE
from r1agent.privacy import PLACEHOLDERS, mask_pii
from r1agent.state import Intent, State

MAX_PATTERNS = 500
MAX_PATTERN_CHARS = 300
MAX_MATCH_CHARS = 50_000
"""The filter reads at most this much normalised text (turns are already capped by ``max_turn_chars``;
NFKC may lengthen a text, this bounds the regex work whatever the settings)."""

REFUSAL = (
    "Sorry, I can't help with that request. I'm here for questions about your orders, our products, "
    "returns and your account; if something has gone wrong, tell me what happened and I'll help or pass "
    "it to a colleague."
)
"""What a blocked turn gets: polite, the same for every rule (it does not teach how to get around it)."""

Action = Literal["block", "out_of_scope"]

# Nested quantifiers ("(a+)+", "(\w*)*", "(x|y+){2,}") can backtrack exponentially: refused at load.
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)[+*{]")
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()))


@dataclass(frozen=True)
class Rule:
    name: str
    action: Action
    """``block``: always refused; ``out_of_scope``: refused only when the classifier agrees."""
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Verdict:
    """Why a turn is refused: the rule's name only, never the matched text (it may hold PII)."""

    rule: str
    action: Action

    @property
    def reason(self) -> str:
        agreed = " and the intent classifier's out_of_scope" if self.action == "out_of_scope" else ""
        return f"refused by the content filter (rule {self.rule!r}{agreed})"


def normalize_for_matching(text: str) -> str:
    """The text the filter's patterns see: NFKC (full-width and ligature letters become plain ones),
    no format characters (zero-width spaces and joiners, bidi overrides, soft hyphens), no combining
    marks ("k̷i̷l̷l̷", "kíll"), no NULs, whitespace runs collapsed, case-folded."""
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text[: MAX_MATCH_CHARS * 2]))
    kept = "".join(ch for ch in decomposed if unicodedata.category(ch) not in {"Cf", "Mn", "Me", "Cc"} or ch in "\n\t")
    return " ".join(unicodedata.normalize("NFC", kept).casefold().split())[:MAX_MATCH_CHARS]


# Letters of other scripts that look like Latin ones (after case folding: an upper-case lookalike such as
# Cyrillic "В" or "Н" folds to "в" / "н", so those map to the Latin letter the upper case imitates). A curated
# subset of Unicode's confusables (TR39) for the Cyrillic, Greek, Armenian and IPA letters seen in spoofing.
CONFUSABLES = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "b", "е": "e", "ё": "e", "һ": "h", "н": "h", "і": "i", "ї": "i", "ј": "j", "к": "k",
        "ӏ": "l", "м": "m", "п": "n", "о": "o", "р": "p", "ԛ": "q", "г": "r", "ѕ": "s", "т": "t", "у": "y",
        "ү": "y", "х": "x", "ԁ": "d", "ԝ": "w", "с": "c", "ɡ": "g",
        # Greek
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
        "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j", "ζ": "z", "γ": "y",
        # Armenian, IPA and dotless letters
        "օ": "o", "ս": "u", "հ": "h", "ո": "n", "ı": "i", "ɩ": "i", "ɑ": "a", "ʏ": "y",
    }
)  # fmt: skip
_WORD = re.compile(r"[^\W\d_]+")
_LATIN = re.compile(r"[a-z]")
# Digits and symbols standing for the letters they resemble ("k1ll", "b0mb", "m@lw@re", "$pyware", "k!ll"), read
# only in words that mix them with letters: "1" and "|" read as "i" and, in a second spelling, as "l" ("ki11").
# Numbers alone stay numbers. A symbol belongs to a word only before a letter or digit ("|" after one too: "ki||"),
# so the "!" that ends a sentence is left where it is.
_DISGUISES_AS = {one: str.maketrans("013457@$!|", f"o{one}eastas{one}{one}") for one in "il"}
_DISGUISED_WORD = re.compile(r"(?:[^\W_]|[@$!|]+(?=[^\W_])|(?<=[^\W_])\|+)+")


def fold_confusables(normalized: str) -> str:
    """``normalized`` (see :func:`normalize_for_matching`) with look-alike letters spelled in Latin, in the
    words that are spoofs: a word mixing Latin letters with look-alikes ("kіll" with a Cyrillic "і"), or made
    only of look-alikes ("ѕеlесt"). Other words, Russian or Greek ones included, stay as they are."""

    def fold(match: re.Match[str]) -> str:
        word = match.group()
        folded = word.translate(CONFUSABLES)
        if folded == word:
            return word
        spoof = _LATIN.search(word) is not None or folded.isascii()
        return folded if spoof else word

    return _WORD.sub(fold, normalized)


def fold_disguises(normalized: str, one: str = "i") -> str:
    """``normalized`` with digits and symbols read as letters in the words that mix them with letters ("k1ll",
    "k!ll" -> "kill"; "m@lw@re" -> "malware"); ``one``: the letter "1" and "|" stand for ("i" or "l"). "2nd",
    "#w7678072", "$54.04" and plain numbers read the same to every rule that matched them before, because the
    filter matches this spelling as well as, not instead of, the text."""
    table = _DISGUISES_AS[one]

    def fold(match: re.Match[str]) -> str:
        word = match.group()
        mixed = any(ch.isalpha() for ch in word) and not word.isalpha()
        return word.translate(table) if mixed else word

    return _DISGUISED_WORD.sub(fold, normalized)


def spellings(normalized: str) -> tuple[str, ...]:
    """Every spelling of a turn the filter matches: as normalised, with look-alike letters in Latin, and with
    digits and symbols read as letters (1 and | as i, then as l). The original stays, so rules in other scripts
    keep matching."""
    folded = fold_confusables(normalized)
    return tuple(dict.fromkeys((normalized, folded, fold_disguises(folded, "i"), fold_disguises(folded, "l"))))


class ContentFilter:
    """Compiled once (at :func:`r1agent.deps.build_deps`), then only matched."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)

    @classmethod
    def load(cls, path: Path | None = None) -> ContentFilter:
        """Rules from a YAML file (see ``r1agent/data/blocklist.yaml``) or a text file with one regex a
        line (``#`` comments; every line blocks); None: the shipped default list."""
        if path is None:
            text = resources.files("r1agent.data").joinpath("blocklist.yaml").read_text(encoding="utf-8")
            return cls(parse_rules(yaml.safe_load(text), where="the default blocklist"))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"R1AGENT_BLOCKLIST: cannot read {path}: {exc.strerror or exc}") from exc
        if path.suffix.lower() in {".yaml", ".yml"}:
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ConfigurationError(f"R1AGENT_BLOCKLIST: {path} is not valid YAML: {exc}") from exc
            return cls(parse_rules(data, where=str(path)))
        lines = [line.strip() for line in text.splitlines()]
        patterns = [line for line in lines if line and not line.startswith("#")]
        return cls(parse_rules({"rules": [{"name": path.stem, "patterns": patterns}]}, where=str(path)))

    def check(self, text: str, intent: Intent | None = None, *, intent_threshold: float = 0.5) -> Verdict | None:
        """The first rule the turn breaks, or None. ``out_of_scope`` rules need the classifier's agreement
        at ``intent_threshold`` (the same bar that hands an out-of-scope turn to a human)."""
        texts = spellings(normalize_for_matching(text))
        classified_out = (
            intent is not None and intent["label"] == OUT_OF_SCOPE and intent["confidence"] >= intent_threshold
        )
        for rule in self.rules:
            if rule.action == "out_of_scope" and not classified_out:
                continue
            if any(rule.pattern.search(t) for t in texts):
                return Verdict(rule=rule.name, action=rule.action)
        return None


def parse_rules(data: Any, *, where: str) -> list[Rule]:
    """Checked rules from the blocklist's parsed YAML: a clear error for anything unusable."""

    def bad(problem: str) -> ConfigurationError:
        return ConfigurationError(f"blocklist {where}: {problem}")

    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise bad("expected a mapping with a 'rules' list")
    rules: list[Rule] = []
    count = 0
    for i, entry in enumerate(data["rules"], start=1):
        if not isinstance(entry, dict):
            raise bad(f"rule {i} is not a mapping")
        name = str(entry.get("name") or f"rule-{i}")
        action = entry.get("action", "block")
        if action not in ("block", "out_of_scope"):
            raise bad(f"rule {name!r}: action must be 'block' or 'out_of_scope', not {action!r}")
        patterns = entry.get("patterns")
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise bad(f"rule {name!r}: 'patterns' must be a non-empty list of strings")
        count += len(patterns)
        if count > MAX_PATTERNS:
            raise bad(f"more than {MAX_PATTERNS} patterns")
        for pattern in patterns:
            if len(pattern) > MAX_PATTERN_CHARS:
                raise bad(f"rule {name!r}: a pattern is longer than {MAX_PATTERN_CHARS} characters")
            if _NESTED_QUANTIFIER.search(pattern):
                raise bad(f"rule {name!r}: nested quantifiers can backtrack without end: {pattern!r}")
        try:
            # One alternation per rule: one scan of the text per rule, not per pattern.
            compiled = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
        except re.error as exc:
            raise bad(f"rule {name!r}: invalid regular expression: {exc}") from exc
        rules.append(Rule(name=name, action=action, pattern=compiled))
    return rules


# --- prompt data ---

_TAG_START = re.compile(r"<(?=\s*/?\s*[A-Za-z_|｜!])")


def escape_data(text: str) -> str:
    """Text that goes into the prompt as data (documents, tool results): no ``<`` or ``>`` survives, so
    it can close no block (``</sources>``), open no trace (``<think>``) and spell no chat-template token
    (``<|im_start|>``, which a tokenizer would otherwise read as the real control token)."""
    return text.replace("<", "&lt;").replace(">", "&gt;")


def neutralize_tags(text: str) -> str:
    """The customer's own words: only what starts a tag or a special token is escaped ("a < b" stays)."""
    return _TAG_START.sub("&lt;", text)


# --- output PII ---


def pii_values(text: str) -> list[tuple[str, str]] | None:
    """``(placeholder, original)`` for each piece of ``text`` that :func:`mask_pii` masks, in order;
    None when the masked text cannot be lined up with the original (the caller then masks all)."""
    masked = mask_pii(text)
    if masked == text:
        return []
    literals = _PLACEHOLDER.split(masked)
    holders = _PLACEHOLDER.findall(masked)
    if not text.startswith(literals[0]):
        return None
    found: list[tuple[str, str]] = []
    pos = len(literals[0])
    for i, holder in enumerate(holders):
        after = literals[i + 1]
        last = i == len(holders) - 1
        end = len(text) - len(after) if last else (text.find(after, pos + 1) if after else -1)
        if end <= pos or (last and not text.endswith(after)):
            return None
        found.append((holder, text[pos:end]))
        pos = end + len(after)
    return found


def _key(value: str) -> str:
    """PII compared by its letters and digits: "(555) 123-4567" and "555.123.4567" are the same phone."""
    return "".join(ch for ch in value.casefold() if ch.isalnum())


def customer_owned(state: State, customer: str | None) -> list[str]:
    """The texts whose PII the signed-in customer may see: their own words (typed, heard, read from their
    images), this turn's tool results (the order tools only return their own orders) and their id."""
    return [state.get("text", ""), *(c["result"] or "" for c in state.get("tool_calls") or []), customer or ""]


def mask_foreign_pii(text: str, allowed: Iterable[str]) -> str:
    """``text`` with every e-mail, card, phone, street address and customer id masked unless the same
    value occurs in one of the ``allowed`` texts (the customer's own words, their tool results)."""
    pieces = pii_values(text)
    if not pieces:
        return text if pieces == [] else mask_pii(text)
    keys: set[str] = set()
    for source in allowed:
        keys.update(_key(value) for _, value in pii_values(source) or [])
    masked = mask_pii(text)
    values = iter(pieces)
    return _PLACEHOLDER.sub(lambda m: _keep_if_allowed(next(values), keys), masked)


def _keep_if_allowed(piece: tuple[str, str], keys: set[str]) -> str:
    holder, value = piece
    return value if _key(value) in keys else holder
