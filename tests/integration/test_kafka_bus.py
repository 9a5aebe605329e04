"""The Kafka transport against a real broker: round trips, dead letters, crashes, transactions."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from quorum_common.bus.kafka import KafkaBus, poll_wait_s
from quorum_common.bus.kafka_admin import align_topic_configs, delete_topics, ensure_topics, topic_configs
from quorum_common.bus.message import Message
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.engine import envelope
from quorum_common.schemas import default_catalog
from quorum_common.testing.kafka_helpers import produce_raw, read_topic, read_topics
from quorum_common.testing.samples import sample_record

pytestmark = pytest.mark.kafka
CATALOG = default_catalog()
CODEC = TopicCodec(CATALOG)
CHILD = Path(__file__).with_name("relay_child.py")


def bar(i: int, close: float = 100.0) -> dict:
    rec = sample_record(CATALOG.schema_for("md.bars"), seed=i)
    sym = f"S{i % 5}"
    rec.update(envelope(1_700_000_000_000_000_000 + i, "bar", sym), symbol=sym, close=close)
    return rec


def test_every_schema_round_trips_through_kafka(kafka_config, kafka_topics) -> None:
    prefix = kafka_topics()
    bus = KafkaBus(kafka_config, topic_prefix=prefix, codec=CODEC)
    pub = bus.publisher("probe")
    sent = {}
    for spec in CATALOG:
        record = sample_record(CATALOG.schema_for(spec.name), seed=3)
        sent[spec.name] = record
        pub.publish(spec.name, record, key="k")
    bus.flush()
    received = read_topics(kafka_config, [prefix + name for name in sent], expected=len(sent), idle_s=0.5)
    for name, record in sent.items():
        msgs = received[prefix + name]
        assert len(msgs) == 1, name
        schema, decoded = CODEC.decode(name, msgs[0].value())
        assert schema == CATALOG.topic(name).value_schema
        assert decoded == record


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_malformed_and_failing_records_go_to_the_dlq_and_the_consumer_goes_on(
    kafka_config, kafka_topics, delivery: str
) -> None:
    prefix = kafka_topics("md.bars", "signals.raw")
    topic = prefix + "md.bars"
    produce_raw(kafka_config, topic, [
        ("S0", CODEC.encode("md.bars", bar(0))),
        ("S0", b"\x00garbage that is not avro"),
        ("S0", CODEC.encode("md.bars", bar(1, close=-5.0))),
        ("S0", CODEC.encode("md.bars", bar(2))),
    ])
    handled: list[float] = []

    def handler(msg: Message) -> None:
        if msg.value["close"] < 0:
            raise ValueError("negative close price")
        handled.append(msg.value["close"])

    bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery=delivery)
    bus.subscribe("fragile", ["md.bars"], handler)
    bus.run_service("fragile", idle_exit_s=1.5)
    assert handled == [100.0, 100.0]
    dlq = read_topic(kafka_config, prefix + "dlq.md.bars", expected=2)
    assert len(dlq) == 2
    headers = [dict(m.headers()) for m in dlq]
    assert [h["dlq.reason"] for h in headers] == [b"decode_error", b"handler_error"]
    assert b"negative close price" in headers[1]["dlq.error"]
    assert headers[0]["dlq.source.offset"] == b"1" and headers[0]["dlq.service"] == b"fragile"
    assert dlq[0].value() == b"\x00garbage that is not avro"
    metrics = bus.metrics_for("fragile")
    assert metrics.dead_letters.labels("md.bars", "decode_error")._value.get() == 1
    # Everything was committed: a restarted consumer of the same group receives nothing again.
    again: list = []
    bus2 = KafkaBus(kafka_config, topic_prefix=prefix, delivery=delivery)
    bus2.subscribe("fragile", ["md.bars"], again.append)
    bus2.run_service("fragile", idle_exit_s=1.0)
    assert again == []


def test_a_source_dead_letters_refused_input_to_the_dlq_topic(kafka_config, kafka_topics) -> None:
    prefix = kafka_topics("md.bars")
    bus = KafkaBus(kafka_config, topic_prefix=prefix)
    bus.publisher("ingest").dead_letter("md.bars", bar(9, close=-1.0), "non_positive_price", key="S4",
                                        error="close -1.0 <= 0")
    bus.flush()
    (msg,) = read_topic(kafka_config, prefix + "dlq.md.bars", expected=1)
    headers = dict(msg.headers())
    assert headers["dlq.reason"] == b"non_positive_price" and headers["dlq.error"] == b"close -1.0 <= 0"
    assert CODEC.decode("md.bars", msg.value())[1]["close"] == -1.0


def test_a_closed_bus_lets_go_of_its_producers_and_a_later_record_still_goes_out(kafka_config, kafka_topics) -> None:
    """close() flushes, then drops the producers: no librdkafka handle is left reconnecting (and logging) once the
    broker stops. A record published after it gets a new producer."""
    prefix = kafka_topics("md.bars")
    bus = KafkaBus(kafka_config, topic_prefix=prefix)
    pub = bus.publisher("ingest")
    pub.publish("md.bars", bar(1), key="S1")
    bus.close()
    assert pub._producer is None
    pub.publish("md.bars", bar(2), key="S2")
    bus.close()
    got = read_topic(kafka_config, prefix + "md.bars", expected=2)
    assert sorted(CODEC.decode("md.bars", m.value())[1]["symbol"] for m in got) == ["S1", "S2"]


def test_a_consumer_loop_that_ends_lets_go_of_its_producer(kafka_config, kafka_topics) -> None:
    """Nothing but the garbage collector would free it otherwise (a bus and its loops refer to each other), and it
    went on reconnecting, and logging, once the broker stopped."""
    prefix = kafka_topics("md.bars", "signals.raw")
    bus = KafkaBus(kafka_config, topic_prefix=prefix)
    pub = bus.publisher("relay")
    template = sample_record(CATALOG.schema_for("signals.raw"))
    bus.subscribe("relay", ["md.bars"], lambda m: pub.publish("signals.raw", {**template, **envelope(
        m.ts_event, "relay", m.key, correlation_id=m.value["event_id"]), "symbol": m.value["symbol"]}, key=m.key))
    produce_raw(kafka_config, prefix + "md.bars", [("S1", CODEC.encode("md.bars", bar(1)))])
    bus.run_service("relay", threading.Event(), idle_exit_s=1.0)
    assert pub._producer is None
    assert len(read_topic(kafka_config, prefix + "signals.raw", expected=1)) == 1


def _run_child(kafka_bootstrap: str, prefix: str, delivery: str, **env: str) -> subprocess.Popen:
    full_env = {**os.environ, "BOOTSTRAP": kafka_bootstrap, "PREFIX": prefix, "DELIVERY": delivery, **env}
    return subprocess.Popen([sys.executable, str(CHILD)], env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sigkill_after_producing_before_committing_loses_nothing(kafka_bootstrap, kafka_config, kafka_topics) -> None:
    prefix = kafka_topics("md.bars", "signals.raw")
    bars = [bar(i) for i in range(200)]
    produce_raw(kafka_config, prefix + "md.bars", [(b["symbol"], CODEC.encode("md.bars", b)) for b in bars])
    batch = 20
    crashed = _run_child(kafka_bootstrap, prefix, "at_least_once", BATCH=str(batch), KILL_ON_COMMIT="3")
    crashed.communicate(timeout=120)
    assert crashed.returncode == -signal.SIGKILL
    survivor = _run_child(kafka_bootstrap, prefix, "at_least_once", BATCH=str(batch))
    _out, err = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, err[-2000:]
    outputs = read_topic(kafka_config, prefix + "signals.raw", expected=len(bars))
    ids = Counter(CODEC.decode("signals.raw", m.value())[1]["correlation_id"] for m in outputs)
    assert set(ids) == {b["event_id"] for b in bars}, "a bar was lost"
    duplicated = sum(n - 1 for n in ids.values())
    # Only the uncommitted batch (at most one batch per partition) may be handled twice.
    assert 0 < duplicated <= batch * CATALOG.topic("md.bars").partitions


def test_sigterm_finishes_the_batch_commits_and_loses_or_repeats_nothing(
    kafka_bootstrap, kafka_config, kafka_topics
) -> None:
    prefix = kafka_topics("md.bars", "signals.raw")
    bars = [bar(i) for i in range(600)]  # 12 s of work at 20 ms each: SIGTERM lands mid-stream
    produce_raw(kafka_config, prefix + "md.bars", [(b["symbol"], CODEC.encode("md.bars", b)) for b in bars])
    first = _run_child(kafka_bootstrap, prefix, "at_least_once", BATCH="10", SLOW_MS="20")
    deadline = time.monotonic() + 60
    while len(read_topic(kafka_config, prefix + "signals.raw", idle_s=0.2, timeout_s=2)) < 20:
        assert time.monotonic() < deadline and first.poll() is None, "the relay made no progress"
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err[-2000:]
    handled_first = int(out.split()[-1])
    assert 0 < handled_first < len(bars), "SIGTERM should have landed mid-stream"
    second = _run_child(kafka_bootstrap, prefix, "at_least_once", BATCH="10")
    _out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err[-2000:]
    outputs = read_topic(kafka_config, prefix + "signals.raw", expected=len(bars))
    ids = Counter(CODEC.decode("signals.raw", m.value())[1]["correlation_id"] for m in outputs)
    assert set(ids) == {b["event_id"] for b in bars}
    assert max(ids.values()) == 1, "a graceful stop commits what it handled: nothing is handled twice"


def test_transaction_aborted_by_a_crash_is_invisible_and_the_retry_is_exactly_once(
    kafka_bootstrap, kafka_config, kafka_topics, tmp_path
) -> None:
    prefix = kafka_topics("md.bars", "signals.raw")
    bars = [bar(i) for i in range(200)]
    produce_raw(kafka_config, prefix + "md.bars", [(b["symbol"], CODEC.encode("md.bars", b)) for b in bars])
    marker = tmp_path / "hang"
    child = _run_child(kafka_bootstrap, prefix, "exactly_once", BATCH="500", HANG_AT="40", HANG_MARKER=str(marker))
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline and child.poll() is None, "relay never reached the hang point"
        time.sleep(0.05)
    time.sleep(1.0)  # let the 39 outputs already produced reach the broker inside the open transaction
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    uncommitted = read_topic(kafka_config, prefix + "signals.raw", isolation="read_uncommitted", idle_s=1.0)
    assert len(uncommitted) >= 39, "the open transaction's records should be on the broker"
    survivor = _run_child(kafka_bootstrap, prefix, "exactly_once", BATCH="500")
    _out, err = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, err[-2000:]
    committed = read_topic(kafka_config, prefix + "signals.raw", expected=len(bars))
    ids = Counter(CODEC.decode("signals.raw", m.value())[1]["correlation_id"] for m in committed)
    assert set(ids) == {b["event_id"] for b in bars}
    assert max(ids.values()) == 1, "exactly once: no duplicates for a read_committed reader"


def test_read_committed_sees_nothing_of_an_aborted_transaction_and_all_of_a_committed_one(
    kafka_config, kafka_topics
) -> None:
    prefix = kafka_topics("signals.raw")
    topic = prefix + "signals.raw"
    producer = Producer({**kafka_config, "transactional.id": f"{prefix}txn-test", "enable.idempotence": True})
    producer.init_transactions(30)
    template = sample_record(CATALOG.schema_for("signals.raw"))
    producer.begin_transaction()
    for i in range(10):
        producer.produce(topic, CODEC.encode("signals.raw", {**template, "event_id": f"aborted-{i}"}))
    producer.flush(10)
    producer.abort_transaction(30)
    producer.begin_transaction()
    for i in range(10):
        producer.produce(topic, CODEC.encode("signals.raw", {**template, "event_id": f"committed-{i}"}))
    producer.commit_transaction(30)
    committed = [CODEC.decode("signals.raw", m.value())[1]["event_id"] for m in read_topic(kafka_config, topic)]
    everything = read_topic(kafka_config, topic, isolation="read_uncommitted")
    assert committed == [f"committed-{i}" for i in range(10)]
    assert len(everything) == 20


def test_a_trace_started_in_one_service_is_continued_by_the_consumer(kafka_config, kafka_topics) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from quorum_common.runtime.tracing import setup_tracing

    exporter = InMemorySpanExporter()
    setup_tracing("tests", extra=exporter)
    prefix = kafka_topics("md.bars")
    producer_bus = KafkaBus(kafka_config, topic_prefix=prefix)
    with trace.get_tracer("ingest").start_as_current_span("ingest publish") as origin:
        producer_bus.publisher("ingest").publish("md.bars", bar(1), key="S1")
    producer_bus.flush()
    seen: list[Message] = []
    consumer_bus = KafkaBus(kafka_config, topic_prefix=prefix)
    consumer_bus.subscribe("alpha", ["md.bars"], seen.append)
    consumer_bus.run_service("alpha", threading.Event(), idle_exit_s=1.0)
    assert len(seen) == 1 and "traceparent" in seen[0].headers
    spans = [s for s in exporter.get_finished_spans() if s.name == "md.bars process"
             and s.attributes.get("quorum.service") == "alpha"]
    assert len(spans) == 1
    consumer_span = spans[0]
    assert consumer_span.context.trace_id == origin.get_span_context().trace_id
    assert consumer_span.parent.span_id == origin.get_span_context().span_id
    assert consumer_span.kind == trace.SpanKind.CONSUMER


def test_exactly_once_commits_the_offsets_of_records_that_produced_nothing(kafka_config, kafka_topics) -> None:
    """Batches without outputs open no transaction, yet their offsets are committed once the consumer has
    caught up (not only at a stop): a restart does not handle them all again."""
    prefix = kafka_topics("md.bars")
    bars = [bar(i) for i in range(60)]
    produce_raw(kafka_config, prefix + "md.bars", [(b["symbol"], CODEC.encode("md.bars", b)) for b in bars])
    bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery="exactly_once", batch_size=5, commit_interval_ms=0)
    bus.subscribe("silent", ["md.bars"], lambda _msg: None)
    stop = threading.Event()
    thread = threading.Thread(target=bus.run_service, args=("silent", stop))
    thread.start()
    probe = Consumer({**kafka_config, "group.id": bus.physical("silent")})
    parts = [TopicPartition(prefix + "md.bars", p) for p in range(CATALOG.topic("md.bars").partitions)]
    try:
        deadline, committed = time.monotonic() + 30, 0
        while time.monotonic() < deadline and committed < 60:
            time.sleep(0.2)
            committed = sum(max(tp.offset, 0) for tp in probe.committed(parts, timeout=10))
        assert bus.loop("silent").handled == 60
        assert committed == 60, f"{committed} of 60 offsets committed while the consumer runs"
    finally:
        probe.close()
        stop.set()
        thread.join(timeout=30)


def test_a_topic_whose_partitions_differ_from_the_catalog_is_named_in_a_warning(kafka_config, caplog) -> None:
    """Kafka cannot take partitions away: an old topic keeps its count, and the operator is told which."""
    prefix = f"t-{uuid.uuid4().hex[:8]}-"
    catalog = default_catalog()
    old = prefix + "signals.raw"
    admin = AdminClient(kafka_config)
    admin.create_topics([NewTopic(old, num_partitions=catalog.topic("signals.raw").partitions + 2,
                                  replication_factor=1)])[old].result()
    try:
        with caplog.at_level(logging.WARNING, logger="quorum_common.bus.kafka_admin"):
            created = ensure_topics(kafka_config, catalog, prefix, only={"signals.raw", "md.bars"})
        warned = [r for r in caplog.records if r.getMessage().startswith(f"topic {old} has ")]
        assert [(r.topic, r.partitions, r.catalog) for r in warned] == [
            (old, catalog.topic("signals.raw").partitions + 2, catalog.topic("signals.raw").partitions)]
        assert old not in created and prefix + "md.bars" in created
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="quorum_common.bus.kafka_admin"):
            ensure_topics(kafka_config, catalog, prefix, only={"signals.raw"}, check_partitions=False)  # a service's
        assert not [r for r in caplog.records if r.getMessage().startswith(f"topic {old} has ")]
    finally:
        delete_topics(kafka_config, [old, prefix + "md.bars", prefix + "dlq.signals.raw", prefix + "dlq.md.bars"])


def _configs(admin: AdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """The broker's configuration of each topic of ``names`` (waiting a moment for ones just created)."""
    described: dict[str, dict[str, str]] = {}
    deadline = time.monotonic() + 30
    while len(described) < len(names):  # a topic just created may be unknown to the broker answering for a moment
        resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names if n not in described]
        for resource, future in admin.describe_configs(resources).items():
            try:
                described[resource.name] = {k: v.value for k, v in future.result(30).items()}
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
        time.sleep(0.2)
    return described


