"""The manager engine on the in-process bus: phases, compiled mandate, decisions, commands, bad input."""

from __future__ import annotations

import json
import random

import pytest
import yaml
from quorum_common.bus.message import Message
from quorum_manager.config import ManagerSettings
from quorum_manager.engine import ManagerEngine


def test_decisions_come_only_at_the_vote_tick(harness, rec) -> None:
    h = harness().feed(rec.signal(0), rec.signal(0, symbol="MSFT"), rec.tick(0, "BAR_CLOSE"),
                       rec.tick(0, "REBALANCE"))
    assert h.decisions == [] and h.compiled == []
    h.feed(rec.tick(0))
    assert [d["symbol"] for d in h.decisions] == ["AAPL", "MSFT"]
    assert all(d["ts_event"] == rec.ts(0) + 2 for d in h.decisions)


def test_compiled_mandate_is_published_once_before_the_first_decision(harness, rec) -> None:
    h = harness().feed(rec.signal(0), rec.tick(0), rec.signal(1), rec.tick(1))
    assert h.order[0] == ("mandate.compiled", rec.ts(0) + 2)
    assert [t for t, _ in h.order].count("mandate.compiled") == 1
    assert len(h.decisions) == 2
    compiled = h.compiled[0]
    assert (compiled["mandate_id"], compiled["version"], compiled["compiled_by"]) == ("default", 1, "SYSTEM")
    assert h.decisions[0]["mandate_id"] == "default" and h.decisions[0]["mandate_version"] == 1


def test_decision_carries_its_vote(harness, rec) -> None:
    h = harness().feed(rec.regime(0, "TRENDING", state=2),
                       rec.signal(0, score=0.9, confidence=1.0, close=123.5),
                       rec.signal(0, score=-0.5, confidence=0.5, strategy="MEAN_REVERSION", agent="alpha.bb",
                                  close=None),
                       rec.tick(0))
    (d,) = h.decisions
    assert (d["regime_label"], d["regime_state"], d["reference_price"]) == ("TRENDING", 2, 123.5)
    assert d["combined_score"] == pytest.approx((0.2 * 0.9 - 0.2 * 0.5 * 0.5) / 0.4)
    assert d["action"] == "BUY"
    by_strategy = {b["strategy"]: b for b in d["breakdown"]}
    assert set(by_strategy) == {"MOMENTUM", "MEAN_REVERSION", "ML_FORECAST", "SENTIMENT"}
    assert by_strategy["MOMENTUM"]["signal_event_id"] == rec.signal(0, score=0.9)["event_id"]
    assert by_strategy["SENTIMENT"]["score"] == 0.0 and by_strategy["ML_FORECAST"]["score"] == 0.0
    assert d["correlation_id"] == d["decision_id"]
    assert d["thresholds"] == {"strong_buy": 0.6, "buy": 0.2, "sell": -0.2, "strong_sell": -0.6}


def test_hold_decisions_are_published(harness, rec) -> None:
    h = harness().feed(rec.signal(0, score=0.05), rec.tick(0))
    assert [d["action"] for d in h.decisions] == ["HOLD"]


def test_strong_buy_and_strong_sell(harness, rec) -> None:
    h = harness().feed(rec.signal(0, score=0.95), rec.signal(0, symbol="MSFT", score=-0.95), rec.tick(0))
    assert {d["symbol"]: d["action"] for d in h.decisions} == {"AAPL": "STRONG_BUY", "MSFT": "STRONG_SELL"}


def test_mean_reversion_is_muted_in_a_high_vol_regime(harness, rec) -> None:
    h = harness().feed(rec.regime(0, "HIGH_VOL", state=1),
                       rec.signal(0, score=-1.0, strategy="MEAN_REVERSION", agent="alpha.bb"),
                       rec.signal(0, score=0.3), rec.tick(0))
    (d,) = h.decisions
    mr = next(b for b in d["breakdown"] if b["strategy"] == "MEAN_REVERSION")
    assert mr["muted"] is True and mr["weight"] == 0.0 and mr["mute_reason"]
    assert d["combined_score"] == pytest.approx(0.3)


