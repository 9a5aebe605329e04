"""OpenTelemetry tracing with W3C trace context carried in message headers.

A publisher injects the current span's context into the headers of every record it emits; a
consumer extracts it and opens its span for the message as a child, so one trace follows a bar
through every service that touched it.

Spans are recorded only when something receives them (an exporter, or an ``extra`` one such as a
test's in-memory exporter). Without one, a consumer does not build a span at all: the incoming
``traceparent``/``tracestate`` are carried over to whatever the handler publishes, so a downstream
service that does export still joins the trace, and the hot path does not pay the ~40 µs an SDK
span costs per record. Carrying costs a small context manager that sets and resets a context variable (about
0.6 µs a record, against 2.2 µs for the generator-based one that copied the trace headers).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
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
_carried: ContextVar[Mapping[str, str] | None] = ContextVar("quorum_carried_trace", default=None)
"""The headers of the record being handled, while spans are not recorded (its trace headers are carried over)."""


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
        for name in TRACE_HEADERS:
            value = carried.get(name)
            if value is not None:
                headers[name] = value
    else:
        _PROPAGATOR.inject(headers)
    return headers


class _Carried:
    """The context of a handled record while spans are not recorded: its headers, whose trace headers
    :func:`inject_headers` carries over to whatever the handler publishes."""

    __slots__ = ("_headers", "_token")

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = headers

    def __enter__(self) -> None:
        self._token = _carried.set(self._headers)

    def __exit__(self, *_exc: object) -> None:
        _carried.reset(self._token)


def consume_span(service: str, topic: str,
                 headers: Mapping[str, str]) -> AbstractContextManager[trace.Span | None]:
    """A CONSUMER span for one handled message, child of the trace found in ``headers``, as a context manager.

    While spans are not recorded it gives ``None`` and only carries the trace headers over.
    """
    return _recorded_span(service, topic, headers) if _recording else _Carried(headers)


@contextmanager
def _recorded_span(service: str, topic: str, headers: Mapping[str, str]) -> Iterator[trace.Span]:
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
