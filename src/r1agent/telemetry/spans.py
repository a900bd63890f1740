"""The span pipeline between OpenInference's LangChain instrumentation and the exporters.

OpenInference gives a span per graph run, node, routing function, tool call and model call, with the
inputs and outputs as JSON (``input.value``, ``output.value``). It is blind to what the r1agent state
means, and it ends each span before another callback could add to it. So :class:`TurnSpanProcessor`
holds a run tree's spans until its root (the turn) ends, then, with the whole turn in hand:

- adds the r1agent attributes (intent, quality, handoff, tool) read from the nodes' updates, to the
  node spans and to the turn span, and the GenAI semantic-convention ones (``gen_ai.request.model``,
  ``gen_ai.usage.*``) to model spans; a model that does not report its token usage gets the counts
  its node measured (``reason``'s ``usage``);
- masks PII in every string it exports (attributes, event attributes, status, names) with
  :func:`r1agent.privacy.mask_pii`, and cuts over-long values where no PII can be split;

and hands the spans on to the exporting processors. Spans that are not part of a LangChain run tree
(the eval runner's case spans, say) are masked and passed on at once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from openinference.semconv.trace import OpenInferenceSpanKindValues, SpanAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MAX_TOKENS,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
)
from opentelemetry.trace import Link, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from r1agent.privacy import mask_pii, safe_cut
from r1agent.telemetry.facts import (
    TOOL_ERROR,
    TOOL_NAME,
    facts_attributes,
    is_state_update,
    merge_updates,
    turn_facts,
    update_attributes,
)

log = logging.getLogger(__name__)

LANGCHAIN_SCOPE = "openinference.instrumentation.langchain"
MAX_SPANS_PER_TURN = 2000
"""A turn holding more spans than this (a loop gone wrong) is passed on in parts, unenriched."""
MAX_OPEN_TURNS = 1000
"""Turns whose root never ends (an abandoned stream) are passed on, oldest first, past this many."""

_KIND = SpanAttributes.OPENINFERENCE_SPAN_KIND
_LLM = OpenInferenceSpanKindValues.LLM.value
_TOOL = OpenInferenceSpanKindValues.TOOL.value
_CHAINS = frozenset({OpenInferenceSpanKindValues.CHAIN.value, OpenInferenceSpanKindValues.AGENT.value})
_JSON_VALUES = {
    SpanAttributes.INPUT_VALUE: SpanAttributes.INPUT_MIME_TYPE,
    SpanAttributes.OUTPUT_VALUE: SpanAttributes.OUTPUT_MIME_TYPE,
}
_CUT_MARK = " …[cut]"
Attributes = dict[str, AttributeValue]


class TurnSpanProcessor(SpanProcessor):
    """Holds, enriches and masks spans per turn; ``exporters`` get only finished, masked copies."""

    def __init__(self, exporters: Sequence[SpanProcessor], *, max_attribute_chars: int) -> None:
        self._exporters = tuple(exporters)
        self._max_chars = max_attribute_chars
        self._lock = threading.Lock()
        self._root_of: dict[int, int] = {}
        """span id -> the span id of its run tree's root, for spans that have started and not ended."""
        self._held: dict[int, list[ReadableSpan]] = {}
        """root span id -> the ended spans of that run tree, waiting for the root."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        span_id = span.context.span_id
        parent_id = span.parent.span_id if span.parent is not None else None
        overflow: list[ReadableSpan] = []  # a turn evicted to make room, passed on outside the lock
        with self._lock:
            root = self._root_of.get(parent_id) if parent_id is not None else None
            if root is None and _is_langchain(span):
                root = span_id
                self._held[root] = []
                if len(self._held) > MAX_OPEN_TURNS:
                    overflow = self._held.pop(next(iter(self._held)))
            if root is not None:
                self._root_of[span_id] = root
                if len(self._root_of) > MAX_OPEN_TURNS * MAX_SPANS_PER_TURN // 10:
                    del self._root_of[next(iter(self._root_of))]
        if overflow:
            self._export(overflow)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            ready, turn = self._collect(span)
            if ready:
                self._export(ready, turn)
        except Exception:  # telemetry must never break a turn
            log.warning("telemetry: a span could not be exported", exc_info=True)

    def _collect(self, span: ReadableSpan) -> tuple[list[ReadableSpan], int | None]:
        """The spans ready to go, and the id of the turn span among them if the turn is complete."""
        span_id = span.context.span_id if span.context is not None else 0
        with self._lock:
            root = self._root_of.pop(span_id, None)
            if root is None:
                return [span], None
            if root == span_id:
                return [*self._held.pop(root, []), span], root
            held = self._held.get(root)
            if held is None:  # its turn was passed on already (overflow)
                return [span], None
            held.append(span)
            if len(held) < MAX_SPANS_PER_TURN:
                return [], None
            ready = list(held)
            held.clear()
            return ready, None

    def _export(self, spans: list[ReadableSpan], turn: int | None = None) -> None:
        extra = enrich(spans, turn=turn)
        for span in spans:
            span_id = span.context.span_id if span.context is not None else 0
            masked = mask_span(span, extra.get(span_id, {}), max_chars=self._max_chars)
            for exporter in self._exporters:
                try:
                    exporter.on_end(masked)
                except Exception:  # one failing exporter must not starve the others
                    log.warning("telemetry: exporter %s failed", type(exporter).__name__, exc_info=True)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Passes on what is held (turns still running lose their turn-level attributes), then flushes."""
        with self._lock:
            held = [span for spans in self._held.values() for span in spans]
            for spans in self._held.values():
                spans.clear()
        if held:
            self._export(held)
        return all(exporter.force_flush(timeout_millis) for exporter in self._exporters)

    def shutdown(self) -> None:
        self.force_flush()
        for exporter in self._exporters:
            exporter.shutdown()


