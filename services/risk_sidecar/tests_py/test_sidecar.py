"""End-to-end tests: the real sidecar binary over its Unix socket, through the Python client."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from quorum_sidecar import SIDECAR_PROTOCOL_ERROR, SIDECAR_UNAVAILABLE, SidecarClient, SidecarError
from quorum_sidecar.testing import BASE, Sidecar, render_config

HEADER = struct.Struct("<4sBBHII")


def client(sc: Sidecar, deadline_ms: float = 200.0) -> SidecarClient:
    return SidecarClient(sc.socket_path, deadline_ms=deadline_ms)


def run_steps(c: SidecarClient, steps: list[tuple]) -> None:
    for step in steps:
        kind = step[0]
        if kind == "mark":
            assert c.report_mark(step[1], step[2]).ok
        elif kind == "fill":
            assert c.report_fill(*step[1:]).ok
        elif kind == "halt":
            assert c.halt().mode == "HALTED"
        elif kind in ("ok", "rej"):
            expected = "OK" if kind == "ok" else step[1]
            args = step[1:] if kind == "ok" else step[2:]
            oid, sym, side, qty, px = args[:5]
            cls, sector = args[5:7] if len(args) > 5 else ("equity", "technology")
            v = c.check_order(oid, sym, side, qty, px, cls, sector)
            assert v.reason == expected, f"{step}: got {v}"
            assert v.approved == (expected == "OK")
        else:  # pragma: no cover
            raise AssertionError(kind)


M = ("mark", "AAPL", 100.0)
CASES = {
    "OK": ({}, [M, ("ok", "o1", "AAPL", "BUY", 10, 100.0)]),
    "INVALID_INSTRUMENT": ({}, [("mark", "BTC", 100.0), ("rej", "INVALID_INSTRUMENT", "o1", "BTC", "BUY", 1, 100.0)]),
    "MAX_ORDER_QUANTITY": (
        {},
        [M, ("ok", "o0", "AAPL", "BUY", 1000, 100.0), ("rej", "MAX_ORDER_QUANTITY", "o1", "AAPL", "BUY", 1001, 100.0)],
    ),
    "MAX_ORDER_NOTIONAL": (
        {"limits": {"max_order_notional": "50000"}},
        [M, ("ok", "o0", "AAPL", "BUY", 500, 100.0), ("rej", "MAX_ORDER_NOTIONAL", "o1", "AAPL", "BUY", 501, 100.0)],
    ),
    "PRICE_COLLAR": (
        {},
        [M, ("ok", "o0", "AAPL", "BUY", 1, 105.0), ("rej", "PRICE_COLLAR", "o1", "AAPL", "BUY", 1, 105.5)],
    ),
    "MAX_POSITION": (
        {"limits": {"max_position_quantity": "150"}},
        [M, ("ok", "o1", "AAPL", "BUY", 100, 100.0), ("rej", "MAX_POSITION", "o2", "AAPL", "BUY", 51, 100.0)],
    ),
    "MAX_GROSS_EXPOSURE": (
        {"limits": {"max_gross_exposure": "20000"}},
        [
            M,
            ("mark", "MSFT", 100.0),
            ("ok", "o1", "AAPL", "BUY", 100, 100.0),
            ("ok", "o2", "MSFT", "SELL", 100, 100.0),
            ("rej", "MAX_GROSS_EXPOSURE", "o3", "AAPL", "BUY", 1, 100.0),
        ],
    ),
    "MAX_NET_EXPOSURE": (
        {"limits": {"max_net_exposure": "15000"}},
        [
            M,
            ("mark", "MSFT", 100.0),
            ("ok", "o1", "AAPL", "BUY", 100, 100.0),
            ("rej", "MAX_NET_EXPOSURE", "o2", "MSFT", "BUY", 60, 100.0),
        ],
    ),
    "SECTOR_CAP": (
        {"sector_caps": {"technology": "0.01"}},
        [
            M,
            ("mark", "MSFT", 100.0),
            ("ok", "o1", "AAPL", "BUY", 100, 100.0),
            ("rej", "SECTOR_CAP", "o2", "MSFT", "BUY", 1, 100.0),
        ],
    ),
    "ASSET_CLASS_CAP": (
        {"asset_class_caps": {"crypto": "0.01"}},
        [
            ("mark", "BTC", 100.0),
            ("ok", "o1", "BTC", "BUY", 100, 100.0, "crypto", "crypto"),
            ("rej", "ASSET_CLASS_CAP", "o2", "BTC", "BUY", 1, 100.0, "crypto", "crypto"),
        ],
    ),
    "REDUCE_ONLY": (
        {"limits": {"max_drawdown": "0.1", "max_order_quantity": "10000"}},
        [
            M,
            ("ok", "o1", "AAPL", "BUY", 10000, 100.0),
            ("fill", "o1", "AAPL", "BUY", 10000, 100.0),
            ("mark", "AAPL", 89.0),
            ("rej", "REDUCE_ONLY", "o2", "AAPL", "BUY", 1, 89.0),
            ("ok", "o3", "AAPL", "SELL", 10, 89.0),
        ],
    ),
    "TRADING_HALTED": ({}, [M, ("halt",), ("rej", "TRADING_HALTED", "o1", "AAPL", "BUY", 1, 100.0)]),
    "DAILY_LOSS": (
        {"limits": {"max_daily_loss": "1000"}},
        [
            M,
            ("ok", "o1", "AAPL", "BUY", 100, 100.0),
            ("fill", "o1", "AAPL", "BUY", 100, 100.0),
            ("mark", "AAPL", 80.0),
            ("rej", "DAILY_LOSS", "o2", "AAPL", "BUY", 1, 80.0),
        ],
    ),
    "RATE_LIMIT": (
        {"limits": {"max_orders_per_second": "0.001", "order_burst": "2"}},
        [
            M,
            ("ok", "o1", "AAPL", "BUY", 1, 100.0),
            ("ok", "o2", "AAPL", "BUY", 1, 100.0),
            ("rej", "RATE_LIMIT", "o3", "AAPL", "BUY", 1, 100.0),
        ],
    ),
    "MAX_OPEN_ORDERS": (
        {"limits": {"max_open_orders": "2"}},
        [
            M,
            ("ok", "o1", "AAPL", "BUY", 1, 100.0),
            ("ok", "o2", "AAPL", "BUY", 1, 100.0),
            ("rej", "MAX_OPEN_ORDERS", "o3", "AAPL", "BUY", 1, 100.0),
        ],
    ),
    "DUPLICATE_ORDER_ID": (
        {},
        [M, ("ok", "o1", "AAPL", "BUY", 1, 100.0), ("rej", "DUPLICATE_ORDER_ID", "o1", "AAPL", "BUY", 1, 100.0)],
    ),
    "RESTRICTED_SYMBOL": ({}, [("mark", "GME", 10.0), ("rej", "RESTRICTED_SYMBOL", "o1", "GME", "BUY", 1, 10.0)]),
    "STALE_MARK": ({}, [("rej", "STALE_MARK", "o1", "TSLA", "BUY", 1, 100.0)]),
}


@pytest.mark.parametrize("reason", sorted(CASES))
def test_verdict_round_trip_per_reason(make_sidecar, reason: str) -> None:
    overrides, steps = CASES[reason]
    sc = make_sidecar(overrides)
    run_steps(client(sc), steps)


def test_client_side_malformed_arguments_reject_without_raising(sidecar: Sidecar) -> None:
    c = client(sidecar)
    assert c.check_order("", "AAPL", "BUY", 1, 100.0, "equity", "technology").reason == "MALFORMED"
    assert c.check_order("x", "A A", "BUY", 1, 100.0, "equity", "technology").reason == "MALFORMED"
    assert c.check_order("x", "AAPL", "HOLD", 1, 100.0, "equity", "technology").reason == "MALFORMED"
    assert c.check_order("x", "AAPL", "BUY", "lots", 100.0, "equity", "technology").reason == "MALFORMED"
    # Values the wire can carry but the engine refuses.
    assert c.report_mark("AAPL", 100.0).ok
    assert (
        c.check_order("nan", "AAPL", "BUY", float("nan"), 100.0, "equity", "technology").reason == "INVALID_INSTRUMENT"
    )


def test_halt_resume(sidecar: Sidecar) -> None:
    c = client(sidecar)
    assert c.report_mark("AAPL", 100.0).ok
    assert c.check_order("o1", "AAPL", "BUY", 10, 100.0, "equity", "technology").approved
    assert c.report_fill("o1", "AAPL", "BUY", 10, 100.0).ok
    ack = c.halt()
    assert ack.ok and ack.mode == "HALTED"
    assert c.state().manual_halt
    assert c.check_order("o2", "AAPL", "BUY", 1, 100.0, "equity", "technology").reason == "TRADING_HALTED"
    assert c.check_order("o3", "AAPL", "SELL", 5, 100.0, "equity", "technology").approved  # reduces
    ack = c.resume()
    assert ack.ok and ack.mode == "ACTIVE"
    assert c.check_order("o4", "AAPL", "BUY", 1, 100.0, "equity", "technology").approved


def test_fills_update_ledger_and_state(sidecar: Sidecar) -> None:
    c = client(sidecar)
    assert c.report_mark("AAPL", 100.0).ok
    assert c.check_order("o1", "AAPL", "BUY", 100, 100.0, "equity", "technology").approved
    st = c.state("AAPL")
    assert (st.open_orders, st.open_buy, st.position) == (1, 100.0, 0.0)
    assert c.report_fill("o1", "AAPL", "BUY", 40, 99.0).ok
    st = c.state("AAPL")
    assert (st.open_orders, st.open_buy, st.position) == (1, 60.0, 40.0)
    assert st.cash == pytest.approx(1_000_000 - 40 * 99)
    assert c.report_fill("o1", "AAPL", "BUY", 60, 101.0).ok
    st = c.state("AAPL")
    assert (st.open_orders, st.open_buy, st.position) == (0, 0.0, 100.0)
    assert c.report_mark("AAPL", 110.0).ok
    st = c.state("AAPL")
    assert st.nav == pytest.approx(1_000_000 - 40 * 99 - 60 * 101 + 100 * 110)
    assert st.mark == 110.0 and st.symbol_found and 0 <= st.mark_age_ns < 10**9
    # Unknown fill: applied (it happened) and flagged.
    ack = c.report_fill("zzz", "AAPL", "SELL", 10, 110.0)
    assert not ack.ok and ack.reason == "UNKNOWN_ORDER"
    assert c.state("AAPL").position == 90.0
    # Order done releases the rest of an order.
    assert c.check_order("o2", "AAPL", "SELL", 50, 110.0, "equity", "technology").approved
    assert c.state("AAPL").open_sell == 50.0
    assert c.order_done("o2").ok
    assert c.state("AAPL").open_sell == 0.0
    assert c.order_done("o2").reason == "UNKNOWN_ORDER"


def _raw(sc: Sidecar) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(sc.socket_path)
    return s


def _read_frame(s: socket.socket) -> tuple[int, int, bytes]:
    buf = b""
    while len(buf) < 16:
        chunk = s.recv(4096)
        assert chunk, "connection closed before a reply"
        buf += chunk
    magic, version, rtype, flags, rid, length = HEADER.unpack_from(buf)
    assert (magic, version, flags) == (b"QRSK", 1, 0)
    while len(buf) < 16 + length:
        buf += s.recv(4096)
    return rtype, rid, buf[16 : 16 + length]


def _error_reason(payload: bytes) -> int:
    return struct.unpack_from("<H", payload)[0]


def test_malformed_frames_get_error_replies_and_process_survives(sidecar: Sidecar) -> None:
    # Bad payload on a good header: ERROR MALFORMED, the connection stays usable.
    with _raw(sidecar) as s:
        s.sendall(HEADER.pack(b"QRSK", 1, 0x01, 0, 77, 3) + b"abc")
        rtype, rid, payload = _read_frame(s)
        assert (rtype, rid, _error_reason(payload)) == (0xFF, 77, 18)
        s.sendall(HEADER.pack(b"QRSK", 1, 0x42, 0, 78, 0))  # unknown type
        rtype, rid, payload = _read_frame(s)
        assert (rtype, rid, _error_reason(payload)) == (0xFF, 78, 26)
        s.sendall(HEADER.pack(b"QRSK", 1, 0x07, 0, 79, 1) + b"\x00")  # GET_STATE still works
        rtype, rid, payload = _read_frame(s)
        assert (rtype, rid, len(payload)) == (0x87, 79, 128)
    # Framing errors: ERROR reply, then the sidecar closes that connection.
    for data, reason in [
        (b"GET / HTTP/1.0\r\n\r\n", 27),
        (HEADER.pack(b"QRSK", 1, 0x01, 0, 5, 1 << 30), 25),
        (HEADER.pack(b"QRSK", 9, 0x01, 0, 5, 0), 24),
    ]:
        with _raw(sidecar) as s:
            s.sendall(data)
            rtype, _rid, payload = _read_frame(s)
            assert rtype == 0xFF and _error_reason(payload) == reason
            assert s.recv(4096) == b""
    # Random garbage and truncated frames followed by a disconnect.
    rnd = os.urandom(5000)
    for i in range(50):
        with _raw(sidecar) as s:
            s.sendall(rnd[i * 97 : i * 97 + (i * 13) % 400 + 1])
    with _raw(sidecar) as s:
        s.sendall(HEADER.pack(b"QRSK", 1, 0x01, 0, 5, 100) + b"partial")
    assert sidecar.alive()
    c = client(sidecar)
    assert c.report_mark("AAPL", 100.0).ok
    assert c.check_order("after", "AAPL", "BUY", 1, 100.0, "equity", "technology").approved


def _metrics(sc: Sidecar, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{sc.metrics_port}{path}", timeout=5) as r:
        assert r.status == 200
        return r.read().decode()


def test_metrics_endpoint(sidecar: Sidecar) -> None:
    c = client(sidecar)
    assert c.report_mark("AAPL", 100.0).ok
    assert c.check_order("o1", "AAPL", "BUY", 1, 100.0, "equity", "technology").approved
    assert c.check_order("o1", "AAPL", "BUY", 1, 100.0, "equity", "technology").reason == "DUPLICATE_ORDER_ID"
    assert c.check_order("o2", "TSLA", "BUY", 1, 100.0, "equity", "technology").reason == "STALE_MARK"
    text = _metrics(sidecar)
    assert 'quorum_risk_verdicts_total{verdict="approve",reason="OK"} 1' in text
    assert 'quorum_risk_verdicts_total{verdict="reject",reason="DUPLICATE_ORDER_ID"} 1' in text
    assert 'quorum_risk_verdicts_total{verdict="reject",reason="STALE_MARK"} 1' in text
    assert "quorum_risk_check_latency_seconds_count 3" in text
    assert 'quorum_risk_check_latency_seconds_bucket{le="+Inf"} 3' in text
    assert "quorum_risk_mode 0" in text and "quorum_risk_open_orders 1" in text
    c.halt()
    assert "quorum_risk_mode 2" in _metrics(sidecar)
    with pytest.raises(urllib.error.HTTPError) as err:
        _metrics(sidecar, "/other")
    assert err.value.code == 404


def test_reload_only_tightens(sidecar: Sidecar) -> None:
    c = client(sidecar)
    assert c.report_mark("AAPL", 100.0).ok
    # Tighten through the protocol.
    sidecar.config_path.write_text(render_config({"limits": {"max_order_quantity": "10"}}))
    r = c.reload()
    assert r.ok and r.reason == "OK", r
    assert c.check_order("o1", "AAPL", "BUY", 11, 100.0, "equity", "technology").reason == "MAX_ORDER_QUANTITY"
    # Loosen through the protocol: refused, named, old limit stays.
    sidecar.config_path.write_text(render_config({"limits": {"max_order_quantity": "20"}}))
    r = c.reload()
    assert not r.ok and r.reason == "RELOAD_REFUSED" and "max_order_quantity" in r.message, r
    assert c.check_order("o2", "AAPL", "BUY", 11, 100.0, "equity", "technology").reason == "MAX_ORDER_QUANTITY"
    # A broken file: CONFIG_ERROR naming the key, old limits stay.
    sidecar.config_path.write_text(render_config({"limits": {"max_order_quantity": "ten"}}))
    r = c.reload()
    assert r.reason == "CONFIG_ERROR" and "max_order_quantity" in r.message, r
    # SIGHUP path: loosening is refused too (checked via behaviour and the metric).
    sidecar.config_path.write_text(render_config({"limits": {"max_order_quantity": "1000"}}))
    os.kill(sidecar.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while 'quorum_risk_reloads_total{result="RELOAD_REFUSED"} 2' not in _metrics(sidecar):
        assert time.monotonic() < deadline, _metrics(sidecar)
        time.sleep(0.02)
    assert c.check_order("o3", "AAPL", "BUY", 11, 100.0, "equity", "technology").reason == "MAX_ORDER_QUANTITY"
    sidecar.config_path.write_text(render_config({"limits": {"max_order_quantity": "5"}}))
    os.kill(sidecar.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while c.check_order(f"o4-{time.monotonic_ns()}", "AAPL", "BUY", 6, 100.0, "equity", "technology").approved:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert sidecar.alive()


def test_bad_config_fails_at_startup_naming_the_key(tmp_path) -> None:
    sc = Sidecar(tmp_path, render_config({"limits": {"price_collar": "wide"}}))
    r = subprocess.run(
        [str(sc.binary), "--config", str(sc.config_path), "--socket", sc.socket_path], capture_output=True, text=True
    )
    assert r.returncode != 0
    assert "[limits] price_collar" in r.stderr
    sc2 = Sidecar(tmp_path, render_config({"limits": {"stale_mark_seconds": None}}))
    r = subprocess.run(
        [str(sc2.binary), "--config", str(sc2.config_path), "--socket", sc2.socket_path], capture_output=True, text=True
    )
    assert r.returncode != 0 and "missing required key [limits] stale_mark_seconds" in r.stderr


def test_fail_closed_when_sidecar_is_down(tmp_path) -> None:
    c = SidecarClient(str(tmp_path / "nothing.sock"), deadline_ms=5)
    v = c.check_order("o1", "AAPL", "BUY", 1, 100.0, "equity", "technology")
    assert not v.approved and v.reason == SIDECAR_UNAVAILABLE
    assert not c.halt().ok
    with pytest.raises(SidecarError):
        c.state()


def _fake_server(path: str, behaviour: str) -> threading.Thread:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)

    def serve() -> None:
        conns = []
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conns.append(conn)
            data = conn.recv(4096)
            if not data:
                continue
            rid = struct.unpack_from("<I", data, 8)[0]
            if behaviour == "garbage":
                conn.sendall(b"\x00" * 40)
            elif behaviour == "wrong_id":
                conn.sendall(HEADER.pack(b"QRSK", 1, 0x81, 0, rid + 1, 4) + b"\x00\x00\x00\x00")
            elif behaviour == "bad_verdict":
                conn.sendall(HEADER.pack(b"QRSK", 1, 0x81, 0, rid, 4) + b"\x00\x00\x05\x00")  # approve + reason
            elif behaviour == "close":
                conn.close()
            # "silent": never answers

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    t.srv = srv  # type: ignore[attr-defined]
    return t


@pytest.mark.parametrize(
    "behaviour,reason",
    [
        ("garbage", SIDECAR_PROTOCOL_ERROR),
        ("wrong_id", SIDECAR_PROTOCOL_ERROR),
        ("bad_verdict", SIDECAR_PROTOCOL_ERROR),
        ("close", SIDECAR_UNAVAILABLE),
        ("silent", SIDECAR_UNAVAILABLE),
    ],
)
def test_fail_closed_on_bad_or_missing_replies(tmp_path, behaviour: str, reason: str) -> None:
    path = str(tmp_path / "fake.sock")
    t = _fake_server(path, behaviour)
    try:
        c = SidecarClient(path, deadline_ms=5)
        t0 = time.monotonic()
        v = c.check_order("o1", "AAPL", "BUY", 1, 100.0, "equity", "technology")
        elapsed = time.monotonic() - t0
        assert not v.approved and v.reason == reason, v
        assert elapsed < 0.5  # the deadline (5 ms) bounds the wait; generous for a loaded CI box
    finally:
        t.srv.close()  # type: ignore[attr-defined]


def test_kill_mid_stream_no_order_reaches_exchange(make_sidecar) -> None:
    """SIGKILL the sidecar while orders flow: nothing started after the kill is sent; recovery."""
    sc = make_sidecar({"limits": {"max_order_quantity": "1000000"}})
    c = SidecarClient(sc.socket_path, deadline_ms=5)
    assert c.report_mark("AAPL", 100.0).ok
    exchange: list[int] = []  # the mock exchange: what was actually sent
    killed = threading.Event()

    def send_to_exchange(i: int) -> None:
        exchange.append(i)

    def killer() -> None:
        time.sleep(0.2)
        sc.kill()
        killed.set()

    threading.Thread(target=killer, daemon=True).start()
    after_kill: list[tuple[int, str]] = []
    approved_before = 0
    i = 0
    deadline = time.monotonic() + 20
    while len(after_kill) < 300:
        assert time.monotonic() < deadline, "the kill never happened"
        started_after_kill = killed.is_set()
        v = c.check_order(f"k-{i}", "AAPL", "BUY", 1, 100.0, "equity", "technology")
        if v.approved:  # the gate: only approved orders reach the exchange
            send_to_exchange(i)
        if started_after_kill:
            after_kill.append((i, v.reason))
        elif v.approved:
            approved_before += 1
        i += 1
    first_after = after_kill[0][0]
    assert approved_before > 10
    assert not [x for x in exchange if x >= first_after], "an order reached the exchange after the kill"
    assert {r for _, r in after_kill} == {SIDECAR_UNAVAILABLE}
    # Restart on the same socket: the same client recovers on its next call.
    sc.start()
    assert c.report_mark("AAPL", 100.0).ok
    v = c.check_order("recovered", "AAPL", "BUY", 1, 100.0, "equity", "technology")
    assert v.approved, v


def test_restore_mark_keeps_the_age_the_client_gives(sidecar: Sidecar) -> None:
    """A restarted sidecar gets its client's last marks back with their age: valued at once, tradeable
    only while younger than stale_mark_seconds, and never in place of a newer mark."""
    c = client(sidecar)
    stale_s = float(BASE["limits"]["stale_mark_seconds"])
    assert c.restore_mark("AAPL", 100.0, 1.0).ok
    st = c.state("AAPL")
    assert st.mark == 100.0 and 1e9 <= st.mark_age_ns < 2e9
    assert c.check_order("young", "AAPL", "BUY", 1, 100.0, "equity", "technology").approved
    assert c.restore_mark("MSFT", 50.0, stale_s + 1.0).ok
    assert c.state("MSFT").mark == 50.0
    assert c.check_order("old", "MSFT", "BUY", 1, 50.0, "equity", "technology").reason == "STALE_MARK"
    assert c.report_mark("MSFT", 51.0).ok
    assert c.restore_mark("MSFT", 40.0, 0.5).ok  # older than the mark just reported: ignored
    assert c.state("MSFT").mark == 51.0
    assert c.restore_mark("MSFT", 52.0, -1.0).reason == "MALFORMED"


def test_the_first_call_after_a_restart_reaches_the_new_sidecar(sidecar: Sidecar) -> None:
    """A sidecar that stopped between two calls closed its end: the client notices before sending and
    connects anew, so the first call after a restart is answered instead of failing on the dead connection."""
    c = client(sidecar)
    assert c.report_mark("AAPL", 100.0).ok and c.connected
    sidecar.kill()
    sidecar.start()
    assert not c.connected  # the restarted sidecar's ledger is empty: a caller must restore it
    assert c.report_mark("AAPL", 100.0).ok
    c2 = client(sidecar)
    assert c2.report_mark("AAPL", 101.0).ok
    sidecar.kill()
    sidecar.start()
    assert c2.check_order("o1", "AAPL", "BUY", 1, 100.0, "equity", "technology").reason == "STALE_MARK"  # answered


def _saved_halted(path) -> bool:
    """Whether the state file at ``path`` has the manual halt set (its ledger line's 6th word)."""
    ledger = [ln.split() for ln in (path.read_text().splitlines() if path.exists() else []) if ln.startswith("ledger ")]
    return bool(ledger) and ledger[0][5] == "1"


def test_a_sidecar_with_a_state_file_resumes_ledger_halt_and_in_flight_orders_after_sigkill(make_sidecar,
                                                                                             tmp_path) -> None:
    from quorum_sidecar.testing import SidecarFleet, SidecarHarnessError

    with SidecarFleet(tmp_path / "fleet") as fleet:
        sc = fleet.create()
        sc.state_file = sc.workdir / "risk.state"
        sc.start()
        c = client(sc)
        assert c.report_mark("AAPL", 100.0).ok
        assert c.check_order("o1", "AAPL", "BUY", 10, 100.0, "equity", "technology").approved
        assert c.report_fill("o1", "AAPL", "BUY", 10, 100.0).ok
        assert c.check_order("o2", "AAPL", "BUY", 5, 100.0, "equity", "technology").approved  # in flight
        assert c.halt().ok
        deadline = time.monotonic() + 5
        while not _saved_halted(sc.state_file):
            assert time.monotonic() < deadline, "the state was not saved"
            time.sleep(0.01)
        sc.kill()
        sc.start()
        st = c.state("AAPL")
        assert (st.position, st.open_buy, st.open_orders) == (10.0, 5.0, 1)
        assert st.manual_halt and st.cash == pytest.approx(1_000_000 - 10 * 100.0) and st.mark == 100.0
        assert c.check_order("o2", "AAPL", "BUY", 1, 100.0, "equity", "technology").reason == "DUPLICATE_ORDER_ID"
        assert c.check_order("o3", "AAPL", "BUY", 1, 100.0, "equity", "technology").reason == "TRADING_HALTED"
        assert c.resume().ok
        assert c.check_order("o3", "AAPL", "BUY", 1, 100.0, "equity", "technology").approved

        sc.state_interval_ms = 600_000  # saved only when it stops
        sc.stop()
        sc.start()
        assert c.report_fill("o2", "AAPL", "BUY", 5, 101.0).ok
        sc.stop()  # a graceful stop saves the last change
        sc.start()
        assert c.state("AAPL").position == 15.0

        sc.kill()
        sc.state_file.write_text(sc.state_file.read_text().replace("end\n", ""))
        with pytest.raises(SidecarHarnessError, match="no 'end' line"):
            sc.start()  # fail closed: never start on a state it cannot read


def test_a_state_file_that_cannot_be_written_is_counted_and_the_sidecar_goes_on(tmp_path) -> None:
    from quorum_sidecar.testing import SidecarFleet

    with SidecarFleet(tmp_path / "fleet") as fleet:
        sc = fleet.create()
        sc.state_file = sc.workdir / "no-such-dir" / "risk.state"  # every save fails
        sc.start()
        c = client(sc)
        assert c.report_mark("AAPL", 100.0).ok
        deadline = time.monotonic() + 5
        while 'quorum_risk_state_saves_total{result="failed"} 0' in _metrics(sc):
            assert time.monotonic() < deadline, _metrics(sc)
            time.sleep(0.02)
        assert 'quorum_risk_state_saves_total{result="ok"} 0' in _metrics(sc)
        assert c.check_order("o1", "AAPL", "BUY", 1, 100.0, "equity", "technology").approved  # still serving
        assert "state not saved" in sc.log()
