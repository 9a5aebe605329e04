"""Dead letters sent back to their topic once they can be handled (quorum_common.bus.redrive, `quorum-desk dlq`),
against the real broker: a consumer dead-letters what it cannot handle, the bug is fixed, the redrive sends the
letters back, and the fixed consumer of the same group handles them and nothing else."""

from __future__ import annotations

import gc

import pytest
from confluent_kafka import Producer
from quorum_common.bus.deadletter import REDRIVEN_FOR_HEADER, REDRIVEN_FROM_HEADER, DeadLetter
from quorum_common.bus.kafka import KafkaBus
from quorum_common.bus.lockstep import PHASE_HEADER
from quorum_common.bus.message import Message
from quorum_common.bus.redrive import REFUSED_HEADER, RedriveError, read_dead_letters, redrive
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.engine import envelope
from quorum_common.schemas import SchemaError, default_catalog
from quorum_common.testing.kafka_helpers import read_topic
from quorum_common.testing.samples import sample_record
from quorum_desk.app import main

pytestmark = pytest.mark.kafka
CATALOG = default_catalog()
CODEC = TopicCodec(CATALOG)
GARBAGE = b"\x00garbage that is not avro"


def bar(i: int, close: float) -> dict:
    rec = sample_record(CATALOG.schema_for("md.bars"), seed=i)
    rec.update(envelope(1_700_000_000_000_000_000 + i, "bar", "S0"), symbol="S0", close=close)
    return rec


def open_producers() -> dict[int, Producer]:
    """The Kafka producers alive in this process that are not closed, by id."""
    gc.collect()
    found = {}
    for obj in gc.get_objects():
        if isinstance(obj, Producer):
            try:
                obj.poll(0)
            except RuntimeError:  # "Producer has been closed"
                continue
            found[id(obj)] = obj
    return found


def produce(config: dict[str, str], topic: str, items: list[tuple[bytes, dict[str, str]]]) -> None:
    producer = Producer({**config, "enable.idempotence": True, "acks": "all"})
    for value, headers in items:
        producer.produce(topic, value, b"S0", headers=[(k, v.encode()) for k, v in headers.items()])
    assert producer.flush(30) == 0


def consume(config: dict[str, str], prefix: str, accept_negative: bool, service: str = "fragile") -> list[Message]:
    """The consumer group ``service`` over md.bars until idle: a negative close raises unless ``accept_negative``."""
    handled: list[Message] = []

    def handler(msg: Message) -> None:
        if msg.value["close"] < 0 and not accept_negative:
            raise ValueError("negative close price")
        handled.append(msg)

    bus = KafkaBus(config, topic_prefix=prefix, delivery="exactly_once")
    bus.subscribe(service, ["md.bars"], handler)
    bus.run_service(service, idle_exit_s=1.5)
    return handled


