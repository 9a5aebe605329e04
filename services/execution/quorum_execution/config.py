"""Settings of the execution service (environment variables ``QUORUM_*``).

Per-asset-class settings are JSON maps (e.g. ``QUORUM_FEE_BPS='{"equity": 1, "crypto": 10, "default": 5}'``);
each must have a ``default`` entry used for asset classes it does not name.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from quorum_common.runtime.config import ServiceSettings

PerClass = dict[str, float]


class ExecutionSettings(ServiceSettings):
    """Venue choice, the paper exchange's cost model, and the optional sidecar gate."""

    service_name: str = "execution"
    venue: Literal["paper", "ccxt"] = Field("paper", description="Where orders go: the paper exchange or ccxt.")
    venue_name: str = Field("", description="Venue name on reports and fills; empty: SIM, or the ccxt exchange id.")
    half_spread_bps: PerClass = Field(
        default_factory=lambda: {"equity": 1.0, "crypto": 5.0, "fx": 0.5, "default": 2.0},
        description="Half the bid-ask spread paid by a taker, in bps, per asset class.",
    )
    slippage_bps: float = Field(1.0, ge=0, description="Fixed slippage of every fill, in bps.")
    impact_bps: float = Field(
        50.0, ge=0, description="Impact coefficient: bps × sqrt(fill quantity / bar volume)."
    )
    adv_notional: PerClass = Field(
        default_factory=lambda: {"equity": 5e7, "crypto": 1e9, "fx": 1e10, "default": 5e7},
        description="Average daily notional used for impact when a bar has no volume, per asset class.",
    )
    fee_bps: PerClass = Field(
        default_factory=lambda: {"equity": 1.0, "crypto": 10.0, "fx": 0.5, "default": 1.0},
        description="Fee in bps of the fill notional, per asset class.",
    )
    min_fee: float = Field(1.0, ge=0, description="Minimum fee of one fill, in fee currency.")
    fee_currency: str = Field("USD", min_length=1, description="Currency of fees (the desk's base currency).")
    max_participation: float = Field(
        0.1, gt=0, le=1, description="Largest share of a bar's volume the paper exchange fills per symbol."
    )
    sidecar_socket: str = Field("", description="Unix socket of the C++ risk sidecar; empty disables the gate.")
    sidecar_deadline_ms: float = Field(5.0, gt=0, le=10_000, description="Deadline of one sidecar request.")
    journal_restore_timeout_s: float = Field(
        120.0, gt=0, description="Longest wait to read exec.reports to its end at start (then refuse to start)."
    )
    ccxt_exchange: str = Field("binance", min_length=1, description="ccxt exchange id when venue is ccxt.")
    ccxt_api_key: SecretStr | None = None
    ccxt_secret: SecretStr | None = None
    ccxt_markets: dict[str, str] = Field(
        default_factory=dict, description="Desk symbol -> exchange market (default: BTC-USD -> BTC/USD)."
    )
    ccxt_sandbox: bool = Field(False, description="Use the exchange's sandbox (testnet) endpoints.")

    @field_validator("half_spread_bps", "adv_notional", "fee_bps")
    @classmethod
    def _per_class(cls, value: PerClass) -> PerClass:
        if "default" not in value:
            raise ValueError("needs a 'default' entry")
        bad = [k for k, v in value.items() if not (math.isfinite(v) and v >= 0)]
        if bad:
            raise ValueError(f"values must be finite and >= 0 (bad: {', '.join(sorted(bad))})")
        return value

    @field_validator("adv_notional")
    @classmethod
    def _positive_adv(cls, value: PerClass) -> PerClass:
        if any(v <= 0 for v in value.values()):
            raise ValueError("average daily notionals must be > 0")
        return value


def per_class(mapping: PerClass, asset_class: str) -> float:
    """The value of ``asset_class`` in a per-asset-class map, or its ``default``."""
    return mapping.get(asset_class, mapping["default"])
