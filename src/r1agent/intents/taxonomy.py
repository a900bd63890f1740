"""An intent taxonomy is data: labelled example utterances in YAML or CSV (``text,label``)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from r1agent.errors import ConfigurationError

OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True)
class Taxonomy:
    examples: tuple[tuple[str, str], ...]
    """(text, label) pairs."""
    descriptions: dict[str, str] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return sorted({label for _, label in self.examples})


def default_taxonomy_path() -> Path:
    return Path(str(resources.files("r1agent") / "data" / "intents.yaml"))


def load_taxonomy(path: Path | None = None, *, overlay: Path | None = None) -> Taxonomy:
    """The taxonomy at ``path`` (default: the retail demo), plus the ``text,label`` rows of ``overlay``
    when that file exists: reviewed corrections from feedback (``data_dir/intents.extra.csv``)."""
    path = path or default_taxonomy_path()
    if not path.is_file():
        raise ConfigurationError(f"taxonomy file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in {".yaml", ".yml"}:
        taxonomy = _from_yaml(path)
    elif suffix == ".csv":
        taxonomy = _from_csv(path)
    else:
        raise ConfigurationError(f"{path}: a taxonomy is a .yaml or .csv file, not {suffix or 'no suffix'}")
    if overlay is not None and overlay.is_file():
        taxonomy = Taxonomy(taxonomy.examples + _from_csv(overlay).examples, taxonomy.descriptions)
    counts = {label: sum(1 for _, lab in taxonomy.examples if lab == label) for label in taxonomy.labels}
    if len(counts) < 2:
        raise ConfigurationError(f"{path}: a taxonomy needs at least two labels, found {len(counts)}")
    thin = sorted(label for label, n in counts.items() if n < 2)
    if thin:
        raise ConfigurationError(f"{path}: each label needs at least two examples; too few for {thin}")
    return taxonomy


def _from_yaml(path: Path) -> Taxonomy:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}") from exc
    intents = doc.get("intents") if isinstance(doc, dict) else None
    if not isinstance(intents, dict):
        raise ConfigurationError(f"{path}: expected a mapping 'intents: {{label: {{examples: [...]}}}}'")
    examples: list[tuple[str, str]] = []
    descriptions: dict[str, str] = {}
    for label, spec in intents.items():
        items = spec.get("examples") if isinstance(spec, dict) else None
        if not isinstance(items, list) or not all(isinstance(e, str) for e in items):
            raise ConfigurationError(f"{path}: intent {label!r} needs a list of example strings")
        examples.extend((text.strip(), str(label)) for text in items if text.strip())
        descriptions[str(label)] = str(spec.get("description", ""))
    return Taxonomy(tuple(examples), descriptions)


def _from_csv(path: Path) -> Taxonomy:
    # utf-8-sig: spreadsheet "CSV UTF-8" exports start with a byte-order mark.
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or [])
        text_col = "text" if "text" in fields else None
        label_col = next((c for c in ("label", "category", "intent") if c in fields), None)
        if text_col is None or label_col is None:
            raise ConfigurationError(f"{path}: a CSV taxonomy needs a 'text' and a 'label' column")
        examples = tuple(
            (row[text_col].strip(), row[label_col].strip())
            for row in reader
            if row[text_col] and row[label_col] and row[text_col].strip()
        )
    return Taxonomy(examples)
