"""O(1) rolling-window statistics for the per-bar agents."""

from __future__ import annotations

import math
from collections import deque


class RollingMeanStd:
    """Mean and population standard deviation of the last ``window`` values.

    Updated in O(1) per value (rolling Welford); recomputed exactly once per ``window`` updates so
    rounding error cannot accumulate. Deterministic: the same values give the same bits.
    """

    __slots__ = ("_m2", "_mean", "_since", "_values", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self._values: deque[float] = deque(maxlen=window)
        self._mean = 0.0
        self._m2 = 0.0
        self._since = 0

    def push(self, x: float) -> None:
        """Add ``x``, dropping the oldest value once the window is full."""
        values = self._values
        if len(values) == self.window:
            old = values[0]
            values.append(x)
            mean = self._mean + (x - old) / self.window
            self._m2 += (x - old) * (x - mean + old - self._mean)
            self._mean = mean
        else:
            values.append(x)
            delta = x - self._mean
            self._mean += delta / len(values)
            self._m2 += delta * (x - self._mean)
        self._since += 1
        if self._since >= self.window:
            self._recompute()

    def _recompute(self) -> None:
        n = len(self._values)
        self._mean = math.fsum(self._values) / n
        self._m2 = math.fsum((v - self._mean) ** 2 for v in self._values)
        self._since = 0

    def reset(self, values: list[float]) -> None:
        """Replace the window's content with the last ``window`` of ``values``."""
        self._values.clear()
        self._values.extend(values)
        if self._values:
            self._recompute()
        else:
            self._mean = self._m2 = 0.0
            self._since = 0

    @property
    def count(self) -> int:
        """Values in the window."""
        return len(self._values)

    @property
    def full(self) -> bool:
        """True once the window holds ``window`` values."""
        return len(self._values) == self.window

    @property
    def mean(self) -> float:
        """Mean of the window."""
        return self._mean

    @property
    def std(self) -> float:
        """Population standard deviation of the window."""
        n = len(self._values)
        return math.sqrt(max(self._m2, 0.0) / n) if n else 0.0


class RollingExtreme:
    """Maximum (or minimum, ``largest=False``) of the last ``window`` values, O(1) amortised (monotonic deque)."""

    __slots__ = ("_count", "_queue", "_sign", "window")

    def __init__(self, window: int, largest: bool = True) -> None:
        self.window = window
        self._sign = 1.0 if largest else -1.0
        self._queue: deque[tuple[int, float]] = deque()
        self._count = 0

    def push(self, x: float) -> None:
        """Add ``x``, forgetting values older than ``window``."""
        v = self._sign * x
        q = self._queue
        while q and q[-1][1] <= v:
            q.pop()
        q.append((self._count, v))
        self._count += 1
        if q[0][0] <= self._count - 1 - self.window:
            q.popleft()

    @property
    def full(self) -> bool:
        """True once ``window`` values were pushed."""
        return self._count >= self.window

    @property
    def value(self) -> float:
        """The extreme of the window (``nan`` when empty)."""
        return self._sign * self._queue[0][1] if self._queue else math.nan
