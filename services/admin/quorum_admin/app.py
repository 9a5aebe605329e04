"""The admin service as its own process: ``quorum-admin`` (or ``python -m quorum_admin.app``).

Two Kafka clients: the view consumes ``control.state``, ``portfolio.snapshots`` and ``mandate.compiled``
in a consumer group of its own per start (so it reads the compacted history from the beginning every
time), and the API publishes commands and audit records with a plain idempotent producer, flushed
before each reply, so a 202 means the command is on the broker. The routes share the service's HTTP
endpoint with ``/healthz``, ``/readyz`` and ``/metrics``.
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid

from quorum_common.bus.kafka import KafkaBus
from quorum_common.bus.kafka_admin import ensure_topics
from quorum_common.runtime.config import load_settings
from quorum_common.runtime.http import HttpServer, build_app
from quorum_common.runtime.logging import setup_logging
from quorum_common.runtime.metrics import ServiceMetrics
from quorum_common.runtime.tracing import setup_tracing

from quorum_admin.api import AUDIT, COMMANDS, AdminApi
from quorum_admin.config import AdminSettings
from quorum_admin.view import AdminView

log = logging.getLogger(__name__)


def main() -> None:
    """Serve the admin API until SIGTERM/SIGINT."""
    settings = load_settings(AdminSettings)
    setup_logging("admin", settings.log_level)
    setup_tracing("admin", settings.otel_exporter)
    client = settings.kafka_client_config()
    view_bus = KafkaBus(client, topic_prefix=settings.topic_prefix, delivery="at_least_once",
                        batch_size=settings.batch_size, instance_id=settings.instance_id)
    ensure_topics(client, view_bus.codec.catalog, settings.topic_prefix, check_partitions=False)
    api_bus = KafkaBus(client, topic_prefix=settings.topic_prefix, delivery="at_least_once", linger_ms=0,
                       instance_id=settings.instance_id)
    metrics = ServiceMetrics("admin")
    group = f"admin-view-{uuid.uuid4().hex[:12]}"
    view_bus.set_metrics(group, metrics)
    view = AdminView(view_bus.publisher(group), settings.desk)
    view_bus.subscribe_engine(group, view)
    loop = view_bus.loop(group)
    api_publisher = api_bus.publisher("admin")
    api_publisher.connect(COMMANDS, AUDIT)  # before the first request: an operator's first halt must not wait for it
    api = AdminApi(view, api_publisher, settings.admin_tokens, settings.desk, flush=api_bus.flush,
                   tradable=settings.tradable_symbols)
    app = build_app("admin", metrics, loop.ready.is_set)
    app.include_router(api.router())
    http = HttpServer(app, settings.http_host, settings.http_port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    port = http.start()
    log.info("admin started", extra={"http_port": port, "principals": len(settings.admin_tokens)})
    try:
        view_bus.run_service(group, stop)
    finally:
        http.stop()
        api_bus.close()
        view_bus.close()
        log.info("admin stopped")


if __name__ == "__main__":
    main()
