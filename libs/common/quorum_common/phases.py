"""The desk's event-time phases: the order in which one bar time ``t`` is processed.

Every bar of time ``t`` carries ``ts_event = t``. After the last bar of ``t`` the ingest service
publishes one clock tick (``sys.clock``) per phase, a few nanoseconds after ``t``. The desk runs its
buses in lockstep (:mod:`quorum_common.bus.lockstep`): a record published during one phase reaches
its consumers at the next tick, in canonical order, on the in-process bus and on Kafka alike.

| ts_event | tick kind | released to engines just before the tick | who acts on the tick |
|---|---|---|---|
| ``t`` | — | — (bars are published) | — |
| ``t + 1`` | ``BAR_CLOSE`` | bars of ``t`` | alpha, regime; execution fills working orders; portfolio marks |
| ``t + 2`` | ``VOTE`` | signals, regime states, fills | manager votes → decisions |
| ``t + 3`` | ``REBALANCE`` | decisions, mandate | portfolio rebalances → targets, orders, snapshot |
| ``t + 4`` | ``RISK_CHECK`` | proposed orders, snapshot | risk checks → approved orders, verdicts |
| ``t + 5`` | ``ROUTE`` | approved orders, verdicts | execution accepts orders; they fill at the next bar |
| ``t + 6`` | ``DAY_END``, ``WEEK_END``, ``MONTH_END``, ... | execution reports | critic (reports, tightening) |

A calendar tick is published only at a period's boundary (the last bar time of a day, week, month,
quarter or year, known to the replay once it sees the next period's first row). After a replay's last tick, a source
that stands by publishes ``HEARTBEAT`` ticks a nanosecond apart to release the commands sent later
(:func:`heartbeat_tick`, :mod:`quorum_common.bus.standby`); no engine acts on them.
"""

from __future__ import annotations

from typing import Any

from quorum_common.engine import envelope

CLOCK_TOPIC = "sys.clock"
PHASE_OFFSETS_NS: dict[str, int] = {"BAR_CLOSE": 1, "VOTE": 2, "REBALANCE": 3, "RISK_CHECK": 4, "ROUTE": 5}
"""Offset of each per-bar phase tick from its bar time."""
CALENDAR_OFFSET_NS = 6
CALENDAR_KINDS = ("DAY_END", "WEEK_END", "MONTH_END", "QUARTER_END", "YEAR_END")


def bar_time(ts_event: int) -> int:
    """The bar time ``t`` of an event stamped in one of the phases of ``t``."""
    offset = ts_event % 1000
    return ts_event - offset if offset <= CALENDAR_OFFSET_NS else ts_event


def clock_tick(kind: str, bar_ts: int, sequence: int, calendar: str = "XNYS", interval: str | None = "1d",
               session_date: str | None = None) -> dict[str, Any]:
    """A ``ClockTicked`` record for phase ``kind`` of bar time ``bar_ts``."""
    ts = bar_ts + PHASE_OFFSETS_NS.get(kind, CALENDAR_OFFSET_NS)
    return {
        **envelope(ts, "clock", kind, calendar),
        "kind": kind,
        "calendar": calendar,
        "interval": interval,
        "session_date": session_date,
        "sequence": sequence,
    }


def phase_ticks(bar_ts: int, first_sequence: int, calendar_kinds: tuple[str, ...] = (), calendar: str = "XNYS",
                interval: str | None = "1d", session_date: str | None = None) -> list[dict[str, Any]]:
    """Every tick of bar time ``bar_ts``: the five phases, then the calendar boundaries reached.

    Calendar ticks share the ``t + 6`` time and are ordered from the shortest period to the longest.
    """
    kinds = [*PHASE_OFFSETS_NS, *[k for k in CALENDAR_KINDS if k in calendar_kinds]]
    return [clock_tick(k, bar_ts, first_sequence + i, calendar, interval, session_date) for i, k in enumerate(kinds)]


HEARTBEAT = "HEARTBEAT"


def heartbeat_tick(last: dict[str, Any]) -> dict[str, Any]:
    """A ``HEARTBEAT`` tick one nanosecond after the tick ``last`` (its calendar, the next sequence).

    It releases what is held with no bar time left to come: the commands a lockstep source that stands by after its
    replay sees (:mod:`quorum_common.bus.standby`). No engine acts on its kind, so it moves nothing but the records
    it releases.
    """
    ts = last["ts_event"] + 1
    return {
        **envelope(ts, "clock", HEARTBEAT, last["calendar"]),
        "kind": HEARTBEAT,
        "calendar": last["calendar"],
        "interval": None,
        "session_date": last.get("session_date"),
        "sequence": last["sequence"] + 1,
    }
