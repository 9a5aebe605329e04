"""OpenTelemetry tracing with W3C trace context carried in message headers.

A publisher injects the current span's context into the headers of every record it emits; a
consumer extracts it and opens its span for the message as a child, so one trace follows a bar
through every service that touched it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
TRACE_HEADERS = ("traceparent", "tracestate")


def setup_tracing(service: str, exporter: str = "none", extra: SpanExporter | None = None) -> TracerProvider:
    """Install a tracer provider for ``service``.

    ``exporter`` is ``"none"`` (spans are created and propagated but not exported) or ``"console"``.
    ``extra`` adds another exporter, e.g. an in-memory one in tests. A provider installed earlier in
    the process is reused (OpenTelemetry allows only one), with ``extra`` added to it.
    """
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
    return provider


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Add the current span's W3C ``traceparent``/``tracestate`` to ``headers`` and return it."""
    _PROPAGATOR.inject(headers)
    return headers


@contextmanager
def consume_span(service: str, topic: str, headers: Mapping[str, str]) -> Iterator[trace.Span]:
    """A CONSUMER span for one handled message, child of the trace found in ``headers``."""
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
