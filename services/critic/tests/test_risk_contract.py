"""Cross-service contract: the critic's TIGHTEN_LIMITS command is accepted and applied by a real risk engine."""

from __future__ import annotations

import pytest
from quorum_common.engine import envelope
from quorum_common.runtime.service import wire_inprocess
from quorum_critic.app import SPEC
from quorum_critic.config import CriticSettings
from quorum_risk import testing as t
from quorum_risk.testing import Harness

PRICES = {"AAPL": 100.0, "MSFT": 100.0, "JPM": 100.0, "BTC-USD": 50_000.0}


def test_the_risk_service_applies_the_critics_tighten_limits_command(records) -> None:
    h = Harness()
    wire_inprocess(h.bus, SPEC, CriticSettings())  # the critic shares the risk engine's bus
    # a limit for every step factor the critic publishes, and a max_drawdown the critic accepts
    mandate = {**t.mandate(max_gross_exposure=1.0), "max_drawdown": 0.2}
    h.send("mandate.compiled", mandate)
    h.send("md.bars", *(t.bar(s, p) for s, p in PRICES.items()))
    base = mandate["risk_limits"]["max_position_weight"]
    assert h.engine.limits.max_position_weight == base

    regime = {**records.regime(0, "HIGH_VOL"), **envelope(t.T0 + 1, "regime.state", "HIGH_VOL")}
    h.send("regime.state", regime)

    (command,) = h.seen["control.commands"]  # published by the critic, delivered to the risk engine
    assert (command["command"], command["issued_by"], command["role"]) == ("TIGHTEN_LIMITS", "critic", "SYSTEM")
    assert command["limits"] == {"max_position_weight": 0.5, "max_gross_exposure": 0.75}
    assert h.refused() == [] and not h.bus.dead_letters
    state = h.states()[-1]
    assert state["command_event_id"] == command["event_id"]
    assert state["limits"]["max_position_weight"] == pytest.approx(0.5 * base)
    assert state["limits"]["max_gross_exposure"] == pytest.approx(0.75 * 1.0)

    # JPM at 100 on a NAV of 1e6: 700 shares (7%) were inside the mandate's 10%, not the tightened 5%
    rejected = h.decide(t.order("big", symbol="JPM", quantity=700))
    assert (rejected["verdict"], rejected["reason_code"]) == ("REJECTED", "MAX_POSITION")
    accepted = h.decide(t.order("small", symbol="JPM", quantity=400))
    assert (accepted["verdict"], accepted["reason_code"]) == ("APPROVED", "OK")