@pytest.mark.kafka
def test_an_existing_topic_gets_the_catalog_configuration_when_aligned(kafka_config, caplog) -> None:
    """Topics made before a catalog change (a compaction lag, a larger message size, a longer retention): a service
    leaves them as they are, the topics job (``align``) sets what differs, drops an override the catalog leaves to
    the broker's default, leaves other settings alone, and a second alignment changes nothing."""
    prefix = f"t-{uuid.uuid4().hex[:8]}-"
    catalog = default_catalog()
    snapshots, checkpoints, bars = (prefix + t for t in ("portfolio.snapshots", "state.checkpoints", "md.bars"))
    admin = AdminClient(kafka_config)
    old = {snapshots: {"cleanup.policy": "compact", "retention.ms": "1000", "segment.ms": "3600000"},
           checkpoints: {"cleanup.policy": "compact", "retention.ms": "1000"},
           bars: {"cleanup.policy": "delete", "retention.ms": "1000", "min.compaction.lag.ms": "5"}}
    made = admin.create_topics([NewTopic(n, num_partitions=catalog.topic(n[len(prefix):]).partitions,
                                         replication_factor=1, config=c) for n, c in old.items()])
    for future in made.values():
        future.result()
    only = {"portfolio.snapshots", "state.checkpoints", "md.bars"}
    try:
        ensure_topics(kafka_config, catalog, prefix, only=only)
        assert _configs(admin, [snapshots])[snapshots]["retention.ms"] == "1000", "a service leaves them as they are"
        with caplog.at_level(logging.INFO, logger="quorum_common.bus.kafka_admin"):
            ensure_topics(kafka_config, catalog, prefix, only=only, align=True)
        got = _configs(admin, list(old))
        for name in old:
            spec = catalog.topic(name[len(prefix):])
            assert (got[name]["cleanup.policy"], got[name]["retention.ms"]) == (spec.cleanup_policy,
                                                                                str(spec.retention_ms)), name
            assert got[name]["min.compaction.lag.ms"] == str(spec.min_compaction_lag_ms or 0), name
        assert got[checkpoints]["max.message.bytes"] == str(catalog.topic("state.checkpoints").max_message_bytes)
        assert got[snapshots]["segment.ms"] == "3600000", "a setting the catalog does not name is left alone"
        dlq = prefix + "dlq.state.checkpoints"  # made by the first call: it takes what its topic takes
        assert _configs(admin, [dlq])[dlq]["max.message.bytes"] == got[checkpoints]["max.message.bytes"]
        changed = {(r.topic, r.config) for r in caplog.records
                   if r.getMessage() == "topic configuration aligned with the catalog"}
        assert changed == {(snapshots, "retention.ms"), (snapshots, "min.compaction.lag.ms"),
                           (checkpoints, "retention.ms"), (checkpoints, "max.message.bytes"),
                           (bars, "retention.ms"), (bars, "min.compaction.lag.ms")}, changed
        assert align_topic_configs(admin, [(n, topic_configs(catalog.topic(n[len(prefix):]))) for n in old]) == []
    finally:
        delete_topics(kafka_config, [n for t in only for n in (prefix + t, prefix + "dlq." + t)])


