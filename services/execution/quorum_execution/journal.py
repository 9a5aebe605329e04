"""The order journal: every client order id the service has handled, so no order is ever sent twice.

The journal's durable form is the ``exec.reports`` topic: the engine publishes a report for an id
(``ACCEPTED`` before the venue call, or ``REJECTED``) before anything reaches a venue, and rebuilds
the journal from that topic's history when it starts.
"""

from __future__ import annotations

from typing import Any

FINAL_STATUSES = frozenset({"REJECTED", "FILLED", "CANCELLED", "EXPIRED"})


class OrderJournal:
    """Client order id → last known status."""

    def __init__(self) -> None:
        self._status: dict[str, str] = {}

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._status

    def __len__(self) -> int:
        return len(self._status)

    def record(self, client_order_id: str, status: str) -> None:
        """Record the id's status; a final status is never overwritten by a later non-final one."""
        if self._status.get(client_order_id) not in FINAL_STATUSES:
            self._status[client_order_id] = status

    def restore(self, report: dict[str, Any]) -> None:
        """Take an ``ExecutionReported`` record from the topic's history into the journal."""
        self.record(report["client_order_id"], report["status"])

    def status(self, client_order_id: str) -> str | None:
        """The last recorded status of the id, or ``None`` when the id is unknown."""
        return self._status.get(client_order_id)

    def in_doubt(self) -> list[str]:
        """Ids recorded as sent but never seen final (after a restart: working at the venue or lost)."""
        return [cid for cid, st in self._status.items() if st not in FINAL_STATUSES]
