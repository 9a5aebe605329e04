"""Microstructure: the order-book imbalance."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from quorum_alpha.signal import Signal

AGENT_ID = "alpha.book.imbalance"

Book = dict[str, Any]
"""A decoded ``OrderBookUpdated`` record."""


def book_problem(book: Book) -> str | None:
    """Why a book cannot be used (bad prices or sizes, unsorted or crossed sides), or None."""
    bids, asks = book["bids"], book["asks"]
    for side in (bids, asks):
        if not all(math.isfinite(lv["price"]) and lv["price"] > 0 and math.isfinite(lv["size"]) and lv["size"] >= 0
                   for lv in side):
            return "level prices must be finite and positive, sizes finite and non-negative"
    if any(a["price"] < b["price"] for a, b in pairwise(bids)):
        return "bids must be best (highest) first"
    if any(a["price"] > b["price"] for a, b in pairwise(asks)):
        return "asks must be best (lowest) first"
    if bids and asks and bids[0]["price"] >= asks[0]["price"]:
        return f"crossed book: best bid {bids[0]['price']} >= best ask {asks[0]['price']}"
    return None


@dataclass(slots=True)
class _Smoothed:
    value: float
    updates: int = 0
    last_ts: int = -1


class BookImbalanceAgent:
    """Per symbol, the imbalance (bid size − ask size) / (bid size + ask size) over the top ``levels``,
    smoothed by an EMA of span ``span`` over book updates; the score is the smoothed imbalance.

    Confidence grows with the updates seen, reaching 1 after ``span`` of them. Books with no size on
    either side, and books older than the symbol's last one, give no signal.
    """

    def __init__(self, levels: int, span: int) -> None:
        self.levels, self.span = levels, span
        self._alpha = 2.0 / (span + 1)
        self._state: dict[str, _Smoothed] = {}

    def update(self, book: Book) -> list[Signal]:
        """Fold the book's imbalance into the symbol's EMA; one signal per usable book."""
        symbol, ts = book["symbol"], book["ts_event"]
        bid = math.fsum(lv["size"] for lv in book["bids"][: self.levels])
        ask = math.fsum(lv["size"] for lv in book["asks"][: self.levels])
        st = self._state.get(symbol)
        if bid + ask <= 0 or (st is not None and ts < st.last_ts):
            return []
        raw = (bid - ask) / (bid + ask)
        if st is None:
            st = self._state[symbol] = _Smoothed(raw)
        st.value += self._alpha * (raw - st.value)
        st.updates += 1
        st.last_ts = ts
        side = "bid" if st.value > 0 else "ask"
        return [Signal(
            agent_id=AGENT_ID, strategy="OTHER", symbol=symbol, score=st.value,
            confidence=min(1.0, st.updates / self.span),
            inputs={"imbalance": raw, "smoothed_imbalance": st.value, "bid_size": bid, "ask_size": ask},
            reason=f"{side}-heavy book over the top {self.levels} levels", horizon_bars=None,
        )]
