"""The kill switch end to end over Kafka: admin API → control.commands → risk → orders refused."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient
from quorum_common.bus.kafka_admin import delete_catalog_topics
from quorum_common.schemas import default_catalog
from quorum_desk.halt_drill import HaltDrill
from quorum_risk import testing as rt

pytestmark = pytest.mark.kafka


def verdict(watch, coid: str) -> dict:
    while True:
        rec, _ = watch.next()
        if rec["client_order_id"] == coid:
            return rec


def test_halt_stops_risk_increasing_orders_until_a_risk_officer_resumes(kafka_config) -> None:
    drill = HaltDrill(kafka_config, f"halt{uuid.uuid4().hex[:8]}.")
    with drill.running():
        decisions, approved, states = drill.watch("risk.decisions"), drill.watch("orders.approved"), drill.watch(
            "control.state")
        drill.send("mandate.compiled", rt.mandate(), key="m1")
        drill.send("md.bars", rt.bar("AAPL", 100.0), key="AAPL")
        drill.send("portfolio.snapshots", rt.snapshot({"AAPL": (200.0, 100.0)}), key="p1")
        drill.wait_until(lambda risk: risk.limits is not None and "AAPL" in risk.book.last and risk.book.nav,
                         "the mandate, the bar and the snapshot")
        drill.send("orders.proposed", rt.order("before-halt", quantity=10), key="before-halt")
        first = verdict(decisions, "before-halt")
        assert first["verdict"] == "APPROVED", first["reason_detail"]

        assert drill.call("", "POST", "/halt", json={"reason": "drill"}) == 401
        assert drill.call("viewer", "POST", "/halt", json={"reason": "drill"}) == 403
        assert drill.call("operator", "POST", "/halt", json={"reason": "drill"}) == 202
        while (state := states.next()[0])["state"] != "HALTED":
            pass
        assert state["changed_by"] == "drill-operator"

        for i, side in enumerate(("BUY", "BUY", "SELL")):
            coid = f"halted-{i}"
            drill.send("orders.proposed", rt.order(coid, side=side, quantity=5, ts=rt.T0 + 10 + i), key=coid)
            refused = verdict(decisions, coid)
            assert (refused["verdict"], refused["reason_code"]) == ("REJECTED", "TRADING_HALTED")

        assert drill.call("operator", "POST", "/resume", json={"reason": "drill"}) == 403
        assert drill.call("risk_officer", "POST", "/resume", json={"reason": "drill over"}) == 202
        while states.next()[0]["state"] != "ACTIVE":
            pass
        drill.send("orders.proposed", rt.order("after-resume", quantity=10, ts=rt.T0 + 20), key="after-resume")
        assert verdict(decisions, "after-resume")["verdict"] == "APPROVED"
        got = {approved.next()[0]["client_order_id"] for _ in range(2)}
        assert got == {"before-halt", "after-resume"}, "a halted order reached orders.approved"
    left = [t for t in AdminClient(kafka_config).list_topics(timeout=10).topics if t.startswith(drill.prefix)]
    assert left == [], "the drill must delete its topics (a broker crowded with them slows every later run)"


def test_deleting_the_catalog_without_a_prefix_is_refused(kafka_config) -> None:
    with pytest.raises(ValueError, match="prefix"):
        delete_catalog_topics(kafka_config, default_catalog(), "")
