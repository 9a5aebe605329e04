"""The Kafka cluster and topic prefix a command-line tool works on: ``--bootstrap`` and ``--prefix``, defaulting to the
services' own settings (``QUORUM_KAFKA_*``, ``QUORUM_TOPIC_PREFIX``)."""

from __future__ import annotations

import argparse

from quorum_common.runtime.config import ServiceSettings, load_settings


def add_kafka_arguments(parser: argparse.ArgumentParser, whose: str) -> None:
    """Add ``--prefix`` (the topic prefix of ``whose`` topics) and ``--bootstrap`` to ``parser``."""
    parser.add_argument("--prefix", default=None, help=f"topic prefix of {whose} (default: QUORUM_TOPIC_PREFIX)")
    parser.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers (default: QUORUM_KAFKA_*)")


def kafka_target(args: argparse.Namespace) -> tuple[dict[str, str], str]:
    """The librdkafka client settings and the topic prefix of ``args`` (see :func:`add_kafka_arguments`); a bad
    ``QUORUM_*`` variable raises :class:`~quorum_common.runtime.config.ConfigError` naming it."""
    base = load_settings(ServiceSettings)
    client = base.kafka_client_config()
    if args.bootstrap:
        client["bootstrap.servers"] = args.bootstrap
    return client, base.topic_prefix if args.prefix is None else args.prefix
