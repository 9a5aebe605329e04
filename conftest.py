"""Fixtures shared by every test folder: the real local Kafka broker."""

pytest_plugins = ["quorum_common.testing.kafka_fixtures"]
