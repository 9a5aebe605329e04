"""Where a source sends input it refuses: kept in memory and, with a publisher, sent to ``dlq.<topic>``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from quorum_common.bus.base import Publisher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejected:
    """One refused record: the topic it was meant for, the key, why, and the record itself."""

    topic: str
    key: str
    reason: str
    detail: str
    record: dict[str, Any]


class RejectSink:
    """Collects rejects in :attr:`rejected`; once :meth:`attach`-ed, dead-letters each one at once."""

    def __init__(self, publisher: Publisher | None = None) -> None:
        self.publisher = publisher
        self.rejected: list[Rejected] = []

    def attach(self, publisher: Publisher) -> None:
        """Send every later reject to ``dlq.<topic>`` through ``publisher``."""
        self.publisher = publisher

    def reject(self, topic: str, key: str, reason: str, detail: str, record: dict[str, Any]) -> None:
        """Refuse ``record``: keep it, and dead-letter it when a publisher is attached."""
        self.rejected.append(Rejected(topic, key, reason, detail, record))
        if self.publisher is not None:
            self.publisher.dead_letter(topic, record, reason, key=key, error=detail)
        else:
            log.warning("record rejected", extra={"topic": topic, "key": key, "reason": reason, "detail": detail})