@pytest.mark.kafka
def test_the_catalog_topics_are_created_with_their_configuration(kafka_config, kafka_topics) -> None:
    catalog = list(default_catalog())
    prefix = kafka_topics()
    described = {name[len(prefix):]: c for name, c in
                 _configs(AdminClient(kafka_config), [prefix + t.name for t in catalog]).items()}
    for spec in catalog:
        got = described[spec.name]
        assert (got["cleanup.policy"], got["retention.ms"]) == (spec.cleanup_policy, str(spec.retention_ms)), spec.name
        assert got["min.compaction.lag.ms"] == str(spec.min_compaction_lag_ms or 0), spec.name
        if spec.max_message_bytes is not None:
            assert got["max.message.bytes"] == str(spec.max_message_bytes), spec.name
    # A restarted critic rebuilds its NAV window from the snapshots: a year of them outlives compaction.
    assert described["portfolio.snapshots"]["min.compaction.lag.ms"] == str(365 * 86_400_000)


@pytest.mark.parametrize(("until_due_s", "wait_s"), [(0.0004, 0.001), (0.0123, 0.013), (0.2, 0.05), (0.0, 0.0),
                                                      (-1.0, 0.0), (0.001, 0.001)])
def test_a_poll_waits_whole_milliseconds_until_the_commit_is_due(until_due_s: float, wait_s: float) -> None:
    assert poll_wait_s(until_due_s, 0.05) == pytest.approx(wait_s)


def test_a_sub_millisecond_wait_still_waits_on_the_client(kafka_config: dict[str, str]) -> None:
    """The client truncates a poll's timeout to milliseconds: the rounded wait keeps a loop waiting for a commit
    that is due in 0.4 ms from spinning through empty polls until then."""
    consumer = Consumer({**kafka_config, "group.id": f"wait-{uuid.uuid4().hex[:8]}"})
    try:
        polls, deadline = 0, time.monotonic() + 0.05
        while (left := deadline - time.monotonic()) > 0:
            assert consumer.poll(poll_wait_s(left, 1.0)) is None
            polls += 1
        assert polls <= 3, f"{polls} polls in the last 50 ms before the commit was due"
    finally:
        consumer.close()
