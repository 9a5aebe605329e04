"""``quorum-desk dlq``: what the dead-letter topics hold, and sending letters back once they can be handled
(:mod:`quorum_common.bus.redrive`).

- ``quorum-desk dlq list [--topic T ...]``: per dead-letter topic, its letters, the records refused by reason and
  service (a letter a redrive could not send back is appended again as a copy: counted once), and how many letters no
  redrive has passed yet (each of those with whether this build would send it back);
- ``quorum-desk dlq redrive --topic T [--dry-run]``: send the pending letters of ``dlq.T`` back to ``T``.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from confluent_kafka import KafkaException
from quorum_common.bus.redrive import REFUSED_HEADER, RedriveError, read_dead_letters, redrive, why_not_redriven
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.runtime.config import ConfigError
from quorum_common.schemas import SchemaError

from quorum_desk.kafka_target import add_kafka_arguments, kafka_target


def add_dlq_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``dlq`` subcommand's arguments."""
    parser.add_argument("action", choices=("list", "redrive"), help="list the letters, or send them back")
    parser.add_argument("--topic", action="append", help="a catalog topic whose dlq.<topic> to read (list: "
                        "repeatable, default every catalog topic; redrive: exactly one)")
    parser.add_argument("--dry-run", action="store_true", help="redrive: say what would be sent, send nothing")
    add_kafka_arguments(parser, "the desk")


def _list(client: dict[str, str], prefix: str, topics: list[str], codec: TopicCodec) -> None:
    empty = 0
    for topic in topics:
        dead = read_dead_letters(client, prefix, topic)
        if not dead.letters:
            empty += 1
            continue
        pending = dead.pending()
        records = [x for x in dead.letters if REFUSED_HEADER not in x.headers]
        copies = len(dead.letters) - len(records)
        print(f"dlq.{topic}: {len(dead.letters)} letters, {len(pending)} not passed by a redrive yet"
              + (f"; {copies} of them copies that redrives appended of letters they could not send back, so "
                 f"{len(records)} records refused" if copies else ""))
        for (reason, service), n in Counter((x.reason, x.service) for x in records).most_common():
            print(f"  {n:8d}  {reason} ({service})")
        verdicts = Counter(why_not_redriven(codec, topic, x) or "would be sent back" for x in pending)
        for verdict, n in verdicts.most_common():
            print(f"  pending {n:8d}  {verdict}")
    print(f"{empty} of {len(topics)} dead-letter topics hold no letter")


def cmd_dlq(args: argparse.Namespace) -> int:
    """Run ``quorum-desk dlq``; exit status 2 with a message naming what is wrong."""
    try:
        client, prefix = kafka_target(args)
        codec = TopicCodec()
        topics = args.topic or ([] if args.action == "redrive" else [t.name for t in codec.catalog])
        for topic in topics:
            codec.catalog.topic(topic)
        if args.action == "list":
            _list(client, prefix, topics, codec)
            return 0
        if len(topics) != 1:
            raise ConfigError("--topic: redrive takes exactly one topic")

        def progress(done: int, total: int) -> None:
            print(f"  {done}/{total} letters", flush=True)

        result = redrive(client, prefix, topics[0], codec, dry_run=args.dry_run, progress=progress)
    except (ConfigError, SchemaError, RedriveError, KafkaException) as exc:
        print(f"quorum-desk dlq: {exc}", file=sys.stderr)
        return 2
    verb = "would send" if result.dry_run else "sent"
    print(f"dlq.{result.topic}: {result.read} pending letters; {verb} {result.redriven} back to {result.topic}")
    for why, n in result.requeued.most_common():
        print(f"  {n:8d}  still unreadable, {'would be ' if result.dry_run else ''}appended again: {why}")
    for reason, n in result.passed.most_common():
        print(f"  {n:8d}  refused for their content ({reason}): {'would be ' if result.dry_run else ''}passed over")
    return 0
