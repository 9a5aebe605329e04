"""The command-line tools' Kafka target: a broker that is not there is refused at once with a message naming the
servers and how to start one, rather than a client's retries and log lines until its own timeout."""

from __future__ import annotations

import argparse
import time

import pytest
from quorum_common.runtime.config import ConfigError
from quorum_desk.app import main
from quorum_desk.kafka_target import add_kafka_arguments, kafka_target


def args(*flags: str) -> argparse.Namespace:
    """The parsed ``--bootstrap`` / ``--prefix`` flags."""
    parser = argparse.ArgumentParser()
    add_kafka_arguments(parser, "the desk")
    return parser.parse_args(list(flags))


def test_no_broker_is_refused_naming_the_servers_within_the_probe_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError) as refused:
        kafka_target(args("--bootstrap", "127.0.0.1:1"), probe_timeout_s=1.0)
    assert time.monotonic() - started < 10
    message = str(refused.value)
    assert message.startswith("no Kafka broker answers at 127.0.0.1:1 (--bootstrap")
    assert "within 1 s" in message and "make kafka-up" in message


def test_dlq_list_without_a_broker_exits_2_with_the_message(capsys) -> None:
    assert main(["dlq", "list", "--bootstrap", "127.0.0.1:1"]) == 2
    captured = capsys.readouterr()
    assert "quorum-desk dlq: no Kafka broker answers at 127.0.0.1:1" in captured.err


@pytest.mark.kafka
def test_a_broker_that_answers_is_the_target(kafka_config: dict[str, str]) -> None:
    client, prefix = kafka_target(args("--bootstrap", kafka_config["bootstrap.servers"], "--prefix", "p."))
    assert (client["bootstrap.servers"], prefix) == (kafka_config["bootstrap.servers"], "p.")
