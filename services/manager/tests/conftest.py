"""Record builders and an in-process harness for the manager tests (as fixtures: no cross-test imports)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pytest
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.message import Message
from quorum_common.engine import envelope
from quorum_common.phases import clock_tick
from quorum_manager.config import ManagerSettings
from quorum_manager.engine import ManagerEngine

DAY_NS = 86_400 * 10**9
T0 = 1_600_000_000 * 10**9


class Records:
    """Complete records of every topic the manager reads, at bar ``i`` (``ts = T0 + i days``)."""

    day_ns = DAY_NS
    t0 = T0

    @staticmethod
    def ts(i: int) -> int:
        """Bar time of day ``i``."""
        return T0 + i * DAY_NS

    def signal(self, i: int, symbol: str = "AAPL", score: float = 0.5, confidence: float = 1.0,
               strategy: str = "MOMENTUM", agent: str = "alpha.momentum", close: float | None = 100.0) -> dict:
        """A SignalGenerated record."""
        ts = self.ts(i)
        return {
            **envelope(ts, agent, symbol), "agent_id": agent, "strategy": strategy, "symbol": symbol,
            "score": score, "confidence": confidence, "inputs": {} if close is None else {"close": close},
            "paired_symbol": None, "hedge_ratio": None, "interval": "1d", "horizon_bars": 5,
            "data_cutoff_ts": ts, "reason": None,
        }

    def tick(self, i: int, kind: str = "VOTE") -> dict:
        """A ClockTicked record of phase ``kind`` of bar ``i``."""
        return clock_tick(kind, self.ts(i), i)

    def regime(self, i: int, label: str = "TRENDING", state: int = 0, scope: str = "market") -> dict:
        """A RegimeChanged record."""
        ts = self.ts(i)
        return {
            **envelope(ts, "regime", scope), "scope": scope, "state": state, "label": label,
            "previous_state": None, "previous_label": None, "is_transition": False,
            "probabilities": [1.0, 0.0], "state_labels": [label, "UNKNOWN"], "features": {},
            "model": "gaussian_hmm", "n_states": 2, "window_bars": 100, "data_cutoff_ts": ts, "fitted_ts": None,
        }

    def forecast(self, i: int, symbol: str = "AAPL", point: float = 0.01, quantiles: Iterable[float] = (),
                 baseline: bool = False, model: str = "tft", target: str = "log_return") -> dict:
        """A ForecastPublished record."""
        ts = self.ts(i)
        qs = list(quantiles)
        return {
            **envelope(ts, "forecast", model, symbol), "symbol": symbol, "model": model, "model_version": None,
            "is_baseline": baseline, "interval": "1d", "horizon_steps": 1, "target": target,
            "data_cutoff_ts": ts, "target_ts": None, "point_forecast": point,
            "quantiles": [{"quantile": (k + 1) / (len(qs) + 1), "value": v} for k, v in enumerate(qs)],
            "reference_price": 100.0, "variable_importance": {}, "static_importance": None, "inference_ms": None,
        }

    def sentiment(self, i: int, symbol: str = "AAPL", score: float = 0.8, confidence: float = 1.0,
                  headline: str = "h1") -> dict:
        """A SentimentScored record."""
        ts = self.ts(i)
        return {
            **envelope(ts, "sentiment", headline, symbol), "symbol": symbol, "headline_id": headline,
            "score": score, "label": "POSITIVE" if score > 0 else "NEGATIVE", "confidence": confidence,
            "model": "finbert", "model_version": None, "fallback": False, "class_probabilities": None,
            "latency_us": None,
        }

    def command(self, i: int, document: str | None, role: str = "OPERATOR", command: str = "SET_MANDATE") -> dict:
        """An IssueControlCommand record, stamped just after the bar's calendar phase."""
        ts = self.ts(i) + 5
        return {
            **envelope(ts, "cmd", command), "desk": "main", "command": command, "issued_by": "alice", "role": role,
            "reason": "test", "limits": None, "mandate_document": document, "symbols": None,
            "source_service": "admin",
        }


TOPIC_OF = {"agent_id": "signals.raw", "kind": "sys.clock", "scope": "regime.state",
            "point_forecast": "model.forecasts", "headline_id": "alt.sentiment", "command": "control.commands"}


def topic_of(record: dict) -> str:
    """The manager input topic a builder's record belongs to."""
    return next(topic for field, topic in TOPIC_OF.items() if field in record)


class Harness:
    """A ManagerEngine on an InProcessBus (every record round-trips the Avro codec), recording its output."""

    def __init__(self, **settings: Any) -> None:
        self.bus = InProcessBus()
        self.engine = ManagerEngine(ManagerSettings(**settings), self.bus.publisher("manager"))
        self.bus.subscribe("manager", self.engine.inputs, self.engine.on_message)
        self.out: dict[str, list[dict]] = defaultdict(list)
        self.order: list[tuple[str, int]] = []
        self.bus.subscribe("recorder", ("signals.decisions", "mandate.compiled"), self._record)

    def _record(self, msg: Message) -> None:
        self.out[msg.topic].append(msg.value)
        self.order.append((msg.topic, msg.ts_event))

    def feed(self, *records: dict) -> Harness:
        """Publish ``records`` on their topics and deliver everything."""
        pub = self.bus.publisher("test")
        for rec in records:
            pub.publish(topic_of(rec), rec, key=None)
        self.bus.run()
        return self

    @property
    def decisions(self) -> list[dict]:
        """DecisionMade records published so far."""
        return self.out["signals.decisions"]

    @property
    def compiled(self) -> list[dict]:
        """MandateCompiled records published so far."""
        return self.out["mandate.compiled"]


@pytest.fixture
def rec() -> Records:
    """Record builders."""
    return Records()


@pytest.fixture
def harness() -> type[Harness]:
    """The harness class: ``harness(**settings).feed(...)``."""
    return Harness
