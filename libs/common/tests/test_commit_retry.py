"""The Kafka consumer loop's asynchronous commits: what it does with the broker's answer (no broker needed: the
answer is handed to the loop as the consumer's poll would hand it)."""

from __future__ import annotations

from types import SimpleNamespace

from confluent_kafka import KafkaError, TopicPartition
from quorum_common.bus.kafka import ConsumerLoop, KafkaBus


def _loop() -> ConsumerLoop:
    bus = KafkaBus({"bootstrap.servers": "127.0.0.1:1"})
    bus.subscribe("probe", ["md.bars"], lambda _m: None)
    loop = bus.loop("probe")
    loop._assigned = {("md.bars", 0), ("md.bars", 1)}
    return loop


def test_a_refused_commit_is_committed_again_at_the_next_settle() -> None:
    loop = _loop()
    loop._committed = {("md.bars", 0): 10, ("md.bars", 1): 7}
    loop._on_commit(KafkaError(KafkaError.REQUEST_TIMED_OUT), [TopicPartition("md.bars", 0, 10)])
    assert loop._uncommitted == {("md.bars", 0): 10}
    assert ("md.bars", 0) not in loop._committed and loop._committed[("md.bars", 1)] == 7


def test_a_partition_refused_alone_is_retried_and_the_accepted_ones_are_not() -> None:
    loop = _loop()
    loop._committed = {("md.bars", 0): 10, ("md.bars", 1): 7}
    # the client's TopicPartition has a read-only error: a stand-in as the client would hand it over
    refused = SimpleNamespace(topic="md.bars", partition=1, offset=7,
                              error=KafkaError(KafkaError.COORDINATOR_NOT_AVAILABLE))
    loop._on_commit(None, [TopicPartition("md.bars", 0, 10), refused])  # type: ignore[list-item]
    assert loop._uncommitted == {("md.bars", 1): 7}


def test_an_accepted_commit_changes_nothing() -> None:
    loop = _loop()
    loop._committed = {("md.bars", 0): 10}
    loop._on_commit(None, [TopicPartition("md.bars", 0, 10)])
    assert loop._uncommitted == {} and loop._committed == {("md.bars", 0): 10}


def test_a_refused_commit_overtaken_by_a_later_one_or_by_a_rebalance_is_not_retried() -> None:
    loop = _loop()
    loop._committed = {("md.bars", 0): 12}  # a later commit went out after the refused one
    loop._uncommitted = {("md.bars", 1): 9}  # a later offset is pending
    loop._on_commit(KafkaError(KafkaError.REQUEST_TIMED_OUT), [
        TopicPartition("md.bars", 0, 10), TopicPartition("md.bars", 1, 7), TopicPartition("md.bars", 2, 3)])
    assert loop._uncommitted == {("md.bars", 1): 9}  # partition 2 is no longer assigned to this consumer
    assert loop._committed == {("md.bars", 0): 12}
