"""Service runtime: settings from the environment, JSON logs, HTTP endpoints, event clock, ids."""

from __future__ import annotations

import json
import logging
import threading
import time

import httpx
import pytest
from quorum_common.engine import Source, envelope, event_id
from quorum_common.phases import phase_ticks
from quorum_common.runtime.clock import EventClock
from quorum_common.runtime.config import ConfigError, ServiceSettings, load_settings
from quorum_common.runtime.http import HttpServer, build_app
from quorum_common.runtime.logging import JsonFormatter
from quorum_common.runtime.metrics import ServiceMetrics
from quorum_common.runtime.service import publish_source


def test_settings_come_from_quorum_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_KAFKA_BOOTSTRAP_SERVERS", "broker-1:9092,broker-2:9092")
    monkeypatch.setenv("QUORUM_DELIVERY", "at_least_once")
    monkeypatch.setenv("QUORUM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("QUORUM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("QUORUM_KAFKA_SASL_USERNAME", "desk")
    monkeypatch.setenv("QUORUM_KAFKA_SASL_PASSWORD", "s3cret")
    settings = load_settings(ServiceSettings)
    conf = settings.kafka_client_config()
    assert conf["bootstrap.servers"] == "broker-1:9092,broker-2:9092"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512" and conf["sasl.password"] == "s3cret"
    assert settings.delivery == "at_least_once"
    assert "s3cret" not in repr(settings), "secrets must not leak into logs"


def test_an_invalid_setting_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_HTTP_PORT", "99999")
    monkeypatch.setenv("QUORUM_DELIVERY", "maybe_once")
    monkeypatch.setenv("QUORUM_CHECKPOINT_KEY", "too short")
    with pytest.raises(ConfigError) as err:
        load_settings(ServiceSettings)
    assert all(name in str(err.value) for name in ("QUORUM_HTTP_PORT", "QUORUM_DELIVERY", "QUORUM_CHECKPOINT_KEY"))
    assert "too short" not in str(err.value), "a refused secret is not echoed"


def test_a_check_across_settings_is_refused_with_its_own_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import model_validator

    class Window(ServiceSettings):
        start: int = 0
        end: int = 10

        @model_validator(mode="after")
        def _ordered(self) -> Window:
            if self.start > self.end:
                raise ValueError(f"start {self.start} is after end {self.end}")
            return self

    monkeypatch.setenv("QUORUM_START", "12")
    with pytest.raises(ConfigError) as err:
        load_settings(Window)
    assert str(err.value) == "invalid Window: start 12 is after end 10"  # no empty variable name, no "Value error,"
    with pytest.raises(ConfigError) as err:
        load_settings(Window, end="soon")
    assert str(err.value).startswith("invalid Window: QUORUM_END: Input should be a valid integer")


def test_event_clock_only_moves_forward() -> None:
    clock = EventClock()
    assert clock.observe(100) == 100
    assert clock.observe(50) == 100
    assert clock.now_ns() == 100


def test_event_ids_are_deterministic_and_distinct() -> None:
    assert event_id("bar", "AAA", 1) == event_id("bar", "AAA", 1)
    assert event_id("bar", "AAA", 1) != event_id("bar", "AAA", 2)
    env = envelope(123, "x")
    assert env["ts_event"] == env["ts_init"] == 123 and env["correlation_id"] == env["event_id"]


def test_logs_are_one_json_object_per_line_with_extras() -> None:
    record = logging.makeLogRecord({"msg": "filled %s", "args": ("AAA",), "levelname": "INFO", "name": "x",
                                    "client_order_id": "c-1"})
    line = JsonFormatter("execution").format(record)
    payload = json.loads(line)
    assert payload["message"] == "filled AAA"
    assert payload["service"] == "execution" and payload["client_order_id"] == "c-1"


def test_http_endpoint_serves_health_readiness_and_prometheus_metrics() -> None:
    metrics = ServiceMetrics("probe_svc")
    for _ in range(3):
        metrics.records.received("md.bars")
    metrics.records.handled("md.bars", 0.002)
    ready = {"value": False}
    server = HttpServer(build_app("probe_svc", metrics, lambda: ready["value"]), "127.0.0.1", 0)
    port = server.start()
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        assert httpx.get(f"{base}/readyz").status_code == 503
        ready["value"] = True
        assert httpx.get(f"{base}/readyz").status_code == 200
        text = httpx.get(f"{base}/metrics").text
        assert 'quorum_probe_svc_messages_in_total{topic="md.bars"} 3.0' in text
        assert "quorum_probe_svc_handler_duration_seconds_bucket" in text
    finally:
        server.stop()


class Barrier:
    """A source barrier that notes its waits ("|") and its finish ("end")."""

    def __init__(self, note) -> None:
        self.note = note

    def __call__(self) -> None:
        self.note("|")

    def finish(self) -> None:
        self.note("end")


def test_a_lockstep_source_holds_a_bar_time_until_the_desk_finished_the_last_phase() -> None:
    """The barrier runs before every tick and before the first record after a tick: the bars of the
    next bar time leave only once every consumer reported on the last tick (so no bar waits in a topic
    while the desk is still busy), and the tick that follows them needs no second wait."""
    class Records(Source):
        def records(self):
            for day in (1_000_000, 2_000_000):
                for symbol in ("KO", "PEP"):
                    yield "md.bars", symbol, {"ts_event": day, "symbol": symbol}
                for tick in phase_ticks(day, 0)[:2]:
                    yield "sys.clock", "XNYS", tick

    seen: list[str] = []

    class Log:
        def publish(self, topic: str, record: dict, *, key: str | None = None) -> None:
            seen.append(key if topic == "md.bars" else record["kind"])

    publish_source(Records(), Log(), threading.Event(), barrier=Barrier(lambda what: seen.append(what)))
    assert seen == [
        "KO", "PEP", "|", "BAR_CLOSE", "|", "VOTE", "|", "KO", "PEP", "|", "BAR_CLOSE", "|", "VOTE", "end"]


def test_a_paced_lockstep_source_runs_its_barrier_before_waiting_for_the_next_bar_time() -> None:
    """The barrier before the first record after a tick runs before the pace's wait, so the flush inside it
    sends the last tick at once (lockstep producers linger) and the desk works while the source waits."""
    day_ns = 10**9  # one bar time per event-time second
    class Records(Source):
        def records(self):
            for day in (day_ns, 2 * day_ns):
                yield "md.bars", "KO", {"ts_event": day, "symbol": "KO"}
                yield "sys.clock", "XNYS", phase_ticks(day, 0)[0]

    seen: list[tuple[str, float]] = []

    class Log:
        def publish(self, topic: str, record: dict, *, key: str | None = None) -> None:
            seen.append((topic, time.monotonic()))

    publish_source(Records(), Log(), threading.Event(), speed=2.5,  # the second bar time is due 0.4 s later
                   barrier=Barrier(lambda what: seen.append((what, time.monotonic()))))
    assert [t for t, _ in seen] == ["md.bars", "|", "sys.clock", "|", "md.bars", "|", "sys.clock", "end"]
    barrier_after_tick, second_bar = seen[3][1], seen[4][1]
    assert second_bar - barrier_after_tick >= 0.2  # the wait came after the barrier (the other way round: ~0)


def test_a_source_logs_its_progress_every_n_records_or_every_few_seconds(monkeypatch, caplog) -> None:
    """A slow or short replay shows its way: a ``published`` line after a record that comes ``progress_s`` after the
    last line, besides one every ``progress_every`` records (wall time read from a fake clock: 0.4 s a record)."""
    clock = [0.0]
    monkeypatch.setattr("quorum_common.runtime.service.time.monotonic", lambda: clock[0])
    day = 86_400 * 10**9

    class Records(Source):
        def records(self):
            clock[0] += 5.0  # loading the data: not a reason to log the first record
            for n in range(1, 13):
                clock[0] += 0.4
                yield "md.bars", "KO", {"ts_event": n * day, "symbol": "KO"}

    class Sink:
        def publish(self, topic: str, record: dict, *, key: str | None = None) -> None:
            pass

    with caplog.at_level(logging.INFO, logger="quorum_common.runtime.service"):
        assert publish_source(Records(), Sink(), threading.Event(), progress_every=5, progress_s=1.0) == 12
    logged = [(r.records, r.through) for r in caplog.records if r.getMessage() == "published"]
    # record 4 (1.2 s after the first), 5 (every 5th), 8 (1.2 s after 5), 10 (every 5th); 12 comes 0.8 s after 10
    assert logged == [(4, "1970-01-05"), (5, "1970-01-06"), (8, "1970-01-09"), (10, "1970-01-11")]