def test_regime_of_a_later_bar_is_not_used(harness, rec) -> None:
    """No look-ahead: over Kafka a regime update of t+1 may arrive before the tick of t."""
    h = harness()
    h.engine.on_message(Message("regime.state", "market", rec.regime(0, "TRENDING"), "RegimeChanged"))
    h.engine.on_message(Message("signals.raw", "AAPL", rec.signal(0), "SignalGenerated"))
    h.engine.on_message(Message("regime.state", "market", rec.regime(1, "CRISIS"), "RegimeChanged"))
    h.engine.on_message(Message("sys.clock", "XNYS", rec.tick(0), "ClockTicked"))
    h.bus.run()
    assert h.decisions[0]["regime_label"] == "TRENDING"


def test_other_regime_scopes_are_ignored(harness, rec) -> None:
    h = harness().feed(rec.regime(0, "CRISIS", scope="crypto"), rec.signal(0), rec.tick(0))
    assert h.decisions[0]["regime_label"] == "UNKNOWN"


def test_forecast_and_sentiment_enter_the_vote(harness, rec) -> None:
    h = harness().feed(rec.regime(0, "TRENDING"), rec.signal(0, score=0.0, confidence=1.0),
                       rec.forecast(0, point=0.02, quantiles=(-0.01, 0.02, 0.03)),
                       rec.forecast(0, point=-0.05, baseline=True, model="gbm"),
                       rec.sentiment(0, score=0.6, confidence=0.5), rec.sentiment(0, score=-0.2, confidence=0.5,
                                                                                  headline="h2"),
                       rec.tick(0))
    by_strategy = {b["strategy"]: b for b in h.decisions[0]["breakdown"]}
    fc, sent = by_strategy["ML_FORECAST"], by_strategy["SENTIMENT"]
    assert fc["agent_id"] == "forecast.tft" and fc["weight"] == 0.5  # the TFT beats the baseline
    assert fc["confidence"] == pytest.approx(2 / 3) and fc["score"] > 0
    assert sent["score"] == pytest.approx(0.2) and sent["weight"] == 0.3
    assert h.decisions[0]["combined_score"] > 0


def test_old_sentiment_leaves_the_window(harness, rec) -> None:
    h = harness(manager_sentiment_window_s=86_400).feed(rec.sentiment(0, score=0.9), rec.signal(3), rec.tick(3))
    sent = next(b for b in h.decisions[0]["breakdown"] if b["strategy"] == "SENTIMENT")
    assert sent["score"] == 0.0 and sent["signal_event_id"] is None


def test_symbols_outside_the_mandate_are_not_decided(harness, rec) -> None:
    h = harness().feed(rec.signal(0, symbol="VIX"), rec.signal(0), rec.tick(0))
    assert [d["symbol"] for d in h.decisions] == ["AAPL"]


def test_reference_price_falls_back_to_the_last_close(harness, rec) -> None:
    h = harness().feed(rec.signal(0, close=50.0), rec.tick(0), rec.signal(1, close=None), rec.tick(1))
    assert [d["reference_price"] for d in h.decisions] == [50.0, 50.0]


def test_late_signal_is_dead_lettered_not_voted(harness, rec) -> None:
    h = harness().feed(rec.signal(1), rec.tick(1))
    h.engine.on_message(Message("signals.raw", "AAPL", rec.signal(0, symbol="MSFT"), "SignalGenerated"))
    h.feed(rec.tick(2))
    assert [d["symbol"] for d in h.decisions] == ["AAPL"]
    assert [(dl.topic, dl.reason) for dl in h.bus.dead_letters] == [("signals.raw", "late signal")]


@pytest.mark.parametrize(("field", "value"), [("score", 1.5), ("confidence", -0.1), ("score", float("nan"))])
def test_out_of_range_signal_is_dead_lettered(harness, rec, field: str, value: float) -> None:
    h = harness().feed(rec.signal(0, **{field: value}), rec.tick(0))
    assert h.decisions == []
    assert h.bus.dead_letters[0].reason == "invalid signal" and field in h.bus.dead_letters[0].error


