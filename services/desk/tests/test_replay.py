"""Topic replay: re-driving a recorded local-Kafka desk run through a fresh embedded desk.

One lockstep Kafka run of the test mandate (July–November 2006) is recorded once for the module;
every replay reads it back read-only. Pure parsing/comparison tests need no broker.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from fastavro import reader
from quorum_common.bus.kafka_admin import delete_catalog_topics, ensure_topics
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.schemas import default_catalog
from quorum_common.testing.kafka_helpers import read_topics
from quorum_desk.kafka_run import run_over_kafka
from quorum_desk.replay import (
    COMMANDS,
    INPUT_TOPICS,
    Recording,
    add_replay_arguments,
    check_window_arguments,
    cmd_replay,
    load_recording,
    replay,
    replay_items,
    wall_window_span,
)
from quorum_desk.replay_compare import COMPARED, compare
from quorum_desk.replay_config import ReplayConfig
from quorum_desk.replay_read import Recorded
from quorum_desk.replay_window import (
    NS_PER_DAY,
    EventWindow,
    ReplayInputError,
    format_ns,
    parse_time,
    parse_warmup,
)
from quorum_risk.testing import command

TEST_MANDATE = Path(__file__).with_name("test_mandate.yaml")
WINDOW = ("2006-09-01", "2006-11-30")
"""Compared window; the recording starts two months earlier (warm-up history)."""


def _desk_conftest(request: pytest.FixtureRequest) -> Any:
    """This folder's conftest module (not importable under ``--import-mode=importlib``; its
    ``desk_window`` fixture is function-scoped, too narrow for a module-scoped recording)."""
    path = Path(__file__).with_name("conftest.py")
    for plugin in request.config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) and Path(plugin.__file__) == path:
            return plugin
    raise LookupError(f"{path} is not loaded")


@pytest.fixture(scope="module")
def recorded(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Iterator[tuple[dict[str, str], str, Recording]]:
    """(client config, prefix, the recording read back) of one lockstep Kafka run of the desk."""
    config = {"bootstrap.servers": kafka_bootstrap}
    prefix = f"rp{uuid.uuid4().hex[:8]}."
    overrides = _desk_conftest(request).window("2006-07-01", "2006-11-30")
    try:
        run = run_over_kafka(config, prefix, overrides)
        assert run.published > 1000
        yield config, prefix, load_recording(config, prefix)
    finally:
        delete_catalog_topics(config, default_catalog(), prefix)


def _args(config: dict[str, str], prefix: str, *more: str) -> argparse.Namespace:
    parser = add_replay_arguments(argparse.ArgumentParser())
    return parser.parse_args(["--bootstrap", config["bootstrap.servers"], "--prefix", prefix,
                              "--mandate", str(TEST_MANDATE), *more])


# --- against the recorded run -------------------------------------------------------------------

def test_recording_is_read_completely(recorded) -> None:
    _config, _prefix, rec = recorded
    counts = {t: len(rec.records[t]) for t in (*INPUT_TOPICS, *COMPARED)}
    assert counts["md.bars"] > 900 and counts["sys.clock"] > 600
    assert counts["orders.proposed"] > 20 and counts["exec.fills"] > 20
    assert not any(rec.undecodable.values()) and not any(rec.duplicates.values())


def test_unchanged_replay_reports_no_divergence(recorded, tmp_path: Path, capsys) -> None:
    config, prefix, _rec = recorded
    out = tmp_path / "report.json"
    code = cmd_replay(_args(config, prefix, "--from", WINDOW[0], "--to", WINDOW[1], "--json", str(out)))
    text = capsys.readouterr().out
    assert code == 0, text
    assert "No divergence" in text
    report = json.loads(out.read_text())
    assert report["diverged"] is False and report["first_divergence"] is None
    for topic, c in report["counts"].items():
        assert c["recorded"] == c["replayed"] == c["same"], topic
    assert report["counts"]["orders.proposed"]["recorded"] > 20
    assert report["counts"]["signals.decisions"]["recorded"] > 400
    assert report["window"]["start_iso"] == "2006-09-01T00:00:00Z"
    assert report["inputs_redriven"]["md.bars"] > report["counts"]["signals.decisions"]["recorded"] / 8


def test_tighter_drawdown_first_divergence_is_the_first_rebalance(recorded, tmp_path: Path, capsys) -> None:
    config, prefix, rec = recorded
    out = tmp_path / "what-if.json"
    code = cmd_replay(_args(config, prefix, "--from", WINDOW[0], "--to", WINDOW[1],
                            "--mandate-set", "max_drawdown=0.05", "--json", str(out)))
    text = capsys.readouterr().out
    assert code == 1, text
    report = json.loads(out.read_text())
    first = report["first_divergence"]
    # The drawdown limit enters the optimiser (upper CDaR) and the risk lock, not the signal vote:
    # decisions are unchanged and the first difference is the first rebalance's proposed orders.
    assert report["counts"]["signals.decisions"]["changed"] == 0
    first_order = min(rec.values("orders.proposed"), key=lambda o: (o["ts_event"], o["symbol"]))
    assert first["topic"] == "orders.proposed"
    assert first["ts_event"] == first_order["ts_event"]
    assert first["symbol"] == first_order["symbol"]
    assert first["correlation_id"] == first_order["correlation_id"]
    assert "target_weight" in first["fields"]
    assert first["inputs_behind"]["bars"][0]["symbol"] == first_order["symbol"]
    assert "FIRST DIVERGENCE: orders.proposed" in text and "max_drawdown=0.05" in text


def test_sector_cap_what_if_changes_the_technology_orders(recorded) -> None:
    config, prefix, rec = recorded
    what_if = ReplayConfig.from_args(str(TEST_MANDATE), ["sector_caps.Information Technology=0.05"], None)
    report = replay(config, prefix, start=WINDOW[0], end=WINDOW[1], config=what_if, recording=rec)
    first = report.comparison.first
    assert first is not None and first.topic == "orders.proposed"
    tech = [d for d in report.comparison.differences if d.topic == "orders.proposed" and d.symbol in ("AAPL", "MSFT")]
    assert tech, "the technology orders must change"
    for d in tech:
        assert d.replayed is None or d.recorded is None or d.replayed["notional"] <= d.recorded["notional"] + 1e-6


def test_warmup_policies(recorded) -> None:
    config, prefix, rec = recorded
    cfg = ReplayConfig(TEST_MANDATE)
    cold = replay(config, prefix, start=WINDOW[0], end=WINDOW[1], warmup="none", config=cfg, recording=rec)
    assert cold.diverged, "without history the indicators cannot reproduce the window"
    assert cold.comparison.first.topic == "signals.decisions"
    assert cold.comparison.first.ts_event >= parse_time(WINDOW[0], "from")
    # 100 days before September 1st reaches back past the first recorded bar: exact again.
    warm = replay(config, prefix, start=WINDOW[0], end=WINDOW[1], warmup="100", config=cfg, recording=rec)
    assert not warm.diverged
    assert sum(warm.fed.values()) > sum(cold.fed.values())


def test_wall_clock_window_maps_to_the_inputs_written_in_it(recorded) -> None:
    config, prefix, rec = recorded
    inputs = sorted((r for t in INPUT_TOPICS for r in rec.records[t]), key=lambda r: r.kafka_ts_ms)
    middle = inputs[len(inputs) // 2]
    wall_from = str(middle.kafka_ts_ms * 10**6)
    report = replay(config, prefix, wall_from=wall_from, config=ReplayConfig(TEST_MANDATE), recording=rec)
    expected_start = min(r.ts_event for r in inputs if r.kafka_ts_ms >= middle.kafka_ts_ms)
    assert report.window.start == expected_start
    assert report.window.end == max(r.ts_event for r in inputs)
    assert not report.diverged
    with pytest.raises(ReplayInputError, match="--wall-from"):
        replay(config, prefix, wall_from="2001-01-01", wall_to="2001-01-02", recording=rec)


def test_export_writes_readable_avro_files(recorded, tmp_path: Path, capsys) -> None:
    config, prefix, rec = recorded
    out = tmp_path / "export"
    code = cmd_replay(_args(config, prefix, "--from", WINDOW[0], "--to", WINDOW[1], "--export", str(out),
                            "--export-only"))
    assert code == 0, capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    win = EventWindow(parse_time(WINDOW[0], "from"), parse_time(WINDOW[1], "to", end=True))
    assert manifest["window"]["start"] == win.start and manifest["codec"] == "deflate"
    for topic in (*INPUT_TOPICS, *COMPARED):
        expected = rec.values(topic, win)
        entry = manifest["topics"][topic]
        assert entry["records"] == len(expected), topic
        with (out / entry["file"]).open("rb") as fh:
            avro = reader(fh)
            assert avro.codec == "deflate"
            assert avro.writer_schema["name"] == entry["schema"]
            assert list(avro) == expected, topic
    assert manifest["topics"]["md.bars"]["records"] > 500


def test_recorded_commands_are_redriven_where_they_were_released(recorded) -> None:
    """A risk officer's HALT, stamped with the wall clock like the admin API does and written (Kafka
    timestamp) right after the 2006-10-10 day-end tick, is re-driven before the next tick; the first
    divergence is the first approval after it, now refused, with the HALT shown behind it. A critic's
    command (an output of the desk) is not re-driven. The recording is copied to a new prefix first."""
    config, prefix, rec = recorded
    ticks = sorted(rec.records["sys.clock"], key=lambda r: r.offset)
    day_end = next(t for t in ticks if t.ts_event >= parse_time("2006-10-10", "halt") and t.value["kind"] == "DAY_END")
    released = next(t for t in ticks if t.kafka_ts_ms > day_end.kafka_ts_ms)
    wall_clock = parse_time("2026-01-01T09:30:00Z", "halt")
    halt = command("HALT_TRADING", role="RISK_OFFICER", ts=wall_clock)
    critic = command("HALT_TRADING", role="SYSTEM", ts=parse_time("2006-09-05", "critic"), issued_by="critic")
    copy = f"rc{uuid.uuid4().hex[:8]}."
    try:
        _copy_recording(config, prefix, copy, rec, extra={COMMANDS: [(halt, day_end.kafka_ts_ms),
                                                                (critic, ticks[0].kafka_ts_ms)]})
        report = replay(config, copy, start=WINDOW[0], end=WINDOW[1], config=ReplayConfig(TEST_MANDATE))
        # The HALT's wall-clock stamp spans no window: the recording's and a wall-clock interval's end where the
        # market data and ticks do, not in 2026
        span = load_recording(config, copy).input_span()
        wall_span = wall_window_span(config, copy, str(day_end.kafka_ts_ms * 10**6), None)
    finally:
        delete_catalog_topics(config, default_catalog(), copy)
    assert span == rec.input_span() and wall_span[1] == span[1] < wall_clock
    assert report.fed[COMMANDS] == 1
    first = report.comparison.first
    after = [r for r in rec.values("risk.decisions")
             if r["ts_event"] >= released.ts_event and r["verdict"] == "APPROVED"]
    assert first is not None and first.topic == "risk.decisions"
    assert first.ts_event == min(r["ts_event"] for r in after)
    assert first.replayed["verdict"] == "REJECTED" and "verdict" in first.fields
    assert [c["command"] for c in report.behind["control_commands"]] == ["HALT_TRADING"]
    assert "HALT_TRADING by alice" in report.to_text()


def _copy_recording(config: dict[str, str], src: str, dst: str, rec: Recording,
                    extra: dict[str, list[tuple[dict, int]]]) -> None:
    """Copy the inputs and compared outputs of ``src`` to ``dst`` (same partitions and timestamps), plus
    ``extra`` (topic → (record, Kafka timestamp in ms))."""
    ensure_topics(config, default_catalog(), dst)
    topics = [*INPUT_TOPICS, *COMPARED]
    got = read_topics(config, [src + t for t in topics], idle_s=0.5,
                      expected=sum(len(rec.records[t]) for t in topics))
    producer = Producer({**config, "enable.idempotence": True, "acks": "all"})
    for name, messages in got.items():
        for m in messages:
            producer.produce(dst + name[len(src):], value=m.value(), key=m.key(), partition=m.partition(),
                             timestamp=m.timestamp()[1], headers=m.headers())
    codec = TopicCodec()
    for topic, records in extra.items():
        for r, timestamp_ms in records:
            producer.produce(dst + topic, value=codec.encode(topic, r), key=b"desk", timestamp=timestamp_ms)
    assert producer.flush(30) == 0


# --- without a broker ---------------------------------------------------------------------------

def test_times_and_warmup_are_parsed_or_refused_by_name() -> None:
    assert parse_time("1970-01-02", "--from") == NS_PER_DAY
    assert parse_time("1970-01-01", "--to", end=True) == NS_PER_DAY - 1
    assert parse_time("1970-01-01T00:00:01Z", "--from") == 10**9
    assert parse_time("42", "--from") == 42
    for ts in (3, 1159315200000000003, 1164931199999999999):  # the report's times can be pasted back
        assert parse_time(format_ns(ts), "--from") == ts
    with pytest.raises(ReplayInputError, match="--from"):
        parse_time("yesterday", "--from")
    assert parse_warmup("all") is None and parse_warmup("none") == 0 and parse_warmup("2d") == 2 * NS_PER_DAY
    with pytest.raises(ReplayInputError, match="--warmup"):
        parse_warmup("lots")
    with pytest.raises(ReplayInputError, match="window"):
        EventWindow(10, 5)


def test_bad_configuration_is_refused_naming_the_field(capsys) -> None:
    with pytest.raises(ReplayInputError, match=r"risk\.no_such_field"):
        ReplayConfig.from_args(None, None, ["risk.no_such_field=1"])
    with pytest.raises(ReplayInputError, match="ingest"):
        ReplayConfig.from_args(None, None, ["ingest.symbols=[AAPL]"])
    with pytest.raises(ReplayInputError, match="volume_window"):
        ReplayConfig.from_args(None, None, ["risk.volume_window=-3"])
    with pytest.raises(ReplayInputError, match="max_drawdown"):
        ReplayConfig.from_args(str(TEST_MANDATE), ["max_drawdown=1.5"], None).mandate_document()
    with pytest.raises(ReplayInputError, match="NAME=VALUE"):
        ReplayConfig.from_args(None, ["max_drawdown"], None)
    assert cmd_replay(_args({"bootstrap.servers": "127.0.0.1:1"}, "x.", "--set", "risk.nope=1")) == 2
    assert "risk.nope" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "refusal"), [
    (("--from", "2006-09-01", "--to", "2006-08-01"), "--to 2006-08-01 is before --from 2006-09-01"),
    (("--wall-from", "2026-11-30T10:00:00Z", "--wall-to", "2026-11-30T09:00:00Z"), "--wall-to 2026-11-30T09:00:00Z is"),
    (("--from", "2006-09-01", "--wall-to", "2026-11-30"), "exclusive"),
    (("--to", "2006-13-01",), "--to: '2006-13-01' is not a time"),
    (("--warmup", "lots",), "--warmup"),
])
def test_bad_window_flags_are_refused_before_the_recording_is_read(flags: tuple[str, ...], refusal: str,
                                                                   capsys) -> None:
    assert cmd_replay(_args({"bootstrap.servers": "127.0.0.1:1"}, "x.", *flags)) == 2  # no broker there
    err = capsys.readouterr().err
    assert refusal in err and "Kafka" not in err
    check_window_arguments("2006-09-01", "2006-09-01", None, None, "2d")  # a one-day window is a window


def _rec(topic: str, ts: int, key: str, value: dict, partition: int = 0, offset: int = 0,
         kafka_ms: int = 0) -> Recorded:
    return Recorded(topic, key, {"event_id": f"{topic}-{ts}-{key}", "ts_event": ts, **value}, partition, offset,
                    kafka_ms, 0)


def test_replay_items_keep_the_recorded_order_and_place_commands_where_they_were_released() -> None:
    clock = [_rec("sys.clock", ts, "XNYS", {}, offset=i, kafka_ms=10 * (i + 1)) for i, ts in enumerate((101, 102, 201))]
    rec = Recording("p.", {
        "sys.clock": clock,
        "md.bars": [_rec("md.bars", 100, "MSFT", {}, 1), _rec("md.bars", 100, "AAPL", {}, 0),
                    _rec("md.bars", 200, "AAPL", {}, 0, 1)],
        COMMANDS: [_rec(COMMANDS, 9_999, "desk", {"issued_by": "alice"}, offset=0, kafka_ms=15),  # wall-clock ts
                   _rec(COMMANDS, 101, "desk", {"issued_by": "critic"}, offset=1, kafka_ms=15),
                   _rec(COMMANDS, 50, "desk", {"issued_by": "bob"}, offset=2, kafka_ms=99)],  # after the last tick
    })
    feed, commands = replay_items(rec, EventWindow(0, 150))
    assert [(t, k, r["ts_event"]) for t, k, r in feed] == [
        ("md.bars", "AAPL", 100), ("md.bars", "MSFT", 100), ("sys.clock", "XNYS", 101),
        (COMMANDS, "desk", 9_999), ("sys.clock", "XNYS", 102)]
    assert [(ts, r["issued_by"]) for ts, r in commands] == [(102, "alice")]
    feed, commands = replay_items(rec, EventWindow(102, 150, warmup_ns=0))
    assert [t for t, _k, _r in feed] == [COMMANDS, "sys.clock"]


def test_the_recording_span_leaves_out_the_wall_clock_stamps_of_commands() -> None:
    rec = Recording("p.", {"sys.clock": [_rec("sys.clock", 101, "XNYS", {})],
                           "md.bars": [_rec("md.bars", 100, "KO", {})],
                           COMMANDS: [_rec(COMMANDS, 9_999, "desk", {"issued_by": "alice"})]})  # wall-clock ts
    assert rec.input_span() == (100, 101)


def test_compare_aligns_by_time_and_symbol_and_orders_the_first_divergence() -> None:
    def order(ts: int, symbol: str, qty: float, **more) -> dict:
        return {"event_id": f"o-{ts}-{symbol}-{qty}", "ts_event": ts, "symbol": symbol, "quantity": qty,
                "correlation_id": f"c-{symbol}", **more}

    recorded = {"orders.proposed": [order(5, "AAPL", 1), order(5, "MSFT", 2), order(9, "KO", 3)],
                "risk.decisions": [order(4, "XOM", 1, check_latency_ns=10)]}
    replayed = {"orders.proposed": [order(5, "AAPL", 1), order(5, "MSFT", 4), order(9, "PEP", 3)],
                "risk.decisions": [order(4, "XOM", 1, check_latency_ns=99)]}
    result = compare(recorded, replayed, EventWindow(0, 100))
    assert [(d.topic, d.ts_event, d.symbol, d.kind) for d in result.differences] == [
        ("orders.proposed", 5, "MSFT", "changed"), ("orders.proposed", 9, "KO", "removed"),
        ("orders.proposed", 9, "PEP", "added")]
    assert result.first.fields == {"event_id": ("o-5-MSFT-2", "o-5-MSFT-4"), "quantity": (2, 4)}
    assert result.first.correlation_id == "c-MSFT"
    counts = result.counts["orders.proposed"]
    assert (counts.same, counts.changed, counts.added, counts.removed) == (1, 1, 1, 1)
    assert result.counts["risk.decisions"].same == 1  # wall-clock latency is not a decision
    assert not compare(recorded, replayed, EventWindow(0, 4)).diverged
