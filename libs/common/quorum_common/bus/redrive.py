"""Dead letters back to their topic once they can be handled: ``quorum-desk dlq list`` and ``dlq redrive``.

A consumer sends what it cannot decode (``decode_error``: e.g. a record of a schema version released after the
reader was built) or what its handler raised on (``handler_error``) to ``dlq.<topic>``, byte for byte, with the reason
in headers (:mod:`quorum_common.bus.deadletter`). Once the reader is upgraded or the bug fixed, :func:`redrive` sends
those letters back:

- letters of ``dlq.<topic>`` are read from where the last redrive of that topic stopped (the consumer group
  :func:`redrive_group`) to the end the topic had when the redrive started;
- a ``decode_error`` or ``handler_error`` letter whose payload this build decodes with the topic's schema goes back to
  ``<topic>`` with its key and headers, less the ``dlq.*`` headers and the lockstep headers (a redriven record comes
  from outside the lockstep, like an operator's command: a lockstep consumer handles it at its next tick), plus
  ``dlq.redriven-from`` (``dlq.<topic>/<partition>/<offset>``) and ``dlq.redriven-for``, the service that refused it:
  only that service's consumers handle it again (:func:`~quorum_common.bus.deadletter.meant_for`), the others
  handled the original; a rebuild from history leaves every redriven record out, as the original in its place
  stands for it (a build that handles the letter handles the original there);
- such a letter that this build still cannot decode is appended to ``dlq.<topic>`` again, with
  ``dlq.redrive-refused`` saying why, so the next redrive sees it again (each redrive leaves one pending copy);
- a letter of any other reason is a refusal of the record itself (a bar that failed ingest's data checks, a fill with
  a negative price), which no upgrade makes valid: it is passed over and stays where it is;
- every record produced and the group's new offsets go in one Kafka transaction, so a redrive that fails or is killed
  half-way sends nothing, and one that commits never sends a letter twice.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Producer, TopicPartition
from quorum_common.bus.deadletter import REASON_DECODE, REASON_HANDLER, REDRIVEN_FOR_HEADER, REDRIVEN_FROM_HEADER
from quorum_common.bus.history import read_partitions
from quorum_common.bus.kafka_admin import group_committed, partitions_of, watermark_offsets
from quorum_common.bus.lockstep import PHASE_HEADER
from quorum_common.bus.message import headers_to_dict
from quorum_common.bus.phase_barrier import AFTER_HEADER, WAIT_HEADER
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.codec import CodecError
from quorum_common.schemas import dlq_topic

REDRIVABLE = frozenset({REASON_DECODE, REASON_HANDLER})
"""Reasons that say the reader failed, not the record: the letters a redrive may send back."""
REFUSED_HEADER = "dlq.redrive-refused"
_DROPPED_HEADERS = (PHASE_HEADER, AFTER_HEADER, WAIT_HEADER)


class RedriveError(RuntimeError):
    """A redrive could not be done; the message says why (nothing was sent)."""


def redrive_group(prefix: str, topic: str) -> str:
    """The consumer group whose offsets on ``dlq.<topic>`` mark where the last redrive of ``topic`` stopped."""
    return f"{prefix}quorum-dlq-redrive.{topic}"


@dataclass(frozen=True)
class Letter:
    """One record of a dead-letter topic."""

    partition: int
    offset: int
    key: bytes | None
    payload: bytes
    headers: dict[str, str]

    @property
    def reason(self) -> str:
        """Why it was refused (``dlq.reason``)."""
        return self.headers.get("dlq.reason", "unknown")

    @property
    def service(self) -> str:
        """The service that refused it (``dlq.service``)."""
        return self.headers.get("dlq.service", "unknown")


@dataclass
class DeadLetterTopic:
    """The letters of one ``dlq.<topic>`` up to its end when read, and where the last redrive stopped."""

    topic: str
    letters: list[Letter]
    pending_from: dict[int, int]
    """Per partition: the first offset no redrive has passed yet."""
    ends: dict[int, int]

    def pending(self) -> list[Letter]:
        """The letters no redrive has passed yet."""
        return [x for x in self.letters if x.offset >= self.pending_from.get(x.partition, 0)]


def read_dead_letters(client_config: dict[str, str], prefix: str, topic: str, *, everything: bool = True,
                      timeout_s: float = 30.0) -> DeadLetterTopic:
    """The letters of ``dlq.<topic>`` (read committed, joining no group): all of them, or with ``everything=False``
    only those no redrive has passed. A topic that does not exist has none."""
    physical = prefix + dlq_topic(topic)
    probe = Consumer({**client_config, "group.id": redrive_group(prefix, topic), "enable.auto.commit": False,
                      "isolation.level": "read_committed"})
    try:
        partitions = partitions_of(probe, physical)
        ends = {tp.partition: watermark_offsets(probe, tp, timeout_s)[1] for tp in partitions}
        committed = group_committed(probe, partitions, timeout_s) if partitions else []
    finally:
        probe.close()
    pending_from = {tp.partition: max(tp.offset, 0) for tp in committed}
    starts = {} if everything else {(physical, p): o for p, o in pending_from.items()}
    letters = [Letter(m.partition(), m.offset(), m.key(), m.value() or b"", headers_to_dict(m.headers()))
               for m in read_partitions(client_config, {(physical, p): end for p, end in ends.items()}, timeout_s,
                                        starts)]
    return DeadLetterTopic(topic, letters, pending_from, ends)


def why_not_redriven(codec: TopicCodec, topic: str, letter: Letter) -> str | None:
    """None when ``letter`` goes back to ``topic``; else why not (its reason, or why this build cannot decode it)."""
    if letter.reason not in REDRIVABLE:
        return f"refused for its content ({letter.reason}), not by its reader"
    try:
        codec.decode(topic, letter.payload)
    except CodecError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass
class RedriveResult:
    """What a redrive did (or, dry, would do)."""

    topic: str
    read: int = 0
    redriven: int = 0
    requeued: Counter[str] = field(default_factory=Counter)
    """Still undecodable letters appended to the dead-letter topic again, by why."""
    passed: Counter[str] = field(default_factory=Counter)
    """Letters refused for their content, left where they are, by reason."""
    dry_run: bool = False


def _redriven_headers(letter: Letter, physical_dlq: str) -> list[tuple[str, bytes]]:
    kept = {k: v for k, v in letter.headers.items() if not k.startswith("dlq.") and k not in _DROPPED_HEADERS}
    kept[REDRIVEN_FROM_HEADER] = f"{physical_dlq}/{letter.partition}/{letter.offset}"
    kept[REDRIVEN_FOR_HEADER] = letter.service
    return [(k, v.encode()) for k, v in kept.items()]


def _classify(codec: TopicCodec, dead: DeadLetterTopic,
              dry_run: bool) -> tuple[RedriveResult, list[tuple[Letter, str | None]]]:
    """The pending letters of ``dead``, each with why it does not go back (None: it does), and their counts."""
    pending = dead.pending()
    result = RedriveResult(dead.topic, read=len(pending), dry_run=dry_run)
    verdicts = [(letter, why_not_redriven(codec, dead.topic, letter)) for letter in pending]
    for letter, why in verdicts:
        if why is None:
            result.redriven += 1
        elif letter.reason in REDRIVABLE:
            result.requeued[why] += 1
        else:
            result.passed[letter.reason] += 1
    return result, verdicts


def redrive(client_config: dict[str, str], prefix: str, topic: str, codec: TopicCodec | None = None, *,
            dry_run: bool = False, timeout_s: float = 30.0,
            progress: Callable[[int, int], None] | None = None) -> RedriveResult:
    """Send the pending letters of ``dlq.<topic>`` that this build can now handle back to ``topic`` (see the module
    docstring), in one transaction with the redrive group's new offsets; ``dry_run`` sends and commits nothing.
    Redrives of one topic share a transactional id: one started while another runs fences the older off (its commit
    fails, nothing of it lands) before it reads where the last one stopped. ``progress(done, total)`` is called
    every 1000 letters."""
    codec = codec or TopicCodec()
    codec.catalog.topic(topic)  # an unknown topic is refused by name
    if dry_run:
        return _classify(codec, read_dead_letters(client_config, prefix, topic, everything=False,
                                                  timeout_s=timeout_s), True)[0]
    physical, physical_dlq = prefix + topic, prefix + dlq_topic(topic)
    producer = Producer({**client_config, "transactional.id": redrive_group(prefix, topic),
                         "enable.idempotence": True, "acks": "all"})
    group = Consumer({**client_config, "group.id": redrive_group(prefix, topic), "enable.auto.commit": False})
    try:
        producer.init_transactions(timeout_s)
        dead = read_dead_letters(client_config, prefix, topic, everything=False, timeout_s=timeout_s)
        result, verdicts = _classify(codec, dead, False)
        if not verdicts:
            return result
        producer.begin_transaction()
        for done, (letter, why) in enumerate(verdicts, 1):
            if why is None:
                producer.produce(physical, letter.payload, letter.key, headers=_redriven_headers(letter, physical_dlq))
            elif letter.reason in REDRIVABLE:
                headers = {**letter.headers, REFUSED_HEADER: why[:1000]}
                producer.produce(physical_dlq, letter.payload, letter.key,
                                 headers=[(k, v.encode()) for k, v in headers.items()])
            producer.poll(0)
            if progress and done % 1000 == 0:
                progress(done, len(verdicts))
        producer.send_offsets_to_transaction(
            [TopicPartition(physical_dlq, p, end) for p, end in sorted(dead.ends.items())],
            group.consumer_group_metadata(), timeout_s)
        producer.commit_transaction(timeout_s)
    except Exception as exc:
        with contextlib.suppress(Exception):  # the transaction may never have begun; nothing was committed anyway
            producer.abort_transaction(timeout_s)
        raise RedriveError(f"redrive of {physical_dlq} failed, nothing was sent: {exc}") from exc
    finally:
        group.close()
        # Destroy the producer now: a fenced commit's exception may be kept alive (confluent-kafka holds it), and with
        # it this frame and its producer, which would go on reconnecting, and logging, once the broker is gone.
        with contextlib.suppress(Exception):
            producer.close()
    return result
