"""A service killed mid-replay (SIGKILL) and started again, or replaced by a successor started while it runs (a rolling
update), gives the desk the decisions, orders and fills of a desk that was never interrupted: the successor rebuilds
its engine from its input history (bus/rebuild.py)."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from quorum_common.bus.kafka_admin import delete_catalog_topics
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.schemas import default_catalog
from quorum_common.testing.kafka_helpers import read_topics
from quorum_desk.engine import run_embedded
from quorum_desk.kafka_run import run_over_kafka
from quorum_desk.service_process import ServiceProcess

pytestmark = pytest.mark.kafka
STREAMS = ("regime.state", "signals.decisions", "orders.proposed", "risk.decisions", "orders.approved", "exec.fills",
           "critic.reports")
CODEC = TopicCodec()


def replace_mid_replay(kafka_config: dict[str, str], prefix: str, service: ServiceProcess, overlap: bool,
                       orders: int = 15, timeout_s: float = 300.0) -> None:
    """Once the desk has proposed ``orders`` orders (mid-replay, holding positions), kill ``service`` (SIGKILL) and
    start it again, or (``overlap``, as a rolling update does) start its successor while it still runs: the
    successor takes its place in the consumer group, which fences the first one off, and the first one stops."""
    watcher = Consumer({**kafka_config, "group.id": f"watch-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
    watcher.assign([TopicPartition(prefix + "orders.proposed", 0, 0)])
    proposed, deadline = 0, time.monotonic() + timeout_s
    try:
        while proposed < orders:
            assert time.monotonic() < deadline, f"the desk proposed {proposed} of {orders} orders in time"
            m = watcher.poll(0.2)
            proposed += m is not None and m.error() is None
    finally:
        watcher.close()
    if not overlap:
        service.kill()
        service.start()
        return
    first = service.procs[-1]
    service.start()
    assert first.wait(timeout=120) != 0, "fenced off, the first instance stops with an error"


def first_difference(got: list[dict], want: list[dict]) -> str:
    """Where two record lists first differ: the count, or the index and the fields (values cut short)."""
    if len(got) != len(want):
        return f"{len(got)} records, the uninterrupted desk {len(want)}"
    i, a, b = next((i, a, b) for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
    return f"record {i}: " + "; ".join(f"{k}: {str(a.get(k))[:200]} against {str(b.get(k))[:200]}"
                                        for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k))


@pytest.mark.parametrize(("victim", "delivery", "overlap", "checkpoints"), [
    ("portfolio", "at_least_once", False, True), ("portfolio", "exactly_once", False, False),
    ("alpha", "at_least_once", False, True), ("manager", "exactly_once", False, True),
    ("regime", "at_least_once", False, True), ("critic", "exactly_once", False, True),
    ("portfolio", "at_least_once", True, False), ("alpha", "exactly_once", True, False)])
def test_a_service_replaced_mid_replay_changes_no_decision_order_or_fill(
        kafka_config, desk_window, tmp_path, victim: str, delivery: str, overlap: bool, checkpoints: bool) -> None:
    # The regime fits early and often, so that it publishes states in the window and the manager votes by them.
    # With checkpoints every ten days the successor goes on from the last one its predecessor's commits passed;
    # without, it rebuilds from the whole history.
    overrides = desk_window("2006-07-01", "2006-11-30", regime={"min_fit_bars": 40, "refit_every": 5})
    overrides.setdefault(victim, {}).update(checkpoint_every_days=10 if checkpoints else 0,
                                            checkpoint_key="the checkpoint key of this desk")
    expected: dict[str, list[dict]] = {t: [] for t in STREAMS}
    run_embedded(overrides, extra_taps=[lambda m: expected[m.topic].append(m.value) if m.topic in expected else None])
    assert len(expected["orders.proposed"]) > 30, "the window must trade, before the kill and after"
    assert len(expected["regime.state"]) > 5 and len(expected["critic.reports"]) >= 4

    prefix = f"rs{uuid.uuid4().hex[:8]}."
    overrides["portfolio"] = {**overrides.get("portfolio", {}), "optimiser_worker": "early"}
    service = ServiceProcess(victim, kafka_config, prefix, delivery, overrides.get(victim, {}), tmp_path)
    try:
        service.start()
        run_over_kafka(kafka_config, prefix, overrides, delivery=delivery, elsewhere={victim}, timeout_s=240,
                       meanwhile=lambda: replace_mid_replay(kafka_config, prefix, service, overlap))
        rebuilt = service.log_record(2, "state rebuilt from input history")
        exported = service.metrics(2)
        service.stop()
        got = read_topics(kafka_config, [prefix + t for t in STREAMS], idle_s=1.0,
                          expected=sum(len(v) for v in expected.values()))
    finally:
        service.stop()
        delete_catalog_topics(kafka_config, default_catalog(), prefix)
    assert len(service.procs) == 2
    key = lambda r: (r["ts_event"], r["event_id"])  # noqa: E731
    kafka = {t: [CODEC.decode(t, m.value())[1] for m in got[prefix + t]] for t in STREAMS}
    approved = [r["client_order_id"] for r in kafka["orders.approved"]]
    assert len(approved) == len(set(approved)), "an order was approved twice"
    # At least once, the records the killed service handled after its last commit are handled again, giving the
    # same records again (ids derive from the inputs); an order proposed again is refused by risk as a duplicate.
    # Exactly once, none of that.
    repeats = [r for r in kafka["risk.decisions"] if r["reason_code"] == "DUPLICATE_ORDER_ID"]
    kafka["risk.decisions"] = [r for r in kafka["risk.decisions"] if r not in repeats]
    decided = {r["client_order_id"] for r in kafka["risk.decisions"]}
    assert all(r["client_order_id"] in decided for r in repeats), "refused as a duplicate, yet never decided before"
    for topic, records in kafka.items():
        unique = {r["event_id"]: r for r in records}
        assert all(unique[r["event_id"]] == r for r in records), f"{topic}: a repeated record differs"
        if delivery == "exactly_once":
            assert len(unique) == len(records) and not repeats, f"{topic}: {len(records) - len(unique)} duplicates"
        got_sorted, want_sorted = sorted(unique.values(), key=key), sorted(expected[topic], key=key)
        assert got_sorted == want_sorted, f"{topic}: {first_difference(got_sorted, want_sorted)}"
    assert rebuilt["failed"] == 0
    if checkpoints:
        assert rebuilt["checkpoint"] is not None, "restored from a checkpoint"
    else:
        assert rebuilt["checkpoint"] is None and rebuilt["handed_to_engine"] > 0
    # Prometheus sees the rebuild: the records handed to the engine, the time taken, and that it is over.
    series = dict(line.rsplit(" ", 1) for line in exported.splitlines() if line.startswith(f"quorum_{victim}_rebuild"))
    assert float(series[f"quorum_{victim}_rebuild_records"]) == rebuilt["handed_to_engine"], series
    assert float(series[f"quorum_{victim}_rebuilding"]) == 0.0
    assert 0 < float(series[f"quorum_{victim}_rebuild_duration_seconds"]) < 600
