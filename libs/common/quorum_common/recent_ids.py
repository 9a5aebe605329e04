"""Ids of the records handled most recently: what lets an engine count a record delivered again only once.

At-least-once delivery hands a restarted consumer again the records it handled after its last commit (at most
``commit_every`` records of all its topics), so a repeated fill or report is always among the last ones of its
kind. Keeping every id ever seen would grow without bound in a service that runs for years; keeping the last
``capacity`` ids covers every repeat that delivery can make, in a bounded amount of memory.
"""

from __future__ import annotations

DEFAULT_CAPACITY = 100_000
"""Ids kept by default: far more fills or orders than one commit interval can hold (about 10 MB at most)."""


class RecentIds:
    """The last ``capacity`` distinct ids added, oldest forgotten first."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._ids: dict[str, None] = {}  # insertion-ordered: the oldest first

    def add(self, key: str) -> bool:
        """Remember ``key``; False when it was already known (a repeat), True when it is new."""
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > self.capacity:
            del self._ids[next(iter(self._ids))]
        return True

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def __len__(self) -> int:
        return len(self._ids)
