"""Helpers for tests and benchmarks: sample records and the local-Kafka pytest fixtures."""
