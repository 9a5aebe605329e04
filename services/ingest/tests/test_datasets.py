"""The bundled real data sets, read from the installed packages."""

from __future__ import annotations

import math

import pytest
from quorum_common.event_dates import day_ns as ns
from quorum_ingest.datasets import DATASETS, SP500_STOCKS, load_frames, read_dataset


def test_goog_is_real_daily_data() -> None:
    rows = list(read_dataset("GOOG"))
    assert len(rows) > 2000
    assert (rows[0].ts_ns, rows[0].open, rows[0].close) == (ns("2004-08-19"), 100.0, 100.34)  # the IPO day
    assert all(r.high >= r.low > 0 for r in rows)


def test_skfolio_stocks_are_adjusted_closes_with_unknown_volume() -> None:
    frames = load_frames("SP500_STOCKS")
    assert sorted(frames) == sorted(SP500_STOCKS) and {"KO", "PEP"} <= set(frames)
    ko = {r.ts_ns: r for r in read_dataset("SP500_STOCKS", "KO")}
    bar = ko[ns("2010-06-01")]
    assert bar.open == bar.high == bar.low == bar.close == pytest.approx(17.037)
    assert bar.volume == 0.0
    assert DATASETS["SP500_STOCKS"].adjusted and DATASETS["SP500_STOCKS"].interval == "1d"


def test_spx_from_arch_has_real_ohlcv_and_ends_2018() -> None:
    rows = list(read_dataset("SPX"))
    last = rows[-1]
    assert last.ts_ns == ns("2018-12-31")
    assert (last.open, last.close) == pytest.approx((2498.939941, 2506.850098))
    assert last.volume == pytest.approx(3.44287e9)


def test_vix_from_arch_is_close_only_with_nan_holidays() -> None:
    rows = list(read_dataset("VIX"))
    assert rows[0].ts_ns == ns("2014-01-03") and rows[0].close == pytest.approx(13.76)
    assert any(math.isnan(r.close) for r in rows)  # the checks must catch these


def test_frames_are_parsed_once_per_process() -> None:
    assert load_frames("SPX") is load_frames("SPX")


def test_unknown_data_set_names_the_valid_ones() -> None:
    with pytest.raises(KeyError, match="SP500_STOCKS"):
        list(read_dataset("NOPE"))


def test_multi_symbol_data_set_needs_a_symbol() -> None:
    with pytest.raises(ValueError, match="name one"):
        read_dataset("SP500_STOCKS")
