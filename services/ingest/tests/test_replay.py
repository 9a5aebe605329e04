"""Bar replay from the bundled data sets."""

from __future__ import annotations

import pytest
from quorum_common.bus.topic_codec import TopicCodec
from quorum_ingest.config import IngestSettings
from quorum_ingest.datasets import read_dataset
from quorum_ingest.engine import BarReplaySource


def test_goog_is_real_daily_data() -> None:
    rows = list(read_dataset("GOOG"))
    assert len(rows) > 2000
    first = rows[0]
    assert (first.open, first.close) == (100.0, 100.34)  # 2004-08-19, the IPO day
    assert all(r.high >= r.low > 0 for r in rows)


def test_replay_merges_data_sets_in_event_time_order_with_valid_records() -> None:
    items = list(BarReplaySource(IngestSettings(datasets=("GOOG", "BTCUSD"), max_bars=50)).records())
    assert len(items) == 100
    times = [rec["ts_event"] for _, _, rec in items]
    assert times == sorted(times)
    codec = TopicCodec()
    for topic, key, rec in items:
        assert topic == "md.bars" and key == rec["symbol"]
        codec.encode(topic, rec)  # every record matches the schema


def test_unknown_data_set_names_the_valid_ones() -> None:
    with pytest.raises(KeyError, match="GOOG"):
        list(read_dataset("NOPE"))
