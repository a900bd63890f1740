"""Tool plugins: discovered through the ``r1agent.tools`` entry-point group, checked, and loaded.

A plugin is any installed distribution that declares, in its ``pyproject.toml``::

    [project.entry-points."r1agent.tools"]
    units = "r1agent_units:make_tools"

where ``make_tools(settings)`` returns an :class:`~r1agent.tools.base.AgentTool` or a sequence of them.
r1agent's own tools register the same way, so there is one way to add a tool. Loading is loud: a plugin
that fails to import, whose factory raises, that returns something other than ``AgentTool`` instances,
or whose tool name is already taken, stops start-up with an error naming the distribution — a customer
turn should never discover a half-installed tool. See docs/plugins.md for the ten-minute guide and
:mod:`r1agent.plugins.testing` for the conformance kit plugin authors run in their own tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

from r1agent.errors import ConfigurationError
from r1agent.tools.base import ENTRY_POINT_GROUP, AgentTool

if TYPE_CHECKING:
    from r1agent.settings import Settings


class PluginError(ConfigurationError):
    """A tool plugin could not be loaded; the message names the distribution and what to do."""


@dataclass(frozen=True)
class LoadedTool:
    tool: AgentTool
    entry_point: str
    """The entry-point name (what ``R1AGENT_TOOLS`` allow-lists)."""
    distribution: str
    version: str

    @property
    def source(self) -> str:
        return f"{self.distribution} {self.version} ({ENTRY_POINT_GROUP}:{self.entry_point})"


def discover(group: str = ENTRY_POINT_GROUP) -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=group), key=lambda ep: ep.name)


def load_plugins(
    settings: Settings,
    *,
    allow: Sequence[str] | None = None,
    entry_points: Iterable[metadata.EntryPoint] | None = None,
) -> list[LoadedTool]:
    """Every installed tool (or those ``allow`` names), checked. Raises :class:`PluginError`."""
    allow = settings.tools if allow is None else allow
    found = list(discover() if entry_points is None else entry_points)
    if allow is not None:
        unknown = sorted(set(allow) - {ep.name for ep in found})
        if unknown:
            raise PluginError(
                f"R1AGENT_TOOLS names tools that are not installed: {', '.join(unknown)} "
                f"(installed: {', '.join(ep.name for ep in found) or 'none'})"
            )
        found = [ep for ep in found if ep.name in allow]
    loaded: list[LoadedTool] = []
    owners: dict[str, str] = {}
    for ep in found:
        for item in _load_one(ep, settings):
            name = item.tool.name
            if name in owners:
                raise PluginError(
                    f"tool name {name!r} is provided twice: by {owners[name]} and by {item.source}; "
                    "uninstall one, or allow-list one with R1AGENT_TOOLS"
                )
            owners[name] = item.source
            loaded.append(item)
    return loaded


def _load_one(ep: metadata.EntryPoint, settings: Settings) -> list[LoadedTool]:
    dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
    version = ep.dist.version if ep.dist is not None else "?"
    where = f"plugin {ep.name!r} from {dist} {version} ({ep.value})"
    try:
        factory = ep.load()
    except Exception as exc:
        raise PluginError(f"{where} failed to import: {type(exc).__name__}: {exc}") from exc
    if not callable(factory):
        raise PluginError(f"{where} is not callable: it must name a function make_tools(settings)")
    try:
        made = factory(settings)
    except Exception as exc:
        raise PluginError(f"{where} raised while creating its tools: {type(exc).__name__}: {exc}") from exc
    tools = [made] if isinstance(made, AgentTool) else list(made) if isinstance(made, list | tuple) else [made]
    bad = [type(t).__name__ for t in tools if not isinstance(t, AgentTool)]
    if bad or not tools:
        raise PluginError(
            f"{where} returned {', '.join(bad) or 'no tools'}: a factory returns r1agent AgentTool instances"
        )
    return [LoadedTool(tool=t, entry_point=ep.name, distribution=dist, version=version) for t in tools]
