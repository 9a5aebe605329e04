"""What ``GET /status`` answers: the desk's trading state, limits, NAV and positions, and the mandate.

:class:`AdminView` is an engine like any other (it only consumes); the HTTP thread reads it through
:meth:`AdminView.status`, so updates and reads hold a lock.
"""

from __future__ import annotations

import threading
from typing import Any

from quorum_common.bus.base import Publisher
from quorum_common.bus.message import Message
from quorum_common.engine import Engine
from quorum_common.runtime.clock import EventClock

_POSITION_FIELDS = ("symbol", "quantity", "avg_cost", "last_price", "market_value", "unrealised_pnl", "weight",
                    "sector", "asset_class")


class AdminView(Engine):
    """Latest ``control.state`` (highest sequence), snapshot per portfolio (highest sequence) and mandate."""

    inputs = ("control.state", "portfolio.snapshots", "mandate.compiled")

    def __init__(self, publisher: Publisher, desk: str = "desk", clock: EventClock | None = None) -> None:
        super().__init__(publisher, clock)
        self.desk = desk
        self._lock = threading.Lock()
        self._state: dict[str, Any] | None = None
        self._snapshots: dict[str, dict[str, Any]] = {}
        self._mandate: dict[str, Any] | None = None

    def handle(self, msg: Message) -> None:
        """Keep the newest record of each kind."""
        rec = msg.value
        with self._lock:
            if msg.topic == "control.state":
                if rec["desk"] == self.desk and (self._state is None or rec["sequence"] > self._state["sequence"]):
                    self._state = rec
            elif msg.topic == "portfolio.snapshots":
                old = self._snapshots.get(rec["portfolio_id"])
                if old is None or rec["sequence"] > old["sequence"]:
                    self._snapshots[rec["portfolio_id"]] = rec
            elif self._mandate is None or rec["version"] >= self._mandate["version"]:
                self._mandate = rec

    def status(self) -> dict[str, Any]:
        """The JSON body of ``GET /status``."""
        with self._lock:
            state, mandate = self._state, self._mandate
            portfolios = [self._portfolio(s) for _, s in sorted(self._snapshots.items())]
        return {
            "desk": self.desk,
            "state": state["state"] if state else "UNKNOWN",
            "state_sequence": state["sequence"] if state else None,
            "state_reason": state["reason"] if state else "no state published yet",
            "state_changed_by": state["changed_by"] if state else None,
            "state_ts": state["ts_event"] if state else None,
            "limits": dict(state["limits"]) if state else {},
            "drawdown_lock_at": state["drawdown_lock_at"] if state else None,
            "portfolios": portfolios,
            "nav": sum(p["nav"] for p in portfolios) if portfolios else None,
            "mandate": None if mandate is None else {
                "mandate_id": mandate["mandate_id"], "version": mandate["version"], "capital": mandate["capital"],
                "max_drawdown": mandate["max_drawdown"], "risk_tolerance": mandate["risk_tolerance"],
                "sector_caps": mandate["sector_caps"], "asset_class_caps": mandate["asset_class_caps"],
            },
        }

    @staticmethod
    def _portfolio(snap: dict[str, Any]) -> dict[str, Any]:
        return {
            "portfolio_id": snap["portfolio_id"], "ts": snap["ts_event"], "nav": snap["nav"], "cash": snap["cash"],
            "peak_nav": snap["peak_nav"], "drawdown": snap["drawdown"], "gross_exposure": snap["gross_exposure"],
            "net_exposure": snap["net_exposure"],
            "positions": [{k: p[k] for k in _POSITION_FIELDS} for p in snap["positions"]],
        }
