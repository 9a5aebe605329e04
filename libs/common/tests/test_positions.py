"""Average-cost position arithmetic (shared by the portfolio ledger and the execution gate)."""

from __future__ import annotations

import pytest
from quorum_common.positions import trade


def test_adding_averages_the_cost_and_reducing_realises_against_it() -> None:
    added = trade(10.0, 100.0, 30.0, 104.0)
    assert (added.quantity, added.avg_cost, added.realised, added.crossed) == (40.0, 103.0, 0.0, False)
    reduced = trade(40.0, 103.0, -20.0, 110.0)
    assert (reduced.quantity, reduced.avg_cost, reduced.realised, reduced.crossed) == (20.0, 103.0, 140.0, False)


@pytest.mark.parametrize(("held", "signed", "price", "expected"), [
    (20.0, -50.0, 90.0, (-30.0, 90.0, -200.0, True)),   # a long sold through zero opens a short at the price
    (-20.0, 50.0, 90.0, (30.0, 90.0, 200.0, True)),     # a short bought back through zero (cost 100: +10 each)
    (0.0, -5.0, 80.0, (-5.0, 80.0, 0.0, False)),        # opening a short
])
def test_a_fill_beyond_the_position_opens_the_other_side_at_its_price(held, signed, price, expected) -> None:
    after = trade(held, 100.0, signed, price)
    assert (after.quantity, after.avg_cost, after.realised, after.crossed) == expected
