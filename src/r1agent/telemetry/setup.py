"""Setting telemetry up from settings, and tearing it down: exporters, providers, instrumentation."""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from r1agent.errors import ConfigurationError
from r1agent.settings import Settings
from r1agent.telemetry.logs import install_log_masking
from r1agent.telemetry.metrics import TurnMetrics, observe_turns
from r1agent.telemetry.spans import TurnSpanProcessor

log = logging.getLogger(__name__)

SERVICE_NAME = "r1agent"
METER_NAME = "r1agent"

_lock = threading.RLock()
_active: Telemetry | None = None


@dataclass
class Telemetry:
    """What :func:`setup_telemetry` set up; ``shutdown`` undoes it (flushing first)."""

    exporters: tuple[str, ...] = ()
    """The exporters running: ``console``, ``otlp``, ``prometheus``, and ``injected`` for the
    ``span_exporter`` / ``metric_reader`` given to setup. Empty: telemetry is off."""
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    prometheus_port: int | None = None
    """The port the ``/metrics`` endpoint listens on (127.0.0.1), when it runs."""
    _spans: TurnSpanProcessor | None = field(default=None, repr=False)
    _instrumented: bool = field(default=False, repr=False)
    """This setup instrumented LangChain (not the host application before it): shutdown undoes it."""
    _prometheus_server: Any = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        return bool(self.exporters)

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Exports what is pending now (spans and metrics); False if something did not make it in time."""
        ok = True
        if self._spans is not None:
            ok = self._spans.force_flush(timeout_millis)
        if self.meter_provider is not None:
            ok = self.meter_provider.force_flush(timeout_millis) and ok
        return ok

    def shutdown(self) -> None:
        """Flushes, stops instrumenting, closes the exporters and the Prometheus endpoint."""
        global _active
        with _lock:
            if self._instrumented:
                from openinference.instrumentation.langchain import LangChainInstrumentor

                LangChainInstrumentor().uninstrument()
                self._instrumented = False
            if self._spans is not None:
                _SLOT.target = None
                self._spans.shutdown()
                self._spans = None
            if self.meter_provider is not None:
                observe_turns(None)
                self.meter_provider.shutdown()
                self.meter_provider = None
            if self._prometheus_server is not None:
                self._prometheus_server.shutdown()
                self._prometheus_server.server_close()
                self._prometheus_server = None
            self.exporters = ()
            if _active is self:
                _active = None


def active_telemetry() -> Telemetry | None:
    """The telemetry this process runs, if any."""
    return _active


def setup_telemetry(
    settings: Settings, *, span_exporter: SpanExporter | None = None, metric_reader: MetricReader | None = None
) -> Telemetry:
    """Sets up tracing, metrics and log masking from ``settings``, once per process.

    ``span_exporter`` and ``metric_reader`` are added to what the settings ask for (tests pass
    OpenTelemetry's in-memory ones); an injected exporter gets each span as it is exported, in the
    turn's thread. Calling again returns the running :class:`Telemetry`; calling again with exporters
    to inject while telemetry runs is an error (shut it down first).
    """
    global _active
    with _lock:
        if settings.mask_pii_in_logs:
            install_log_masking()
        if _active is not None:
            if span_exporter is not None or metric_reader is not None:
                raise ConfigurationError(
                    f"telemetry already runs in this process (exporters: {', '.join(_active.exporters)}); "
                    "shut it down before setting it up with other exporters"
                )
            return _active
        names = frozenset(settings.otel_exporter) - {"none"}
        if not names and span_exporter is None and metric_reader is None:
            return Telemetry()  # nothing instrumented, nothing to shut down
        telemetry = Telemetry()
        resource = _resource()
        _setup_traces(telemetry, names, settings, span_exporter, resource)
        _setup_metrics(telemetry, names, settings, metric_reader, resource)
        if telemetry.enabled:
            _active = telemetry
        return telemetry


def package_version() -> str:
    try:
        return version("r1agent")
    except PackageNotFoundError:
        return "0"


def _resource() -> Resource:
    attributes = {"service.version": package_version()}
    if not os.environ.get("OTEL_SERVICE_NAME"):  # the standard variable wins
        attributes["service.name"] = SERVICE_NAME
    return Resource.create(attributes)


def _otlp_endpoint(settings: Settings, signal: str) -> str | None:
    """``R1AGENT_OTLP_ENDPOINT`` is a base URL, like ``OTEL_EXPORTER_OTLP_ENDPOINT``; None lets the
    exporter read the standard variables itself."""
    if settings.otlp_endpoint is None:
        return None
    return f"{settings.otlp_endpoint.rstrip('/')}/v1/{signal}"


def _add(telemetry: Telemetry, name: str) -> None:
    if name not in telemetry.exporters:
        telemetry.exporters += (name,)


def _setup_traces(
    telemetry: Telemetry,
    names: frozenset[str],
    settings: Settings,
    injected: SpanExporter | None,
    resource: Resource,
) -> None:
    processors: list[SpanProcessor] = []
    used: list[str] = []
    if injected is not None:
        processors.append(SimpleSpanProcessor(injected))
        used.append("injected")
    if "console" in names:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # stderr: stdout carries the CLI's --json contract.
        processors.append(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
        used.append("console")
    if "otlp" in names:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            # Batched: exporting happens in a background thread, never in the turn's.
            processors.append(BatchSpanProcessor(OTLPSpanExporter(endpoint=_otlp_endpoint(settings, "traces"))))
            used.append("otlp")
        except Exception:  # a broken exporter is left out, the agent still runs
            log.warning("telemetry: the OTLP span exporter could not be set up", exc_info=True)
    if not processors:
        return
    from openinference.instrumentation.langchain import LangChainInstrumentor

    provider = _tracer_provider(resource)
    pipeline = TurnSpanProcessor(processors, max_attribute_chars=settings.otel_max_attribute_chars)
    _SLOT.target = pipeline
    instrumentor = LangChainInstrumentor()  # a singleton
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)
        telemetry._instrumented = True
    else:  # the host application instrumented LangChain: its spans reach us if its provider is the global one
        log.info("telemetry: LangChain is instrumented already; r1agent uses that instrumentation")
    telemetry.tracer_provider = provider
    telemetry._spans = pipeline
    for name in used:
        _add(telemetry, name)


def _setup_metrics(
    telemetry: Telemetry,
    names: frozenset[str],
    settings: Settings,
    injected: MetricReader | None,
    resource: Resource,
) -> None:
    readers: list[MetricReader] = []
    used: list[str] = []
    if injected is not None:
        readers.append(injected)
        used.append("injected")
    if "console" in names:
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(out=sys.stderr)))
        used.append("console")
    if "otlp" in names:
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            exporter = OTLPMetricExporter(endpoint=_otlp_endpoint(settings, "metrics"))
            readers.append(PeriodicExportingMetricReader(exporter))
            used.append("otlp")
        except Exception:  # a broken exporter is left out, the agent still runs
            log.warning("telemetry: the OTLP metric exporter could not be set up", exc_info=True)
    if "prometheus" in names:
        reader = _start_prometheus(telemetry, settings.prometheus_port)
        if reader is not None:
            readers.append(reader)
            used.append("prometheus")
    if not readers:
        return
    provider = MeterProvider(resource=resource, metric_readers=readers)
    observe_turns(TurnMetrics(provider.get_meter(METER_NAME, package_version())))
    telemetry.meter_provider = provider
    for name in used:
        _add(telemetry, name)


def _start_prometheus(telemetry: Telemetry, port: int) -> MetricReader | None:
    """A reader on its own registry, served on 127.0.0.1 only; a taken port is logged, not raised."""
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    except Exception:  # no endpoint, but the agent still runs
        log.warning("telemetry: the Prometheus endpoint could not start on 127.0.0.1:%s", port, exc_info=True)
        return None
    telemetry._prometheus_server = server
    telemetry.prometheus_port = int(server.server_port)
    return PrometheusMetricReader(registry=registry)


# --- the process's tracer provider ---


class _Slot(SpanProcessor):
    """The one span processor r1agent adds to the process's tracer provider. A provider cannot drop a
    processor and the global provider can be set only once, so setups and shutdowns swap its target."""

    def __init__(self) -> None:
        self.target: SpanProcessor | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if (target := self.target) is not None:
            target.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if (target := self.target) is not None:
            target.on_end(span)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        target = self.target
        return target.force_flush(timeout_millis) if target is not None else True

    def shutdown(self) -> None:  # the provider's, at process exit: flush what is pending
        if (target := self.target) is not None:
            target.shutdown()


_SLOT = _Slot()
_provider: TracerProvider | None = None


def _tracer_provider(resource: Resource) -> TracerProvider:
    """The global SDK tracer provider (made here, or the host application's), so that spans started
    with ``opentelemetry.trace.get_tracer`` (the eval runner's case spans) parent the turns."""
    global _provider
    if _provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current
        else:
            provider = TracerProvider(resource=resource)
            trace.set_tracer_provider(provider)
            if trace.get_tracer_provider() is not provider:
                log.warning("telemetry: another tracer provider is global; r1agent's spans will not join its traces")
        provider.add_span_processor(_SLOT)
        _provider = provider
    return _provider
