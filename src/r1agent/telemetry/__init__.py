"""OpenTelemetry for r1agent: traces, metrics and PII masking, chosen by settings.

    from r1agent.telemetry import setup_telemetry
    telemetry = setup_telemetry(settings)   # once per process; open_agent and make_graph call it
    ...
    telemetry.shutdown()                    # flushes; a later setup_telemetry starts afresh

``R1AGENT_OTEL_EXPORTER`` picks the exporters: ``none`` (default: nothing is instrumented), ``console``
(stderr), ``otlp`` (OTLP over HTTP), ``prometheus`` (a ``/metrics`` endpoint on 127.0.0.1), several
with commas. Traces come from OpenInference's LangChain instrumentation (a span per turn, node, tool
call and model call) through :class:`~r1agent.telemetry.spans.TurnSpanProcessor`, which adds the
r1agent and GenAI attributes and masks PII; metrics from :class:`~r1agent.telemetry.metrics.TurnObserver`.
Log records are masked whatever the exporter (``R1AGENT_MASK_PII_IN_LOGS``). See docs/observability.md.

Telemetry never breaks a turn: an exporter that cannot be built or cannot export is logged and left out.
"""

from __future__ import annotations

from r1agent.telemetry.logs import PiiLogFilter, install_log_masking, uninstall_log_masking
from r1agent.telemetry.setup import Telemetry, active_telemetry, setup_telemetry

__all__ = [
    "PiiLogFilter",
    "Telemetry",
    "active_telemetry",
    "install_log_masking",
    "setup_telemetry",
    "uninstall_log_masking",
]
