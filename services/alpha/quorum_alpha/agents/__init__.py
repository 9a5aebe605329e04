"""Signal agents: each takes bars one by one and returns the signals they trigger."""

from __future__ import annotations

from typing import Any, Protocol

from quorum_alpha.signal import Signal

Bar = dict[str, Any]
"""A decoded ``BarClosed`` record."""


class Agent(Protocol):
    """A pure, incremental signal agent."""

    def update(self, bar: Bar) -> list[Signal]:
        """Take the next bar (bars of one symbol arrive in time order); return the signals it triggers."""