def test_unreadable_forecast_is_dead_lettered(harness, rec) -> None:
    h = harness().feed(rec.forecast(0, target="volatility"), rec.signal(0), rec.tick(0))
    assert h.bus.dead_letters[0].reason == "invalid forecast"
    assert next(b for b in h.decisions[0]["breakdown"] if b["strategy"] == "ML_FORECAST")["score"] == 0.0


def mandate_doc(**changes: object) -> str:
    raw = {"mandate_id": "alice", "capital": 10_000, "horizon": "90d", "risk_tolerance": "aggressive",
           "max_drawdown": 0.3, "universe": [{"symbol": "AAPL", "sector": "IT", "asset_class": "equity"}]}
    return yaml.safe_dump({**raw, **changes})


def test_set_mandate_recompiles_and_applies(harness, rec) -> None:
    h = harness().feed(rec.signal(0), rec.tick(0), rec.command(0, mandate_doc()),
                       rec.signal(1), rec.signal(1, symbol="MSFT"), rec.tick(1))
    assert [(c["mandate_id"], c["version"]) for c in h.compiled] == [("default", 1), ("alice", 2)]
    assert h.compiled[1]["compiled_by"] == "alice" and h.compiled[1]["risk_tolerance"] == "AGGRESSIVE"
    assert h.compiled[1]["ts_event"] == rec.ts(0) + 5
    assert [(d["symbol"], d["mandate_id"], d["mandate_version"]) for d in h.decisions] == [
        ("AAPL", "default", 1), ("AAPL", "alice", 2)]  # MSFT left the universe


def test_set_mandate_with_json_and_new_thresholds(harness, rec) -> None:
    doc = json.dumps({**yaml.safe_load(mandate_doc()), "ensemble": {"thresholds": {"strong_buy": 0.9, "buy": 0.8}}})
    h = harness().feed(rec.command(-1, doc), rec.signal(0, score=0.85), rec.tick(0))
    assert [(c["mandate_id"], c["version"]) for c in h.compiled] == [("alice", 1)]  # the default was never in force
    assert h.compiled[0]["thresholds"]["buy"] == 0.8
    assert h.decisions[0]["action"] == "BUY"


@pytest.mark.parametrize(("document", "role", "reason", "words"), [
    (mandate_doc(max_drawdown=1.5), "OPERATOR", "invalid mandate", "max_drawdown: must be between 0 and 1"),
    (mandate_doc(colour="red"), "OPERATOR", "invalid mandate", "colour: unknown field"),
    (None, "OPERATOR", "invalid mandate", "mandate_document: required"),
    (mandate_doc(), "VIEWER", "forbidden", "role: VIEWER"),
])
def test_bad_set_mandate_is_dead_lettered_naming_the_field(harness, rec, document, role, reason, words) -> None:
    h = harness().feed(rec.command(0, document, role=role), rec.signal(1), rec.tick(1))
    (letter,) = h.bus.dead_letters
    assert (letter.topic, letter.reason) == ("control.commands", reason) and words in letter.error
    assert [c["version"] for c in h.compiled] == [1] and h.decisions[0]["mandate_id"] == "default"


def test_other_commands_are_left_to_the_risk_service(harness, rec) -> None:
    h = harness().feed(rec.command(0, None, command="HALT_TRADING"), rec.signal(1), rec.tick(1))
    assert h.bus.dead_letters == [] and len(h.compiled) == 1


def test_mandate_file_setting(tmp_path, harness, rec) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(mandate_doc())
    h = harness(mandate_path=path).feed(rec.signal(0), rec.tick(0))
    assert h.compiled[0]["mandate_id"] == "alice" and h.compiled[0]["capital"] == 10_000


def scenario(rec, seed: int) -> list[dict]:
    rng = random.Random(seed)
    records: list[dict] = []
    for i in range(30):
        records.append(rec.regime(i, rng.choice(["TRENDING", "HIGH_VOL", "MEAN_REVERTING"]), state=rng.randrange(3)))
        for symbol in ("AAPL", "MSFT", "BTC-USD"):
            records.append(rec.signal(i, symbol=symbol, score=rng.uniform(-1, 1), confidence=rng.uniform(0, 1),
                                      close=rng.uniform(10, 500)))
            records.append(rec.signal(i, symbol=symbol, score=rng.uniform(-1, 1), strategy="MEAN_REVERSION",
                                      agent="alpha.bb", confidence=rng.uniform(0, 1)))
        records.append(rec.sentiment(i, symbol="AAPL", score=rng.uniform(-1, 1), headline=f"h{i}"))
        records.append(rec.forecast(i, symbol="MSFT", point=rng.uniform(-0.02, 0.02), quantiles=(-0.01, 0.0, 0.01)))
        records += [rec.tick(i), rec.tick(i, "SESSION_CLOSE")]
    return records


