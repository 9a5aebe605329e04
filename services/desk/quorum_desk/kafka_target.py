"""The Kafka cluster and topic prefix a command-line tool works on: ``--bootstrap`` and ``--prefix``, defaulting to the
services' own settings (``QUORUM_KAFKA_*``, ``QUORUM_TOPIC_PREFIX``)."""

from __future__ import annotations

import argparse

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from quorum_common.runtime.config import ConfigError, ServiceSettings, load_settings

PROBE_TIMEOUT_S = 5.0
"""How long :func:`kafka_target` waits for the cluster to answer before it refuses."""


def add_kafka_arguments(parser: argparse.ArgumentParser, whose: str) -> None:
    """Add ``--prefix`` (the topic prefix of ``whose`` topics) and ``--bootstrap`` to ``parser``."""
    parser.add_argument("--prefix", default=None, help=f"topic prefix of {whose} (default: QUORUM_TOPIC_PREFIX)")
    parser.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers (default: QUORUM_KAFKA_*)")


def kafka_target(args: argparse.Namespace, probe_timeout_s: float = PROBE_TIMEOUT_S) -> tuple[dict[str, str], str]:
    """The librdkafka client settings and the topic prefix of ``args`` (see :func:`add_kafka_arguments`), once the
    cluster has answered. :class:`~quorum_common.runtime.config.ConfigError` names a bad ``QUORUM_*`` variable, or
    the servers when no broker answers within ``probe_timeout_s`` (rather than a client's retries, and their log
    lines, until its own timeout)."""
    base = load_settings(ServiceSettings)
    client = base.kafka_client_config()
    if args.bootstrap:
        client["bootstrap.servers"] = args.bootstrap
    try:  # log_level 0: the probe's connection failures are this message, not librdkafka's lines
        AdminClient({**client, "log_level": 0}).list_topics(timeout=probe_timeout_s)
    except KafkaException as exc:
        raise ConfigError(
            f"no Kafka broker answers at {client['bootstrap.servers']} (--bootstrap, else "
            f"QUORUM_KAFKA_BOOTSTRAP_SERVERS) within {probe_timeout_s:g} s: {exc.args[0].str()}. `make kafka-up` "
            "starts the local broker, `make up` the local desk") from None
    return client, base.topic_prefix if args.prefix is None else args.prefix
