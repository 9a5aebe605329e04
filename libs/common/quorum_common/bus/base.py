"""The bus interface that service apps program against; engines only ever see a :class:`Publisher`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from quorum_common.bus.message import Message

if TYPE_CHECKING:
    from quorum_common.engine import Engine

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
    def subscribe(self, service: str, topics: Iterable[str], handler: Handler,
                  acts_on: Iterable[str] | None = None) -> None:
        """Deliver every record of ``topics`` to ``handler`` on behalf of ``service``.

        ``acts_on`` (lockstep): the clock tick kinds on which ``handler`` may publish with no record released
        to it in that phase (:attr:`quorum_common.engine.Engine.acts_on`; None: every kind).
        """

    def subscribe_engine(self, service: str, engine: Engine) -> None:
        """Subscribe ``engine`` on behalf of ``service``: its inputs, its ``on_message`` and its ``acts_on``."""
        self.subscribe(service, engine.inputs, engine.on_message, engine.acts_on)