def test_same_input_same_output_bit_for_bit(harness, rec) -> None:
    runs = [harness().feed(*scenario(rec, seed=3)) for _ in range(2)]
    assert len(runs[0].decisions) == 90
    assert runs[0].out == runs[1].out
    assert json.dumps(runs[0].out, sort_keys=True) == json.dumps(runs[1].out, sort_keys=True)
    assert len({d["decision_id"] for d in runs[0].decisions}) == 90
    assert {d["action"] for d in runs[0].decisions} >= {"HOLD", "BUY", "SELL"}


def test_engine_with_a_collecting_publisher(rec) -> None:
    """Without a bus the engine only needs publish and dead_letter (the engine is pure)."""

    class Collect:
        def __init__(self) -> None:
            self.out: list[tuple[str, dict]] = []

        def publish(self, topic: str, record: dict, *, key: str | None = None) -> None:
            self.out.append((topic, record))

        def dead_letter(self, topic, payload, reason, *, key=None, error="") -> None:
            raise AssertionError(reason)

    pub = Collect()
    engine = ManagerEngine(ManagerSettings(), pub)
    for topic, record in (("signals.raw", rec.signal(0)), ("sys.clock", rec.tick(0))):
        engine.on_message(Message(topic, None, record, ""))
    assert [t for t, _ in pub.out] == ["mandate.compiled", "signals.decisions"]
    assert engine.compiled is not None and engine.compiled["version"] == 1


def test_a_signal_of_the_next_bar_waits_for_its_own_tick(harness, rec) -> None:
    """Over Kafka a signal of t+1 may arrive before the tick of t: it is voted at t+1's tick, not before."""
    h = harness()
    for topic, record in (("signals.raw", rec.signal(0, score=0.1)), ("signals.raw", rec.signal(1, score=0.9)),
                          ("sys.clock", rec.tick(0))):
        h.engine.on_message(Message(topic, None, record, ""))
    h.bus.run()
    assert [d["combined_score"] for d in h.decisions] == [pytest.approx(0.1)]
    h.feed(rec.tick(1))
    assert [d["combined_score"] for d in h.decisions] == [pytest.approx(0.1), pytest.approx(0.9)]


def test_no_price_ever_seen_means_no_decision(harness, rec) -> None:
    h = harness().feed(rec.signal(0, close=None), rec.tick(0))
    assert h.decisions == [] and len(h.compiled) == 1


def test_a_mandate_command_handled_a_tick_later_leaves_the_same_state(harness, rec) -> None:
    """A command comes from outside the lockstep: a rebuild places it by broker time, which may be one tick later than
    the live consumer handled it. The decisions of that tick differ, but a rebuild discards its outputs: what must
    not differ is the state the manager goes on from."""
    doc = mandate_doc(ensemble={"thresholds": {"strong_buy": 0.3, "buy": 0.25}})
    # (each feed is delivered before the next: the harness orders one feed's records by event time)
    live = harness().feed(rec.signal(0), rec.tick(0), rec.command(0, doc)).feed(rec.signal(1, score=0.4), rec.tick(1))
    rebuilt = harness().feed(rec.signal(0), rec.tick(0)).feed(rec.signal(1, score=0.4), rec.tick(1))
    live.feed(rec.signal(2), rec.tick(2))
    rebuilt.feed(rec.command(0, doc), rec.signal(2), rec.tick(2))
    assert live.decisions[1]["action"] != rebuilt.decisions[1]["action"], "the tick in between decided otherwise"
    assert live.decisions[2:] == rebuilt.decisions[2:]
    assert live.engine.checkpoint() == rebuilt.engine.checkpoint()
