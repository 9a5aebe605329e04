"""The desk's event-time phases: the order in which one bar time ``t`` is processed.

Every bar of time ``t`` carries ``ts_event = t``. After the last bar of ``t`` the ingest service
publishes clock ticks (``sys.clock``) a few nanoseconds later, so that on the in-process bus (which
delivers by ``(ts_event, publication order)``) each phase sees everything of the phase before:

| ts_event | tick kind | meaning | who acts on it |
|---|---|---|---|
| ``t`` | — | bars; per-bar outputs (signals, regime, forecasts) are stamped ``t`` | alpha, regime |
| ``t + 1`` | ``BAR_CLOSE`` | every bar of ``t`` and per-bar output is in | manager votes; decisions at ``t + 1`` |
| ``t + 2`` | ``SESSION_CLOSE`` | every decision of ``t`` is in | portfolio rebalances; orders stamped ``t + 2`` |
| ``t + 3`` | ``DAY_END`` etc. | calendar boundaries (``WEEK_END``, ``MONTH_END``, ...) | critic, calendar rebalancing |

Execution fills an approved order at the next bar of its symbol (``ts_event`` of that bar).
"""

from __future__ import annotations

from typing import Any

from quorum_common.engine import envelope

BAR_CLOSE_OFFSET_NS = 1
SESSION_CLOSE_OFFSET_NS = 2
CALENDAR_OFFSET_NS = 3
CLOCK_TOPIC = "sys.clock"


def bar_time(ts_event: int) -> int:
    """The bar time ``t`` of an event stamped in one of the phases of ``t``."""
    return ts_event - ts_event % 1000 if ts_event % 1000 < 10 else ts_event


def clock_tick(kind: str, bar_ts: int, sequence: int, calendar: str = "XNYS", interval: str | None = "1d",
               session_date: str | None = None) -> dict[str, Any]:
    """A ``ClockTicked`` record for phase ``kind`` of bar time ``bar_ts``."""
    offset = {"BAR_CLOSE": BAR_CLOSE_OFFSET_NS, "SESSION_CLOSE": SESSION_CLOSE_OFFSET_NS}.get(kind, CALENDAR_OFFSET_NS)
    ts = bar_ts + offset
    return {
        **envelope(ts, "clock", kind, calendar),
        "kind": kind,
        "calendar": calendar,
        "interval": interval,
        "session_date": session_date,
        "sequence": sequence,
    }
