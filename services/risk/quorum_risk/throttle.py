"""Order-rate throttle: a token bucket driven by event time only."""

from __future__ import annotations

NS_PER_MINUTE = 60_000_000_000


class TokenBucket:
    """``per_minute`` tokens of capacity, refilled continuously at ``per_minute`` per minute of event time."""

    def __init__(self) -> None:
        self._tokens: float | None = None
        self._ts = 0

    def available(self, now_ns: int, per_minute: float) -> float:
        """Tokens available at ``now_ns`` (the bucket starts full)."""
        if self._tokens is None:
            return per_minute
        elapsed = max(0, now_ns - self._ts)
        return min(per_minute, self._tokens + elapsed * per_minute / NS_PER_MINUTE)

    def take(self, now_ns: int, per_minute: float) -> None:
        """Spend one token at ``now_ns``."""
        self._tokens = self.available(now_ns, per_minute) - 1.0
        self._ts = max(self._ts, now_ns)
