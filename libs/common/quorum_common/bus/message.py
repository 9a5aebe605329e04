"""The message that a bus hands to a handler, whichever transport carried it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class _TsEvent:
    """``Message.ts_event``: read from the record once, then kept on the message (engines ask for it many
    times). ``functools.cached_property`` does the same but takes a lock on every first read."""

    def __get__(self, msg: Message | None, owner: type | None = None) -> int:
        if msg is None:
            return self  # type: ignore[return-value] - the descriptor itself, read on the class
        ts = msg.__dict__["ts_event"] = int(msg.value["ts_event"])
        return ts


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

    ts_event = _TsEvent()
    """Event time of the record, ns since the epoch."""
