"""The simulated risk officer of backtests: its plan from state changes, and a locked desk it reopens."""

from __future__ import annotations

import pytest
from quorum_common.bus.message import Message
from quorum_common.engine import envelope
from quorum_common.phases import PHASE_OFFSETS_NS
from quorum_desk.app import main
from quorum_desk.engine import run_embedded
from quorum_desk.metrics import NS_PER_DAY
from quorum_desk.officer import OFFICER_ID, BacktestRiskOfficer, OfficerSettings
from quorum_risk import testing as risk_testing
from quorum_risk.limits import Limits

T0 = 1_200_000_000 * 10**9
LOCK = "DRAWDOWN_LOCK: drawdown 0.13 >= lock 0.12"
MANDATE = risk_testing.mandate(max_gross_exposure=1.0)
MANDATE_LIMITS = Limits.from_mandate(MANDATE).to_map()


class Published:
    """A publisher that keeps what it is given."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict]] = []

    def publish(self, topic: str, record: dict, *, key: str | None = None) -> None:
        self.records.append((topic, record))

    def dead_letter(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("no dead letters expected")


def state(day: float, name: str, previous: str, reason: str, desk: str = "desk",
          limits: dict[str, float] | None = None) -> Message:
    """A ``control.state`` record ``day`` days after T0 (``limits``: the mandate's unless given)."""
    ts = T0 + round(day * NS_PER_DAY)
    return Message("control.state", desk, {**envelope(ts, "state"), "desk": desk, "state": name,
                                           "previous_state": previous, "reason": reason,
                                           "limits": limits or MANDATE_LIMITS}, "test")


def ticks(officer: BacktestRiskOfficer, first_day: int, last_day: int) -> None:
    """Every phase tick of the daily bar times ``first_day``..``last_day``."""
    for day in range(first_day, last_day + 1):
        for kind, offset in PHASE_OFFSETS_NS.items():
            ts = T0 + day * NS_PER_DAY + offset
            officer.on_message(Message("sys.clock", "XNYS", {**envelope(ts, "tick"), "kind": kind}, "test"))


def officer(days: float = 30) -> tuple[BacktestRiskOfficer, Published]:
    out = Published()
    engine = BacktestRiskOfficer(OfficerSettings(resume_after_days=days), out)
    engine.on_message(Message("mandate.compiled", "default", MANDATE, "test"))
    return engine, out


def commands(out: Published) -> list[tuple[int, str, dict | None]]:
    """(day after T0, command, limits) of every command published."""
    assert all(topic == "control.commands" for topic, _ in out.records)
    return [((c["ts_event"] - T0) // NS_PER_DAY, c["command"], c["limits"]) for _, c in out.records]


def test_resumes_a_drawdown_lock_once_at_the_first_bar_close_after_the_delay() -> None:
    engine, out = officer(30)
    engine.on_message(state(10.5, "REDUCING", "ACTIVE", LOCK))
    ticks(engine, 11, 40)
    assert out.records == []
    ticks(engine, 41, 60)
    [(_, command)] = out.records
    assert command["ts_event"] == T0 + 41 * NS_PER_DAY + PHASE_OFFSETS_NS["BAR_CLOSE"]
    assert (command["command"], command["role"], command["issued_by"]) == ("RESUME_TRADING", "RISK_OFFICER",
                                                                           OFFICER_ID)
    assert command["desk"] == "desk" and "30 days" in command["reason"]


def test_limits_tightened_by_the_critic_are_set_back_to_the_mandates() -> None:
    engine, out = officer(30)
    tight = {**MANDATE_LIMITS, "max_position_weight": 0.05, "max_gross_exposure": 0.5}
    engine.on_message(state(10, "ACTIVE", "ACTIVE", "COMMAND: TIGHTEN_LIMITS by critic", limits=tight))
    engine.on_message(state(20, "REDUCING", "ACTIVE", LOCK, limits=tight))
    ticks(engine, 11, 60)
    assert commands(out) == [(40, "RESUME_TRADING", None), (40, "SET_LIMITS", {
        "max_position_weight": MANDATE_LIMITS["max_position_weight"],
        "max_gross_exposure": MANDATE_LIMITS["max_gross_exposure"]})]


def test_a_limits_change_keeps_a_lock_and_a_persons_resume_or_halt_cancels_the_review() -> None:
    engine, out = officer(30)
    engine.on_message(state(10, "REDUCING", "ACTIVE", LOCK))
    engine.on_message(state(20, "REDUCING", "REDUCING", "COMMAND: SET_LIMITS by someone"))
    engine.on_message(state(21, "ACTIVE", "REDUCING", "ignored: another desk", desk="other"))
    ticks(engine, 11, 45)
    assert [c for _, c, _ in commands(out)] == ["RESUME_TRADING"], "a limits change keeps the lock's review"
    for other in ("ACTIVE", "HALTED"):
        engine, out = officer(30)
        engine.on_message(state(10, "REDUCING", "ACTIVE", LOCK))
        engine.on_message(state(20, other, "REDUCING", "COMMAND: by a person"))
        ticks(engine, 11, 60)
        assert out.records == [], f"{other} by someone else cancels the review"
    engine, out = officer(30)
    tight = {**MANDATE_LIMITS, "max_position_weight": 0.05}
    engine.on_message(state(10, "ACTIVE", "ACTIVE", "COMMAND: TIGHTEN_LIMITS by critic", limits=tight))
    engine.on_message(state(20, "HALTED", "ACTIVE", "COMMAND: HALT_TRADING by a person", limits=tight))
    ticks(engine, 11, 60)
    assert out.records == [], "nothing is set back while a person's halt holds"


def test_each_new_de_risking_gets_its_own_review() -> None:
    engine, out = officer(5)
    engine.on_message(state(10, "REDUCING", "ACTIVE", LOCK))
    ticks(engine, 11, 20)
    engine.on_message(state(20.5, "ACTIVE", "REDUCING", "COMMAND: RESUME_TRADING by backtest-risk-officer"))
    engine.on_message(state(30.5, "REDUCING", "ACTIVE", LOCK))
    ticks(engine, 21, 40)
    assert [(day, c) for day, c, _ in commands(out)] == [(15, "RESUME_TRADING"), (36, "RESUME_TRADING")]


@pytest.mark.parametrize("days", ["0", "-3", "nan", "soon"])
def test_the_cli_refuses_a_delay_that_is_not_positive(days: str, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["run", "--resume-after-days", days, "--reports", str(tmp_path)])
    assert refused.value.code == 2
    assert f"--resume-after-days: must be a number of days above 0, not {days!r}" in capsys.readouterr().err


def test_a_drawdown_locked_desk_is_reopened_by_the_officer_and_trades_again(crash_window) -> None:
    """The 2008 window of the crash test (its desk holds its targets in full until the lock): with the officer the
    lock lasts its 30 days, not to the end."""
    states, approved = [], []

    def tap(msg: Message) -> None:
        if msg.topic == "control.state":
            states.append(msg.value)
        elif msg.topic == "orders.approved":
            approved.append(msg.value)

    run = run_embedded({**crash_window(in_full=True), "officer": {"resume_after_days": 30}}, extra_taps=[tap])
    assert [(d.topic, d.error) for d in run.bus.dead_letters if d.reason == "handler_error"] == []
    lock = next(s for s in states if s["reason"].startswith("DRAWDOWN_LOCK"))
    resumed = next(s for s in states if s["ts_event"] > lock["ts_event"] and s["state"] == "ACTIVE")
    assert resumed["changed_by"] == OFFICER_ID
    assert 30 * NS_PER_DAY <= resumed["ts_event"] - lock["ts_event"] <= 34 * NS_PER_DAY
    between = [o for o in approved if lock["ts_event"] < o["ts_event"] < resumed["ts_event"]]
    assert all(o["reduces_risk"] for o in between)
    assert any(o["side"] == "BUY" for o in approved if o["ts_event"] > resumed["ts_event"]), "trading resumed"
