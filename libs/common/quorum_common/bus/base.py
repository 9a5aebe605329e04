"""The bus interface that service apps program against; engines only ever see a :class:`Publisher`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from quorum_common.bus.message import Message

Handler = Callable[[Message], None]
"""Called once per delivered message; raising sends the message to its dead-letter topic."""


class Publisher(Protocol):
    """What an engine uses to emit records; the transport behind it is invisible."""

    def publish(self, topic: str, record: dict[str, Any], *, key: str | None = None) -> None:
        """Emit ``record`` on the logical ``topic``, encoded with the topic's catalog schema."""

    def dead_letter(self, topic: str, payload: bytes | dict[str, Any], reason: str, *, key: str | None = None,
                    error: str = "") -> None:
        """Send input that the engine refuses (bad data) to ``dlq.<topic>`` with ``reason``; nothing is dropped."""


class Bus(ABC):
    """One transport for a set of services.

    ``subscribe`` registers a service's handler for its input topics; ``publisher`` gives that
    service its publisher. How and when handlers run is up to the transport.
    """

    @abstractmethod
    def publisher(self, service: str) -> Publisher:
        """The publisher of ``service``."""

    @abstractmethod
    def subscribe(self, service: str, topics: Iterable[str], handler: Handler) -> None:
        """Deliver every record of ``topics`` to ``handler`` on behalf of ``service``."""
