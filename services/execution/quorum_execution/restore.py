"""Rebuilding the order journal at start from the ``exec.reports`` topic (the journal's durable form).

The service's consumer group resumes after its committed offsets, so its own report history has to
be read separately, from the beginning and up to the end offsets seen at start, before the service
consumes anything. If that cannot be done the service refuses to start: sending without the journal
could send an order twice.
"""

from __future__ import annotations

from typing import Any

from quorum_common.bus.history import HistoryTimeout, read_to_end
from quorum_common.bus.topic_codec import TopicCodec

from quorum_execution.config import ExecutionSettings
from quorum_execution.journal import OrderJournal
from quorum_execution.reports import REPORTS_TOPIC

ORDERS_TOPIC = "orders.approved"


class JournalRestoreError(RuntimeError):
    """The report history could not be read to its end."""


def read_report_history(settings: ExecutionSettings, codec: TopicCodec | None = None) -> list[dict[str, Any]]:
    """Every committed ``ExecutionReported`` of the topic; ``[]`` when there is none."""
    try:
        history = read_to_end(settings.kafka_client_config(), codec or TopicCodec(), [REPORTS_TOPIC],
                              settings.topic_prefix, settings.journal_restore_timeout_s)
    except HistoryTimeout as exc:
        raise JournalRestoreError(f"{exc}; not starting without the order journal") from exc
    return [m.value for m in history]


def read_orders_in_doubt(settings: ExecutionSettings, history: list[dict[str, Any]],
                         codec: TopicCodec | None = None) -> list[dict[str, Any]]:
    """The ``SubmitOrder`` records of the orders ``history`` (the report history) leaves working, read from
    ``orders.approved``; nothing is read when there are none."""
    journal = OrderJournal()
    for report in history:
        journal.restore(report)
    in_doubt = set(journal.in_doubt())
    if not in_doubt:
        return []
    try:
        approved = read_to_end(settings.kafka_client_config(), codec or TopicCodec(), [ORDERS_TOPIC],
                               settings.topic_prefix, settings.journal_restore_timeout_s)
    except HistoryTimeout as exc:
        raise JournalRestoreError(f"{exc}; not starting without the orders left working") from exc
    return [m.value for m in approved if m.value["client_order_id"] in in_doubt]