def test_letters_a_fixed_reader_can_handle_go_back_once_and_the_rest_stay(kafka_config, kafka_topics, capsys) -> None:
    prefix = kafka_topics("md.bars")
    negative = CODEC.encode("md.bars", bar(1, close=-5.0))
    produce(kafka_config, prefix + "md.bars", [
        (CODEC.encode("md.bars", bar(0, close=100.0)), {}),
        (GARBAGE, {}),
        (negative, {PHASE_HEADER: "17", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}),
    ])
    assert [m.value["close"] for m in consume(kafka_config, prefix, accept_negative=False)] == [100.0]
    # a letter refused for its content (as ingest refuses a bar that fails its data checks)
    content = DeadLetter("md.bars", "S0", CODEC.encode("md.bars", bar(2, close=0.0)), "non_positive_price",
                         "close=0.0", "ingest")
    produce(kafka_config, prefix + "dlq.md.bars", [(content.payload, content.dlq_headers())])
    letters = read_dead_letters(kafka_config, prefix, "md.bars")
    assert [x.reason for x in letters.letters] == ["decode_error", "handler_error", "non_positive_price"]
    assert len(letters.pending()) == 3

    dry = redrive(kafka_config, prefix, "md.bars", CODEC, dry_run=True)
    assert (dry.read, dry.redriven, sum(dry.requeued.values())) == (3, 1, 1)
    assert dict(dry.passed) == {"non_positive_price": 1}
    assert len(read_topic(kafka_config, prefix + "md.bars", expected=3)) == 3  # a dry run sends nothing
    assert len(read_dead_letters(kafka_config, prefix, "md.bars").pending()) == 3  # and passes nothing

    done = redrive(kafka_config, prefix, "md.bars", CODEC)
    assert (done.read, done.redriven, dict(done.passed)) == (3, 1, {"non_positive_price": 1})
    back = read_topic(kafka_config, prefix + "md.bars", expected=4)[3]
    headers = {k: v.decode() for k, v in back.headers()}
    assert back.value() == negative and back.key() == b"S0"
    assert PHASE_HEADER not in headers
    assert {k for k in headers if k.startswith("dlq.")} == {REDRIVEN_FROM_HEADER, REDRIVEN_FOR_HEADER}
    assert headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c")
    assert headers[REDRIVEN_FROM_HEADER] == f"{prefix}dlq.md.bars/0/1" and headers[REDRIVEN_FOR_HEADER] == "fragile"
    # the garbage is appended to the dead-letter topic again, saying why it is still refused
    dead = read_dead_letters(kafka_config, prefix, "md.bars")
    assert len(dead.letters) == 4 and [x.payload for x in dead.pending()] == [GARBAGE]
    assert "CorruptMessageError" in dead.pending()[0].headers[REFUSED_HEADER]

    # the fixed reader of the same group gets the redriven letter, and only it
    again = consume(kafka_config, prefix, accept_negative=True)
    assert [m.value["close"] for m in again] == [-5.0]

    # a second redrive sends nothing twice: only the still unreadable letter is pending, and appended once more
    second = redrive(kafka_config, prefix, "md.bars", CODEC)
    assert (second.read, second.redriven, sum(second.requeued.values()), dict(second.passed)) == (1, 0, 1, {})
    assert len(read_topic(kafka_config, prefix + "md.bars", expected=4)) == 4

    assert main(["dlq", "list", "--topic", "md.bars", "--prefix", prefix,
                 "--bootstrap", kafka_config["bootstrap.servers"]]) == 0
    out = capsys.readouterr().out
    assert "dlq.md.bars: 5 letters, 1 not passed by a redrive yet; 2 of them copies that redrives appended of " \
        "letters they could not send back, so 3 records refused" in out
    assert "non_positive_price (ingest)" in out and "pending        1  CorruptMessageError" in out
    assert "       1  decode_error (fragile)" in out  # the garbage once, not once a copy
    assert main(["dlq", "redrive", "--topic", "md.bars", "--dry-run", "--prefix", prefix,
                 "--bootstrap", kafka_config["bootstrap.servers"]]) == 0
    assert "1 pending letters; would send 0 back to md.bars" in capsys.readouterr().out

    # another service, which handled the original, never gets the letter sent back for the one that refused it
    bystander = consume(kafka_config, prefix, accept_negative=True, service="bystander")
    assert [m.value["close"] for m in bystander] == [100.0, -5.0]


def test_a_redrive_started_while_another_runs_fences_it_off_and_each_letter_goes_back_once(
        kafka_config, kafka_topics) -> None:
    prefix = kafka_topics("md.bars")
    letters = [DeadLetter("md.bars", "S0", CODEC.encode("md.bars", bar(i, close=-1.0)), "handler_error", "boom",
                          "fragile", 0, i) for i in range(1200)]
    produce(kafka_config, prefix + "dlq.md.bars", [(x.payload, x.dlq_headers()) for x in letters])
    inner: list = []
    before = open_producers()

    def second_redrive(done: int, total: int) -> None:
        # the first redrive has sent 1000 letters in its open transaction: a second one starts and runs to the end
        if not inner:
            inner.append(redrive(kafka_config, prefix, "md.bars", CODEC))

    with pytest.raises(RedriveError, match="nothing was sent"):
        redrive(kafka_config, prefix, "md.bars", CODEC, progress=second_redrive)
    assert inner[0].redriven == 1200
    back = read_topic(kafka_config, prefix + "md.bars", expected=1200, idle_s=3.0)
    assert len(back) == 1200  # the fenced redrive's 1000 never became readable
    assert sorted(dict(m.headers())[REDRIVEN_FROM_HEADER].decode() for m in back) == sorted(
        f"{prefix}dlq.md.bars/0/{i}" for i in range(1200))
    assert redrive(kafka_config, prefix, "md.bars", CODEC).read == 0
    # the fenced redrive's producer is closed although its error outlives it (confluent-kafka keeps the exception
    # of a fatal error, and with it the redrive's frame): left open, it would go on reconnecting and logging after
    # the broker stopped
    assert open_producers().keys() <= before.keys()


def test_a_topic_outside_the_catalog_is_refused_by_name(kafka_config, capsys) -> None:
    with pytest.raises(SchemaError, match=r"'md\.bras' is not in the catalog"):
        redrive(kafka_config, "", "md.bras", CODEC)
    assert main(["dlq", "redrive", "--topic", "md.bras", "--bootstrap", kafka_config["bootstrap.servers"]]) == 2
    assert "'md.bras' is not in the catalog" in capsys.readouterr().err
    assert main(["dlq", "redrive", "--bootstrap", kafka_config["bootstrap.servers"]]) == 2
    assert "redrive takes exactly one topic" in capsys.readouterr().err
