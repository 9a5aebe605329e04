"""Journal restore from the real broker: the report history is read to its end before the service starts."""

from __future__ import annotations

import pytest
from quorum_common.bus.kafka import KafkaBus
from quorum_execution.app import build_engine
from quorum_execution.config import ExecutionSettings
from quorum_execution.engine import ExecutionEngine
from quorum_execution.restore import read_orders_in_doubt, read_report_history
from quorum_execution.testing import DAY_NS, T0, Collect, bar, order

pytestmark = pytest.mark.kafka


def settings_for(kafka_bootstrap: str, prefix: str) -> ExecutionSettings:
    return ExecutionSettings(kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, journal_restore_timeout_s=30)


def test_restored_journal_keeps_a_restarted_service_from_sending_again(kafka_bootstrap, kafka_config,
                                                                       kafka_topics, feed) -> None:
    prefix = kafka_topics("exec.reports")
    settings = settings_for(kafka_bootstrap, prefix)
    first_pub = Collect()
    first = ExecutionEngine(settings, first_pub)
    feed(first, *[("orders.approved", order(cid=cid)) for cid in ("a", "b", "c")])
    bus = KafkaBus(kafka_config, topic_prefix=prefix)
    publisher = bus.publisher("execution")
    for record in first_pub.on("exec.reports"):
        publisher.publish("exec.reports", record, key=record["client_order_id"])
    bus.flush()
    bus.close()

    history = read_report_history(settings)
    assert sorted(r["client_order_id"] for r in history) == ["a", "b", "c"]
    restarted_pub = Collect()
    restarted = build_engine(settings, restarted_pub, history)
    feed(restarted, *[("orders.approved", order(cid=cid)) for cid in ("a", "b", "c", "d")])
    assert [o.client_order_id for o in restarted.venue.submitted] == ["d"]


def test_orders_left_working_are_read_back_from_the_broker_and_tracked_again(kafka_bootstrap, kafka_config,
                                                                            kafka_topics, feed) -> None:
    """At start the service reads the SubmitOrder records of the orders its report history leaves working from
    orders.approved (only those), and goes on filling them."""
    prefix = kafka_topics("exec.reports", "orders.approved")
    settings = settings_for(kafka_bootstrap, prefix)
    resting = order(cid="rests", order_type="LIMIT", limit_price=99.0, tif="GTC")
    orders = [order(cid="fills", quantity=10.0), resting]
    first_pub = Collect()
    first = ExecutionEngine(settings, first_pub)
    feed(first, *[("orders.approved", o) for o in orders], ("md.bars", bar(T0 + DAY_NS, low=100.0)))
    assert first_pub.statuses("fills")[-1] == "FILLED" and first_pub.statuses("rests") == ["ACCEPTED"]
    bus = KafkaBus(kafka_config, topic_prefix=prefix)
    publisher = bus.publisher("execution")
    for topic, records in (("orders.approved", orders), ("exec.reports", first_pub.on("exec.reports"))):
        for record in records:
            publisher.publish(topic, record, key=record["client_order_id"])
    bus.flush()
    bus.close()

    history = read_report_history(settings)
    in_doubt = read_orders_in_doubt(settings, history)
    assert [o["client_order_id"] for o in in_doubt] == ["rests"]
    restarted_pub = Collect()
    restarted = build_engine(settings, restarted_pub, history, orders=in_doubt)
    feed(restarted, ("md.bars", bar(T0 + 2 * DAY_NS, open_=100.0, low=98.0)))
    assert restarted_pub.statuses("rests") == ["FILLED"]
    assert read_orders_in_doubt(settings, []) == []  # nothing left working: orders.approved is not read


def test_no_topic_means_an_empty_history(kafka_bootstrap) -> None:
    assert read_report_history(settings_for(kafka_bootstrap, "tnosuchprefix.")) == []
