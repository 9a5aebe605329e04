"""Trace context across handlers: carried over untouched when spans are not recorded, continued as a
child span when they are."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from quorum_common.runtime import tracing
from quorum_common.runtime.tracing import consume_span, inject_headers, setup_tracing

INCOMING = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "q=1"}


def test_without_recording_a_handler_publishes_the_trace_it_received(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_recording", False)
    with consume_span("alpha", "md.bars", {**INCOMING, "x-phase": "7"}) as span:
        published = inject_headers({})
    assert span is None
    assert published == INCOMING
    assert inject_headers({}) == {}  # outside any handler there is no trace to carry


def test_without_recording_a_record_without_trace_publishes_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_recording", False)
    with consume_span("alpha", "md.bars", {}):
        assert inject_headers({}) == {}


def test_with_recording_the_handler_span_is_a_child_and_its_outputs_carry_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_recording", False)
    exporter = InMemorySpanExporter()
    setup_tracing("tests", extra=exporter)
    assert tracing._recording
    with consume_span("alpha", "md.bars", INCOMING) as span:
        published = inject_headers({})
    trace_id = INCOMING["traceparent"].split("-")[1]
    assert span is not None and format(span.get_span_context().trace_id, "032x") == trace_id
    assert published["traceparent"].split("-")[1] == trace_id
    assert published["traceparent"].split("-")[2] == format(span.get_span_context().span_id, "016x")
    finished = [s for s in exporter.get_finished_spans() if s.attributes.get("quorum.service") == "alpha"]
    assert len(finished) == 1 and format(finished[0].parent.span_id, "016x") == "b7ad6b7169203331"
