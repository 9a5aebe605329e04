"""A HALT drill over a real broker: the risk service as a Kafka consumer, the admin API in front.

Used by the end-to-end kill-switch test and by the HALT-latency benchmark: an operator's
``POST /halt`` goes through ``control.commands`` to the risk service, which must refuse every
risk-increasing order from then on; only a risk officer's ``POST /resume`` reopens trading.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from fastapi import FastAPI
from fastapi.testclient import TestClient
from quorum_admin.api import AUDIT, COMMANDS, AdminApi
from quorum_admin.config import Principal
from quorum_admin.view import AdminView
from quorum_common.bus.kafka import KafkaBus
from quorum_common.bus.kafka_admin import delete_catalog_topics, ensure_topics
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.schemas import default_catalog
from quorum_risk.app import SPEC as RISK
from quorum_risk.config import RiskSettings

TOKENS = {"viewer": "drill-viewer-token", "operator": "drill-operator-token", "risk_officer": "drill-officer-token"}


@dataclass
class Watch:
    """A reader of one topic from its end, decoding as records arrive."""

    consumer: Consumer
    topic: str
    codec: TopicCodec = field(default_factory=TopicCodec)

    def next(self, timeout_s: float = 10.0) -> tuple[dict[str, Any], float]:
        """The next record and the monotonic time it was received."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            m = self.consumer.poll(0.005)
            if m is not None and m.error() is None:
                return self.codec.decode(self.topic, m.value())[1], time.monotonic()
        raise TimeoutError(f"nothing on {self.topic} within {timeout_s}s")


class HaltDrill:
    """The risk service over Kafka plus the admin API, under a topic prefix."""

    def __init__(self, client_config: dict[str, str], prefix: str) -> None:
        self.config, self.prefix = client_config, prefix
        ensure_topics(client_config, default_catalog(), prefix)
        self.risk_bus = KafkaBus(client_config, topic_prefix=prefix)
        engine = RISK.engine(RiskSettings(), self.risk_bus.publisher("risk"))
        self.risk_engine = engine
        """The risk service's engine (what :meth:`wait_until` reads)."""
        self.risk_bus.subscribe_engine("risk", engine)
        self.feed = KafkaBus(client_config, topic_prefix=prefix, linger_ms=0)
        self.api_bus = KafkaBus(client_config, topic_prefix=prefix, linger_ms=0)
        digests = {hashlib.sha256(t.encode()).hexdigest(): Principal(name=f"drill-{r}", role=r)
                   for r, t in TOKENS.items()}
        view = AdminView(self.api_bus.publisher("admin-view"))
        publisher = self.api_bus.publisher("admin")
        publisher.connect(COMMANDS, AUDIT)  # as the admin service does at its start
        api = AdminApi(view, publisher, digests, flush=self.api_bus.flush)
        app = FastAPI()
        app.include_router(api.router())
        self.client = TestClient(app)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.risk_bus.run_service, args=("risk", self._stop), daemon=True)

    @contextmanager
    def running(self) -> Iterator[HaltDrill]:
        """Run the risk service's consumer loop for the duration of the block; then delete the drill's topics."""
        self._thread.start()
        try:
            if not self.risk_bus.loop("risk").ready.wait(60):
                raise RuntimeError("the risk service got no partitions within 60 s")
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=30)
            self.feed.close()
            self.api_bus.close()
            delete_catalog_topics(self.config, default_catalog(), self.prefix)

    def watch(self, topic: str) -> Watch:
        """Read ``topic`` (of this drill's prefix) from its beginning."""
        physical = self.prefix + topic
        consumer = Consumer({**self.config, "group.id": f"watch-{physical}-{time.monotonic_ns()}",
                             "enable.auto.commit": False, "isolation.level": "read_committed"})
        parts = consumer.list_topics(physical, timeout=10).topics[physical].partitions
        consumer.assign([TopicPartition(physical, p, OFFSET_BEGINNING) for p in parts])
        return Watch(consumer, topic)

    def send(self, topic: str, record: dict[str, Any], key: str | None = None) -> None:
        """Publish one record and wait for the broker's acknowledgement."""
        self.feed.publisher("drill").publish(topic, record, key=key)
        self.feed.flush()

    def wait_until(self, ready: Callable[[Any], bool], what: str, timeout_s: float = 30.0) -> None:
        """Block until ``ready(risk engine)`` holds: inputs on different topics arrive in no fixed order over Kafka
        (and the service also handles its own ``control.state``), so a drill waits for its set-up to be in."""
        deadline = time.monotonic() + timeout_s
        while not ready(self.risk_engine):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the risk service has not taken in {what} within {timeout_s} s")
            time.sleep(0.005)

    def call(self, role: str, method: str, path: str, **kwargs: Any) -> int:
        """Call the admin API as ``role``; return the HTTP status."""
        headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
        return self.client.request(method, path, headers=headers, **kwargs).status_code
