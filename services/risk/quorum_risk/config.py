"""Settings of the risk service (environment variables ``QUORUM_*``)."""

from __future__ import annotations

from pydantic import Field, field_validator
from quorum_common.runtime.config import ServiceSettings


class RiskSettings(ServiceSettings):
    """Parameters of the pre-trade checks that do not come from the compiled mandate."""

    service_name: str = "risk"
    desk: str = Field("desk", min_length=1, description="Desk whose state this service owns (key of control.state).")
    approver: str = Field("risk", min_length=1, description="Name in SubmitOrder.approved_by and state changes.")
    volume_window: int = Field(20, ge=1, le=10_000, description="Bars averaged for the fat-finger volume check.")
    quantity_decimals: dict[str, int] = Field(
        default_factory=lambda: {"equity": 6, "crypto": 8, "fx": 6},
        description="Maximum decimals of an order quantity per asset class.",
    )
    default_quantity_decimals: int = Field(8, ge=0, le=12, description="Quantity decimals of other asset classes.")
    price_decimals: int = Field(8, ge=0, le=12, description="Maximum decimals of a limit price.")
    drawdown_relock_step: float = Field(
        0.03, gt=0.0, le=1.0, description="When a risk officer resumes trading while the drawdown is at or beyond "
        "the lock level, the lock moves the desk to REDUCING again once the drawdown deepens by this much from the "
        "drawdown at the resume (and at the lock level again after it has recovered under it).")

    @field_validator("quantity_decimals")
    @classmethod
    def _decimals_in_range(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in value.items() if not 0 <= v <= 12}
        if bad:
            raise ValueError(f"quantity_decimals must be between 0 and 12, got {bad}")
        return value

    def decimals_for(self, asset_class: str) -> int:
        """Maximum quantity decimals of ``asset_class``."""
        return self.quantity_decimals.get(asset_class, self.default_quantity_decimals)
