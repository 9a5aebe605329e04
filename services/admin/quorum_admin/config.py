"""Settings of the admin service (environment variables ``QUORUM_*``).

``QUORUM_ADMIN_TOKENS`` is a JSON map from the sha256 hex digest of a bearer token to its principal,
e.g. ``{"9f86d0...": {"name": "alice", "role": "operator"}}``: plain tokens never appear in configuration.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from quorum_common.runtime.config import ServiceSettings

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class Principal(BaseModel):
    """Who holds a token: a name for the audit trail and one role."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Principal name written to commands and the audit trail.")
    role: Literal["viewer", "operator", "risk_officer"] = Field(description="What the principal may do.")


class AdminSettings(ServiceSettings):
    """Admin API settings."""

    service_name: str = "admin"
    desk: str = Field("desk", min_length=1, description="Desk the commands are addressed to.")
    admin_tokens: dict[str, Principal] = Field(
        default_factory=dict, description="sha256(token) hex -> principal; empty refuses every call (401).")
    tradable_symbols: list[str] | None = Field(
        None, description="The symbols the desk has market data for (JSON list; `quorum-desk up` sets the replayed "
        "data sets' symbols): PUT /mandate refuses a universe naming another (422, field universe). None: no check "
        "(a live desk trades what its exchange lists).")

    @field_validator("admin_tokens")
    @classmethod
    def _digests_only(cls, value: dict[str, Principal]) -> dict[str, Principal]:
        bad = [k[:8] + "..." for k in value if not _SHA256_HEX.match(k)]
        if bad:
            raise ValueError(f"keys must be lowercase sha256 hex digests of tokens, not tokens: {bad}")
        return value
