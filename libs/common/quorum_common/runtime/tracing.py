"""OpenTelemetry tracing with W3C trace context carried in message headers.

A publisher injects the current span's context into the headers of every record it emits; a
consumer extracts it and opens its span for the message as a child, so one trace follows a bar
through every service that touched it.

Spans are recorded only when something receives them (an exporter, or an ``extra`` one such as a
test's in-memory exporter). Without one, a consumer does not build a span at all: the incoming
``traceparent``/``tracestate`` are carried over to whatever the handler publishes, so a downstream
service that does export still joins the trace, and the hot path does not pay the ~40 µs an SDK
span costs per record.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
TRACE_HEADERS = ("traceparent", "tracestate")
_recording = False
"""Whether consumer spans are built (set by :func:`setup_tracing` when spans go somewhere)."""
_carried: ContextVar[dict[str, str] | None] = ContextVar("quorum_carried_trace", default=None)
"""The trace headers of the record being handled, while spans are not recorded."""


def setup_tracing(service: str, exporter: str = "none", extra: SpanExporter | None = None) -> TracerProvider:
    """Install a tracer provider for ``service``.

    ``exporter`` is ``"none"`` (spans are created and propagated but not exported) or ``"console"``.
    ``extra`` adds another exporter, e.g. an in-memory one in tests. A provider installed earlier in
    the process is reused (OpenTelemetry allows only one), with ``extra`` added to it. Consumer spans
    are recorded from the first call that names an exporter or ``extra`` on.
    """
    global _recording
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        if exporter == "console":
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        elif exporter != "none":
            raise ValueError(f"otel_exporter must be 'none' or 'console', not {exporter!r}")
        trace.set_tracer_provider(provider)
    if extra is not None:
        provider.add_span_processor(SimpleSpanProcessor(extra))
    _recording = _recording or exporter != "none" or extra is not None
    return provider


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Add the current trace's W3C ``traceparent``/``tracestate`` to ``headers`` and return it.

    Inside a handler whose spans are not recorded, that is the handled record's own trace context.
    """
    carried = _carried.get()
    if carried is not None:
        headers.update(carried)
    else:
        _PROPAGATOR.inject(headers)
    return headers


@contextmanager
def consume_span(service: str, topic: str, headers: Mapping[str, str]) -> Iterator[trace.Span | None]:
    """A CONSUMER span for one handled message, child of the trace found in ``headers``.

    While spans are not recorded this yields ``None`` and only carries the trace headers over.
    """
    if not _recording:
        token = _carried.set({k: headers[k] for k in TRACE_HEADERS if k in headers})
        try:
            yield None
        finally:
            _carried.reset(token)
        return
    parent = _PROPAGATOR.extract(dict(headers))
    token = otel_context.attach(parent)
    try:
        tracer = trace.get_tracer(f"quorum.{service}")
        with tracer.start_as_current_span(
            f"{topic} process",
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": topic, "quorum.service": service},
        ) as span:
            yield span
    finally:
        otel_context.detach(token)
