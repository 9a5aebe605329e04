"""The message that a bus hands to a handler, whichever transport carried it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    """A decoded record with its routing facts.

    ``topic`` is the logical topic name of the catalog (without any isolation prefix).
    ``ts_event`` is the record's event time in ns since the epoch; handlers read time only from it.
    """

    topic: str
    key: str | None
    value: dict[str, Any]
    schema: str
    headers: dict[str, str] = field(default_factory=dict)
    partition: int = 0
    offset: int = -1

    @property
    def ts_event(self) -> int:
        """Event time of the record, ns since the epoch."""
        return int(self.value["ts_event"])
