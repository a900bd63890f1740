"""The plugin loader on real installed distributions: the example plugin (installed by make install)
and broken ones, made real by writing their dist-info into a folder on sys.path."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from r1agent.plugins import PluginError, discover, load_plugins
from r1agent.plugins.testing import tool_problems
from r1agent.settings import Settings
from r1agent.tools import AgentTool


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, cache_dir=tmp_path)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in [m for m in sys.modules if m.startswith("fake_plugin")]:
        del sys.modules[name]


def install(site: Path, dist: str, module: str, code: str, entry: str) -> list[metadata.EntryPoint]:
    """A real (if minimal) installed distribution: a module and its dist-info with entry points."""
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[r1agent.tools]\n{entry}\n")
    return [ep for ep in metadata.entry_points(group="r1agent.tools") if ep.dist and ep.dist.name == dist]


GOOD = """
from pydantic import BaseModel, Field
from r1agent.tools import AgentTool

class Args(BaseModel):
    word: str = Field(description="A word.")

class Echo(AgentTool):
    name: str = "calculator"
    description: str = "Repeats a word back to the customer."
    args_schema: type[BaseModel] = Args
    triggers: tuple[str, ...] = ("echo",)

    def _run(self, word: str) -> str:
        return word

def make_tools(settings):
    return Echo()
"""


def test_the_example_plugin_is_installed_and_loads(settings: Settings) -> None:
    (loaded,) = load_plugins(settings, allow=["units"])
    assert loaded.tool.name == "convert_units"
    assert loaded.source == "r1agent-units 0.1.0 (r1agent.tools:units)"
    assert tool_problems(loaded.tool) == []


def test_unknown_names_in_the_allow_list_are_an_error(settings: Settings) -> None:
    with pytest.raises(PluginError, match="not installed: nope"):
        load_plugins(settings, allow=["units", "nope"])


def test_a_name_clash_names_both_packages(site: Path, settings: Settings) -> None:
    eps = install(site, "fake-plugin-echo", "fake_plugin_echo", GOOD, "echo = fake_plugin_echo:make_tools")
    (units,) = [ep for ep in discover() if ep.name == "units"]
    assert load_plugins(settings, entry_points=eps)[0].tool.name == "calculator"
    clash = install(site, "fake-plugin-dup", "fake_plugin_dup", GOOD, "dup = fake_plugin_dup:make_tools")
    with pytest.raises(
        PluginError, match=r"'calculator' is provided twice: by fake-plugin-echo 1\.0 .* fake-plugin-dup"
    ):
        load_plugins(settings, entry_points=[*eps, *clash, units])


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("import no_such_module_anywhere\ndef make_tools(settings): ...", "failed to import: ModuleNotFoundError"),
        ("make_tools = 42", "is not callable"),
        (
            "def make_tools(settings):\n    raise RuntimeError('no API key')",
            "raised while creating its tools: RuntimeError: no API key",
        ),
        ("def make_tools(settings):\n    return ['not a tool']", "returned str"),
        ("def make_tools(settings):\n    return []", "returned no tools"),
    ],
)
def test_broken_plugins_fail_loudly_naming_the_package(site: Path, settings: Settings, code: str, message: str) -> None:
    eps = install(site, "fake-plugin-broken", "fake_plugin_broken", code, "broken = fake_plugin_broken:make_tools")
    with pytest.raises(PluginError, match=r"fake-plugin-broken 1\.0") as info:
        load_plugins(settings, entry_points=eps)
    assert message in str(info.value)


def test_the_kit_finds_what_is_wrong_with_a_tool() -> None:
    class Bad(AgentTool):
        name: str = "Bad Name"
        description: str = "short"

        def _run(self) -> str:
            return ""

    problems = tool_problems(Bad())
    assert any("lower_snake_case" in p for p in problems)
    assert any("description" in p for p in problems)
    assert any("serves nothing" in p for p in problems)
