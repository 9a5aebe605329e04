"""Pytest fixtures that give tests a real Apache Kafka broker.

``kafka_bootstrap`` (session) starts the local broker through :mod:`quorum_common.kafka_local`
when none answers and **fails** the tests that need it when it cannot start: it never skips.
``kafka_topics`` (function) creates the catalog topics under a fresh prefix for one test and
deletes them afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from quorum_common import kafka_local
from quorum_common.bus.kafka_admin import delete_topics, ensure_topics
from quorum_common.schemas import default_catalog, dlq_topic


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a running local broker (started here when needed)."""
    started = False
    if not kafka_local.is_up():
        try:
            kafka_local.up(create_topics=False)
        except kafka_local.KafkaLocalError as exc:
            pytest.fail(f"the Kafka broker could not be started: {exc}", pytrace=False)
        started = True
    yield kafka_local.BOOTSTRAP
    if started and not os.environ.get("QUORUM_KEEP_KAFKA"):
        kafka_local.down()


@pytest.fixture
def kafka_config(kafka_bootstrap: str) -> dict[str, str]:
    """librdkafka client settings for the local broker."""
    return {"bootstrap.servers": kafka_bootstrap}


@pytest.fixture
def kafka_topics(kafka_config: dict[str, str]) -> Iterator[Callable[..., str]]:
    """``make(*topics)`` creates those catalog topics (and DLQs) under a new prefix; returns the prefix."""
    made: list[str] = []

    def make(*topics: str) -> str:
        prefix = f"t{uuid.uuid4().hex[:10]}."
        only = set(topics) if topics else None
        ensure_topics(kafka_config, default_catalog(), prefix, only=only)
        names = [t.name for t in default_catalog() if only is None or t.name in only]
        made.extend(prefix + n for n in names)
        made.extend(prefix + dlq_topic(n) for n in names)
        return prefix

    yield make
    delete_topics(kafka_config, made)
