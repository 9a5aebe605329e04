"""Which services make up the desk, in pipeline order."""

from __future__ import annotations

from quorum_alpha.app import SPEC as ALPHA
from quorum_common.runtime.config import load_settings
from quorum_common.runtime.service import ServiceSpec
from quorum_critic.app import SPEC as CRITIC
from quorum_execution.app import SPEC as EXECUTION
from quorum_ingest.app import SPEC as INGEST
from quorum_manager.app import SPEC as MANAGER
from quorum_portfolio.app import SPEC as PORTFOLIO
from quorum_regime.app import SPEC as REGIME
from quorum_risk.app import SPEC as RISK

SOURCE: ServiceSpec = INGEST
CONSUMERS: tuple[ServiceSpec, ...] = (REGIME, ALPHA, MANAGER, PORTFOLIO, RISK, EXECUTION, CRITIC)
"""Every engine-driven service of the trading desk (the admin API is wired by the local runner)."""


class _NullPublisher:
    def publish(self, topic: str, record: dict, *, key: str | None = None) -> None:
        """Discard (used only to read an engine's inputs)."""

    def dead_letter(self, topic: str, payload: object, reason: str, *, key: str | None = None, error: str = "") -> None:
        """Discard (used only to read an engine's inputs)."""


def consumer_inputs() -> dict[str, list[str]]:
    """Service name → logical topics it consumes (lockstep consumers also read ``sys.clock``)."""
    out = {}
    for spec in CONSUMERS:
        engine = spec.engine(load_settings(spec.settings_cls), _NullPublisher())
        out[spec.name] = sorted({*engine.inputs, "sys.clock"})
    return out
