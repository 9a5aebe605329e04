"""An embedded run's dead letters are written with its report (``dead_letters.jsonl``), counted in ``metrics.json``
and listed on the page: nothing refused is lost when the process ends."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from quorum_common.bus.deadletter import DeadLetter, dead_letter_payload, readable_payload
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.event_dates import utc_date
from quorum_common.schemas import default_catalog
from quorum_common.testing.samples import sample_record
from quorum_desk.app import main
from quorum_desk.report_letters import FILE, LISTED, letters_html, letters_metrics, write_dead_letters

CODEC = TopicCodec()


def bar_letter(day: int, close: float) -> DeadLetter:
    """A bar ingest refused, kept as Avro (as the in-process bus keeps one)."""
    bar = {**sample_record(default_catalog().schema_for("md.bars"), seed=day), "symbol": "VIX", "close": close,
           "ts_event": 1_514_764_800 * 10**9 + day * 86_400 * 10**9}
    return DeadLetter("md.bars", "VIX", dead_letter_payload(CODEC, "md.bars", bar), "nan", "not a finite number: close",
                      "ingest")


def strict(text: str) -> dict:
    """JSON as a strict reader takes it (no NaN or Infinity literal)."""
    def refuse(literal: str) -> None:
        raise ValueError(f"not JSON: {literal}")
    return json.loads(text, parse_constant=refuse)


def test_every_letter_is_written_readable_and_strict_json(tmp_path: Path) -> None:
    letters = [bar_letter(day, math.nan) for day in range(LISTED + 3)]
    letters.append(DeadLetter("exec.fills", "o1", b'{"price": -1.0, "symbol": "KO"}', "invalid_fill",
                              "price must be positive", "portfolio"))
    letters.append(DeadLetter("signals.alpha", None, b"\x00\xffnot a record", "decode_error", "bad magic", "manager"))
    rows = write_dead_letters(letters, tmp_path, CODEC)
    lines = [strict(line) for line in (tmp_path / FILE).read_text().splitlines()]
    assert len(lines) == len(rows) == LISTED + 5
    assert lines[0]["record"]["symbol"] == "VIX" and lines[0]["record"]["close"] == "NaN"  # Avro, decoded
    assert (lines[0]["reason"], lines[0]["service"]) == ("nan", "ingest")
    assert lines[0]["error"] == "not a finite number: close"
    assert lines[-2]["record"] == {"price": -1.0, "symbol": "KO"}  # kept as JSON: too broken for its schema
    assert "undecodable" in lines[-1]["record"]  # no reader takes it: its bytes, base64
    assert letters_metrics(rows) == {"count": LISTED + 5, "file": FILE, "by_topic_and_reason": {
        "md.bars: nan": LISTED + 3, "exec.fills: invalid_fill": 1, "signals.alpha: decode_error": 1}}
    page = letters_html(rows)
    assert page.count("<tr><td>") == LISTED and "<td>2018-01-01</td><td>md.bars</td><td>VIX</td>" in page
    assert f"{5:,} more in {FILE}" in page


def test_a_run_without_letters_writes_no_file(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text("{}\n")  # an earlier run of the same run id had some
    assert write_dead_letters([], tmp_path) == []
    assert not (tmp_path / FILE).exists()
    assert letters_metrics([]) == {"count": 0, "by_topic_and_reason": {}, "file": None}
    assert "none" in letters_html([])


def test_make_run_writes_the_bars_ingest_refused_with_its_report(tmp_path: Path, monkeypatch, capsys) -> None:
    # the bundled VIX has NaN closes on some US holidays: ingest refuses those bars
    monkeypatch.setenv("QUORUM_SYMBOLS", json.dumps(["KO", "PEP", "SPX", "VIX"]))
    assert main(["run", "--start", "2017-12-01", "--end", "2018-01-31", "--reports", str(tmp_path),
                 "--run-id", "r"]) == 0
    assert f"kept with the reason in {tmp_path / 'r' / FILE}" in capsys.readouterr().out
    letters = [strict(line) for line in (tmp_path / "r" / FILE).read_text().splitlines()]
    assert [(utc_date(x["record"]["ts_event"]).isoformat(), x["record"]["symbol"], x["reason"]) for x in letters] \
        == [("2017-12-25", "VIX", "nan"), ("2018-01-01", "VIX", "nan"), ("2018-01-15", "VIX", "nan")]
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["dead_letters"] == {"count": 3, "by_topic_and_reason": {"md.bars: nan": 3}, "file": FILE}
    assert "<h2>Dead letters</h2>" in (tmp_path / "r" / "index.html").read_text()


@pytest.mark.parametrize("payload", [b"", b"[1, 2]", b"\xff"])
def test_a_payload_that_is_no_record_is_kept_as_its_bytes(payload: bytes) -> None:
    assert set(readable_payload(CODEC, "md.bars", payload)) == {"undecodable"}


def test_a_window_too_short_to_report_on_is_refused_and_keeps_its_dead_letters(tmp_path: Path, monkeypatch,
                                                                                 capsys) -> None:
    # 2018-01-01, a holiday (a VIX bar without a price), then one trading session: one snapshot, no report
    monkeypatch.setenv("QUORUM_SYMBOLS", json.dumps(["KO", "SPX", "VIX"]))
    assert main(["run", "--start", "2018-01-01", "--end", "2018-01-02", "--reports", str(tmp_path),
                 "--run-id", "r"]) == 2
    err = capsys.readouterr().err
    assert "error: no report: the window holds 1 trading session(s)" in err and "widen --start/--end" in err
    assert f"its dead letters are in {tmp_path / 'r' / FILE}" in err
    (letter,) = [strict(line) for line in (tmp_path / "r" / FILE).read_text().splitlines()]
    assert (letter["record"]["symbol"], letter["reason"]) == ("VIX", "nan")
    assert not (tmp_path / "r" / "metrics.json").exists()
