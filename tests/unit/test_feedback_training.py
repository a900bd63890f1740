"""Training inputs and the optional extra: clear errors before any model is loaded."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from r1agent.cli import app
from r1agent.errors import ConfigurationError, ConflictError, InputError, NotFoundError
from r1agent.models.adapter import apply_adapter
from r1agent.models.chat import LocalChatModel
from r1agent.training.dpo import DpoOptions, _prepare_out, load_pairs, require_extra, train_dpo

MESSAGES = {
    "prompt": [{"role": "user", "content": "Hi?"}],
    "chosen": [{"role": "assistant", "content": "Hello! How can I help?"}],
    "rejected": [{"role": "assistant", "content": "No."}],
}


def write(path: Path, *rows: object) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def no_trl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trl", None)  # `import trl` now raises ImportError
    monkeypatch.setitem(sys.modules, "peft", None)


@pytest.mark.usefixtures("no_trl")
def test_a_missing_extra_names_it() -> None:
    with pytest.raises(ConfigurationError, match=r"pip install 'r1agent\[train\]' \(missing: trl, peft\)"):
        require_extra()


@pytest.mark.usefixtures("no_trl")
def test_the_cli_says_which_extra_and_exits_5(tmp_path: Path) -> None:
    write(tmp_path / "dpo.jsonl", MESSAGES)
    result = CliRunner().invoke(app, ["train", "dpo", "--data", str(tmp_path), "--out", str(tmp_path / "a")])
    assert result.exit_code == 5
    assert "pip install 'r1agent[train]'" in result.output  # printed literally, not eaten as markup
    assert not (tmp_path / "a").exists()


@pytest.mark.usefixtures("no_trl")
def test_an_adapter_without_peft_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text("{}")
    llm = cast(LocalChatModel, object())
    with pytest.raises(ConfigurationError, match=r"R1AGENT_ADAPTER needs PEFT: pip install 'r1agent\[train\]'"):
        apply_adapter(llm, tmp_path)


def test_no_adapter_leaves_the_model_alone(tmp_path: Path) -> None:
    llm = cast(LocalChatModel, object())
    assert apply_adapter(llm, None) is llm
    with pytest.raises(ConfigurationError, match="not a PEFT adapter folder"):
        apply_adapter(llm, tmp_path)


def test_pairs_in_both_of_trls_formats(tmp_path: Path) -> None:
    text = {"prompt": "Q: hi?\nA:", "chosen": " Hello!", "rejected": " No."}
    pairs = load_pairs(write(tmp_path / "pairs.jsonl", MESSAGES, "", {**MESSAGES, "source": "rating"}, text))
    assert pairs == [MESSAGES, MESSAGES, text]  # extra columns dropped, blank lines skipped
    folder = write(tmp_path / "dpo.jsonl", MESSAGES, "", MESSAGES, text).parent
    assert load_pairs(folder) == pairs  # a folder means its dpo.jsonl


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{not json", r"pairs.jsonl:1: not JSON"),
        ("[1, 2]", "a JSON object"),
        ({**MESSAGES, "chosen": ""}, "'chosen' is a non-empty string"),
        ({**MESSAGES, "rejected": [{"role": "robot", "content": "x"}]}, "'rejected' is a non-empty string"),
        ({**MESSAGES, "prompt": "plain text"}, "all be text or all be messages"),
    ],
)
def test_bad_pairs_name_the_line(tmp_path: Path, row: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_pairs(write(tmp_path / "pairs.jsonl", row))


def test_missing_or_empty_data(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="feedback export"):
        load_pairs(tmp_path)
    with pytest.raises(InputError, match="no preference pairs"):
        load_pairs(write(tmp_path / "dpo.jsonl", ""))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (DpoOptions(steps=0), "--steps"),
        (DpoOptions(learning_rate=2.0), "--lr"),
        (DpoOptions(rank=0), "--rank"),
        (DpoOptions(beta=0), "--beta"),
        (DpoOptions(batch_size=0), "--batch-size"),
        (DpoOptions(max_length=8), "--max-length"),
    ],
)
def test_options_are_checked(options: DpoOptions, message: str) -> None:
    with pytest.raises(InputError, match=message):
        options.check()


def test_an_existing_adapter_is_not_overwritten_by_accident(tmp_path: Path) -> None:
    out = tmp_path / "adapter"
    out.mkdir()
    _prepare_out(out, force=False)  # empty: fine
    (out / "adapter_config.json").write_text("{}")
    with pytest.raises(ConflictError, match="--force"):
        _prepare_out(out, force=False)
    _prepare_out(out, force=True)
    with pytest.raises(ConflictError):
        train_dpo(write(tmp_path / "dpo.jsonl", MESSAGES), out, model_folder=None, cache_dir=tmp_path)
    assert (out / "adapter_config.json").read_text() == "{}"
