"""A simulated risk officer for backtests: reviews the desk's own de-risking a set time later and undoes it.

On a live desk two kinds of de-risking hold until a person with the RISK_OFFICER role acts: the
drawdown lock (risk service, REDUCING with reason ``DRAWDOWN_LOCK``) until someone resumes trading
(admin API ``POST /resume``), and the limits the critic tightens (on a shift to high volatility or a soft
drawdown breach; it can never loosen them) until someone sets them back. An embedded run has no such
person, so one lock or a few tightenings early in a long replay leave the rest of it reduce-only or
with a small fraction of the mandate's limits. With ``quorum-desk run --resume-after-days N`` this
engine plays the officer: ``N`` event-time days after the desk first de-risked on its own it reviews,
at the first ``BAR_CLOSE`` tick at or after that time, and

- resumes trading (``RESUME_TRADING``) when the desk is still in the drawdown lock;
- sets every limit that is below the mandate's back to the mandate's value (``SET_LIMITS``).

Both go out on ``control.commands`` with role RISK_OFFICER and ``issued_by`` :data:`OFFICER_ID`. A HALT
(a person's) suspends the review until trading resumes. A resume with the drawdown beyond the lock level
accepts that loss: the risk service fires the lock again only ``drawdown_relock_step`` (3 points) deeper
(:attr:`quorum_risk.engine.RiskEngine.drawdown_lock_level`), so a resumed desk may lose more than the lock
allowed: the report then says by how much.

It reads only event time (the ticks' and the state changes' ``ts_event``), so a run with it is as
reproducible as one without. It is a backtest device: the services over Kafka have no such engine.
"""

from __future__ import annotations

from pydantic import Field
from quorum_common.bus.base import Publisher
from quorum_common.bus.message import Message
from quorum_common.engine import Engine, envelope
from quorum_common.runtime.config import ServiceSettings
from quorum_common.runtime.service import ServiceSpec
from quorum_risk.limits import Limits
from quorum_risk.state import HALTED, lock_code

from quorum_desk.metrics import NS_PER_DAY

OFFICER_ID = "backtest-risk-officer"
ACTS_ON = "BAR_CLOSE"
"""The tick at which a due review is made (every bar time has one); the risk service handles it in the next phase."""


class OfficerSettings(ServiceSettings):
    """When the simulated officer reviews the desk's own de-risking."""

    service_name: str = "officer"
    desk: str = Field("desk", min_length=1, description="Desk the commands are for (the risk service's desk).")
    resume_after_days: float = Field(..., gt=0, description="Event-time days from the desk's de-risking to the "
                                     "review that undoes it.")


class BacktestRiskOfficer(Engine):
    """Undoes a drawdown lock and tightened limits ``resume_after_days`` later (see the module docstring)."""

    inputs = ("mandate.compiled", "control.state", "sys.clock")
    acts_on = (ACTS_ON,)

    def __init__(self, settings: OfficerSettings, publisher: Publisher) -> None:
        super().__init__(publisher)
        self.settings = settings
        self.mandate_limits: dict[str, float] = {}
        """The limits the compiled mandate sets (what the review restores)."""
        self.locked = False
        self.limits: dict[str, float] = {}
        """The limits in force (the last ``control.state``)."""
        self.due_ns: int | None = None
        """Event time from which the next review is due; None while there is nothing to undo."""
        self.reviews = 0

    def handle(self, msg: Message) -> None:
        """Follow the mandate and the desk's state; review when due."""
        value = msg.value
        if msg.topic == "mandate.compiled":
            self.mandate_limits = Limits.from_mandate(value).to_map()
        elif msg.topic == "control.state":
            if value["desk"] == self.settings.desk:
                self._follow(value)
        elif value["kind"] == ACTS_ON and self.due_ns is not None and msg.ts_event >= self.due_ns:
            self._review(msg.ts_event)

    def _tightened(self) -> dict[str, float]:
        """The mandate's value of every limit in force below it."""
        return {k: v for k, v in self.mandate_limits.items() if k in self.limits and self.limits[k] < v}

    def _follow(self, state: dict) -> None:
        self.locked = lock_code(state["state"], state["reason"]) == "DRAWDOWN_LOCK" or (
            self.locked and state["state"] == state["previous_state"])  # a limits change keeps the lock's reason
        self.limits = state["limits"] or self.limits
        if state["state"] == HALTED or not (self.locked or self._tightened()):
            self.due_ns = None
        elif self.due_ns is None:
            self.due_ns = state["ts_event"] + round(self.settings.resume_after_days * NS_PER_DAY)

    def _review(self, ts: int) -> None:
        self.due_ns = None
        self.reviews += 1
        days = self.settings.resume_after_days
        if self.locked:
            self._command(ts, "RESUME_TRADING", None, f"backtest review {days:g} days after the drawdown lock")
        restore = self._tightened()
        if restore:
            self._command(ts, "SET_LIMITS", restore, f"backtest review {days:g} days after limits were tightened: "
                          "back to the mandate's")

    def _command(self, ts: int, command: str, limits: dict[str, float] | None, reason: str) -> None:
        self.publisher.publish("control.commands", {
            **envelope(ts, OFFICER_ID, command, self.reviews),
            "desk": self.settings.desk, "command": command, "issued_by": OFFICER_ID, "role": "RISK_OFFICER",
            "reason": reason, "limits": limits, "mandate_document": None, "symbols": None,
            "source_service": OFFICER_ID,
        }, key=self.settings.desk)


SPEC = ServiceSpec("officer", OfficerSettings, engine=BacktestRiskOfficer)