def _is_langchain(span: ReadableSpan) -> bool:
    scope = span.instrumentation_scope
    return scope is not None and scope.name == LANGCHAIN_SCOPE


# --- enrichment: a pure function of the turn's spans ---


def enrich(spans: Sequence[ReadableSpan], *, turn: int | None = None) -> dict[int, Attributes]:
    """Extra attributes per span id, from what the spans of one run tree (or part of one) recorded;
    ``turn``: the id of the run tree's root span, when ``spans`` is the whole tree."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    updates = {span_id: _json_output(span) for span_id, span in by_id.items()}
    llm_children: dict[int, int] = {}
    for span in by_id.values():
        if _kind(span) == _LLM and span.parent is not None:
            llm_children[span.parent.span_id] = llm_children.get(span.parent.span_id, 0) + 1
    extra: dict[int, Attributes] = {}
    for span_id, span in by_id.items():
        kind = _kind(span)
        if kind == _LLM:
            parent_id = span.parent.span_id if span.parent is not None else None
            measured = updates.get(parent_id) if parent_id is not None and llm_children[parent_id] == 1 else None
            extra[span_id] = model_attributes(span, measured)
        elif kind == _TOOL:
            extra[span_id] = tool_attributes(span)
        elif kind in _CHAINS and is_state_update(updates[span_id]):
            extra[span_id] = update_attributes(updates[span_id] or {})
    root = by_id.get(turn) if turn is not None else None
    if root is not None and _kind(root) in _CHAINS:
        extra[root.context.span_id] = {
            **extra.get(root.context.span_id, {}),
            **_turn_attributes(root, [s for s in by_id.values() if s is not root], updates),
        }
    return extra


def _turn_attributes(root: ReadableSpan, others: list[ReadableSpan], updates: dict[int, Any]) -> Attributes:
    """The turn span's attributes, from its nodes' updates in the order they ended, then its own output."""
    ordered = sorted((s for s in others if is_state_update(updates[s.context.span_id])), key=_end_time)
    found = [updates[s.context.span_id] for s in ordered]
    own = updates[root.context.span_id]
    if is_state_update(own):
        found.append(own)
    if not found:
        return {}
    failed = root.status.status_code == StatusCode.ERROR
    return facts_attributes(turn_facts(merge_updates(found), failed=failed))


def model_attributes(span: ReadableSpan, measured: Mapping[str, Any] | None) -> Attributes:
    """GenAI semantic conventions on a model span, from OpenInference's own attributes; token counts
    the model did not report come from the node that measured them (``measured``: its update)."""
    attrs = span.attributes or {}
    out: Attributes = {GEN_AI_OPERATION_NAME: "chat"}
    if isinstance(provider := attrs.get(SpanAttributes.LLM_PROVIDER), str):
        out[GEN_AI_PROVIDER_NAME] = provider
    if isinstance(model := attrs.get(SpanAttributes.LLM_MODEL_NAME), str):
        out[GEN_AI_REQUEST_MODEL] = model
    params = _json(attrs.get(SpanAttributes.LLM_INVOCATION_PARAMETERS))
    if isinstance(params, Mapping):
        pipeline = params.get("pipeline_kwargs")
        for source in (params, pipeline if isinstance(pipeline, Mapping) else {}):  # HF pipelines nest them
            for key in ("max_new_tokens", "max_tokens"):
                if isinstance(value := source.get(key), int):
                    out[GEN_AI_REQUEST_MAX_TOKENS] = value
    prompt = attrs.get(SpanAttributes.LLM_TOKEN_COUNT_PROMPT)
    completion = attrs.get(SpanAttributes.LLM_TOKEN_COUNT_COMPLETION)
    usage = measured.get("usage") if isinstance(measured, Mapping) else None
    if prompt is None and completion is None and isinstance(usage, Mapping):
        prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
    if isinstance(prompt, int):
        out[GEN_AI_USAGE_INPUT_TOKENS] = prompt
    if isinstance(completion, int):
        out[GEN_AI_USAGE_OUTPUT_TOKENS] = completion
    return out


def tool_attributes(span: ReadableSpan) -> Attributes:
    attrs = span.attributes or {}
    out: Attributes = {}
    if isinstance(name := attrs.get(SpanAttributes.TOOL_NAME), str):
        out[TOOL_NAME] = name
    if span.status.status_code == StatusCode.ERROR:
        messages = [
            e.attributes.get("exception.message") for e in span.events if e.name == "exception" and e.attributes
        ]
        error = next((m for m in reversed(messages) if isinstance(m, str) and m), span.status.description)
        out[TOOL_ERROR] = error or "error"
    return out


def _kind(span: ReadableSpan) -> Any:
    return (span.attributes or {}).get(_KIND)


def _end_time(span: ReadableSpan) -> int:
    return span.end_time or 0


def _json_output(span: ReadableSpan) -> Any:
    attrs = span.attributes or {}
    if attrs.get(SpanAttributes.OUTPUT_MIME_TYPE) != "application/json":
        return None
    return _json(attrs.get(SpanAttributes.OUTPUT_VALUE))


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


# --- masking: every string that leaves ---


def mask_span(span: ReadableSpan, extra: Mapping[str, AttributeValue], *, max_chars: int) -> ReadableSpan:
    """A copy of ``span`` with ``extra`` attributes added and PII masked in every string."""
    attributes = mask_attributes({**(span.attributes or {}), **extra}, max_chars=max_chars)
    for value_key, mime_key in _JSON_VALUES.items():
        # A value cut short is no longer JSON: say so, or a backend's JSON viewer chokes on it.
        if mime_key in attributes and str(attributes.get(value_key, "")).endswith(_CUT_MARK):
            attributes[mime_key] = "text/plain"
    events = [
        Event(e.name, mask_attributes(e.attributes or {}, max_chars=max_chars), timestamp=e.timestamp)
        for e in span.events
    ]
    links = [Link(link.context, mask_attributes(link.attributes or {}, max_chars=max_chars)) for link in span.links]
    status = span.status
    if status.description:
        status = Status(status.status_code, _mask_text(status.description, max_chars))
    return ReadableSpan(
        name=mask_pii(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def mask_attributes(attributes: Mapping[str, AttributeValue], *, max_chars: int) -> dict[str, AttributeValue]:
    return {key: _mask_attribute(value, max_chars) for key, value in attributes.items()}


def _mask_text(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return mask_pii(text)
    return mask_pii(safe_cut(text, max_chars)) + _CUT_MARK


def _mask_attribute(value: AttributeValue, max_chars: int) -> AttributeValue:
    if isinstance(value, str):
        return _mask_text(value, max_chars)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
        text = str(value)  # a card number stored as a number is still a card number
        return value if mask_pii(text) == text else mask_pii(text)
    if isinstance(value, Sequence) and value and isinstance(value[0], str):
        return [_mask_text(str(v), max_chars) for v in value]
    return value
