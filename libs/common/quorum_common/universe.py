"""The static instrument map of the bundled data: sector, asset class, and whether it is tradable.

Sectors are GICS sectors. Indices (``SPX``, ``VIX``) are market data only: regime and benchmarks
read them, nobody trades them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Instrument:
    """One instrument of the universe."""

    symbol: str
    sector: str
    asset_class: str
    tradable: bool = True
    venue: str = "NYSE"
    currency: str = "USD"


_IT, _FIN, _CD, _EN, _IND = "Information Technology", "Financials", "Consumer Discretionary", "Energy", "Industrials"
_HC, _CS = "Health Care", "Consumer Staples"

INSTRUMENTS: dict[str, Instrument] = {i.symbol: i for i in [
    Instrument("AAPL", _IT, "equity", venue="NASDAQ"),
    Instrument("AMD", _IT, "equity", venue="NASDAQ"),
    Instrument("BAC", _FIN, "equity"),
    Instrument("BBY", _CD, "equity"),
    Instrument("CVX", _EN, "equity"),
    Instrument("GE", _IND, "equity"),
    Instrument("HD", _CD, "equity"),
    Instrument("JNJ", _HC, "equity"),
    Instrument("JPM", _FIN, "equity"),
    Instrument("KO", _CS, "equity"),
    Instrument("LLY", _HC, "equity"),
    Instrument("MRK", _HC, "equity"),
    Instrument("MSFT", _IT, "equity", venue="NASDAQ"),
    Instrument("PEP", _CS, "equity", venue="NASDAQ"),
    Instrument("PFE", _HC, "equity"),
    Instrument("PG", _CS, "equity"),
    Instrument("RRC", _EN, "equity"),
    Instrument("UNH", _HC, "equity"),
    Instrument("WMT", _CS, "equity"),
    Instrument("XOM", _EN, "equity"),
    Instrument("GOOG", "Communication Services", "equity", venue="NASDAQ"),
    Instrument("BTC-USD", "Crypto", "crypto", venue="COINBASE"),
    Instrument("EUR-USD", "Currency", "fx", venue="FX"),
    Instrument("SPX", "Index", "index", tradable=False, venue="INDEX"),
    Instrument("VIX", "Index", "index", tradable=False, venue="CBOE"),
]}


def instrument(symbol: str) -> Instrument:
    """The instrument of ``symbol``; ``KeyError`` names the known symbols."""
    try:
        return INSTRUMENTS[symbol]
    except KeyError:
        raise KeyError(f"unknown symbol {symbol!r}; known: {', '.join(sorted(INSTRUMENTS))}") from None
