"""Client for the risk sidecar protocol v1 (see ``schemas/risk_sidecar_protocol.md``).

Standard library only. One request is in flight at a time per client; the client is not
thread-safe (use one per thread). Every call has a total deadline (``deadline_ms``); on any failure
the connection is dropped and the next call reconnects.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from dataclasses import dataclass

MAGIC = b"QRSK"
VERSION = 1
HEADER = struct.Struct("<4sBBHII")  # magic, version, type, flags, request_id, length
HEADER_SIZE = HEADER.size  # 16
MAX_PAYLOAD = 1024

T_CHECK_ORDER = 0x01
T_REPORT_FILL = 0x02
T_REPORT_MARK = 0x03
T_ORDER_DONE = 0x04
T_HALT = 0x05
T_RESUME = 0x06
T_GET_STATE = 0x07
T_RELOAD = 0x08
T_RESTORE_MARK = 0x09
T_ERROR = 0xFF
REPLY_BIT = 0x80

#: Wire reason codes (u16) -> names. Keep in sync with the protocol document.
REASONS: dict[int, str] = {
    0: "OK",
    1: "INVALID_INSTRUMENT",
    2: "MAX_ORDER_QUANTITY",
    3: "MAX_ORDER_NOTIONAL",
    4: "PRICE_COLLAR",
    5: "MAX_POSITION",
    6: "MAX_GROSS_EXPOSURE",
    7: "MAX_NET_EXPOSURE",
    8: "SECTOR_CAP",
    9: "ASSET_CLASS_CAP",
    10: "REDUCE_ONLY",
    11: "TRADING_HALTED",
    12: "DAILY_LOSS",
    13: "RATE_LIMIT",
    14: "MAX_OPEN_ORDERS",
    15: "DUPLICATE_ORDER_ID",
    16: "RESTRICTED_SYMBOL",
    17: "STALE_MARK",
    18: "MALFORMED",
    19: "CAPACITY",
    20: "UNKNOWN_ORDER",
    21: "FILL_MISMATCH",
    22: "RELOAD_REFUSED",
    23: "CONFIG_ERROR",
    24: "UNSUPPORTED_VERSION",
    25: "FRAME_TOO_LARGE",
    26: "UNKNOWN_MESSAGE_TYPE",
    27: "BAD_MAGIC",
}
#: Client-side reasons (never on the wire).
SIDECAR_UNAVAILABLE = "SIDECAR_UNAVAILABLE"
SIDECAR_PROTOCOL_ERROR = "SIDECAR_PROTOCOL_ERROR"
MODES = {0: "ACTIVE", 1: "REDUCING", 2: "HALTED"}

_CHECK_FIXED = struct.Struct("<ddB")  # quantity, price, side
_MARK_FIXED = struct.Struct("<d")
_RESTORE_MARK_FIXED = struct.Struct("<dq")  # price, age_ns
_VERDICT = struct.Struct("<BBH")  # verdict (0 approve, 1 reject), pad, reason
_ACK = struct.Struct("<HBB")  # reason, mode, pad
_TEXT = struct.Struct("<HH")  # reason, message length
_STATE = struct.Struct("<BBHIII11dq16x")
_SIDES = {"BUY": 1, "SELL": 2, "B": 1, "S": 2, 1: 1, 2: 2}


@dataclass(frozen=True)
class Verdict:
    """The sidecar's answer to a CHECK_ORDER. Send the order only if ``approved`` is true."""

    approved: bool
    reason: str  # "OK", a wire reason name, SIDECAR_UNAVAILABLE or SIDECAR_PROTOCOL_ERROR
    detail: str = ""

    def __bool__(self) -> bool:  # pragma: no cover - convenience
        return self.approved


@dataclass(frozen=True)
class Ack:
    """Acknowledgement of a fill, mark, order-done, halt or resume. ``ok`` means reason == "OK"."""

    ok: bool
    reason: str
    mode: str = "UNKNOWN"  # trading mode after the request: ACTIVE, REDUCING or HALTED
    detail: str = ""


@dataclass(frozen=True)
class ReloadResult:
    """Outcome of a RELOAD: OK, RELOAD_REFUSED (would loosen a limit) or CONFIG_ERROR."""

    ok: bool
    reason: str
    message: str


@dataclass(frozen=True)
class State:
    """Snapshot of the sidecar's ledger (and of one symbol when asked for)."""

    mode: str
    manual_halt: bool
    daily_loss_halt: bool
    drawdown_reduce_only: bool
    open_orders: int
    symbols: int
    cash: float
    nav: float
    peak_nav: float
    day_start_nav: float
    gross_exposure: float
    net_long: float
    net_short: float
    symbol_found: bool
    position: float
    open_buy: float
    open_sell: float
    mark: float
    mark_age_ns: int


class SidecarError(Exception):
    """Raised only by :meth:`SidecarClient.state`, which has no fail-closed default."""


class _Failure(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _s(value: str, lo: int, hi: int, what: str) -> bytes:
    b = value.encode("ascii")
    if not lo <= len(b) <= hi or any(c < 0x21 or c > 0x7E for c in b):
        raise ValueError(f"{what} must be {lo}..{hi} printable ASCII characters without spaces")
    return bytes((len(b),)) + b


class SidecarClient:
    """Synchronous, fail-closed client for one sidecar socket.

    Args:
        socket_path: path of the sidecar's Unix domain socket.
        deadline_ms: total time allowed for one request/reply (connect included), in milliseconds.
        spin_us: how long to busy-poll for the reply before sleeping in ``poll()``. Waking a
            sleeping thread costs tens of microseconds on virtualised hosts, more than the whole
            round trip; spinning keeps one core busy for (at most) this long per call.
    """

    def __init__(self, socket_path: str, deadline_ms: float = 5.0, spin_us: float = 100.0) -> None:
        self.socket_path = socket_path
        self.deadline_s = deadline_ms / 1000.0
        self.spin_s = min(spin_us / 1e6, self.deadline_s)
        self._sock: socket.socket | None = None
        self._poller: select.poll | None = None
        self._next_id = 1
        self._rbuf = bytearray(HEADER_SIZE + MAX_PAYLOAD)
        self._rview = memoryview(self._rbuf)

    # ---- public API -------------------------------------------------------------------------

    def check_order(
        self,
        client_order_id: str,
        symbol: str,
        side: str | int,
        quantity: float,
        price: float,
        asset_class: str,
        sector: str,
    ) -> Verdict:
        """Asks whether an order may be sent. Never raises; any failure is a REJECT verdict."""
        try:
            payload = b"".join(
                (
                    _CHECK_FIXED.pack(
                        float(quantity), float(price), _SIDES[side.upper() if isinstance(side, str) else side]
                    ),
                    _s(client_order_id, 1, 64, "client_order_id"),
                    _s(symbol, 1, 31, "symbol"),
                    _s(asset_class, 1, 31, "asset_class"),
                    _s(sector, 1, 31, "sector"),
                )
            )
        except Exception as exc:  # bad arguments: the sidecar would answer MALFORMED
            return Verdict(False, "MALFORMED", f"not encodable: {exc}")
        try:
            payload_view = self._call(T_CHECK_ORDER, payload, 4)
            verdict, _pad, code = _VERDICT.unpack_from(payload_view)
        except _Failure as f:
            return Verdict(False, f.reason, f.detail)
        except Exception as exc:  # defensive: check_order must never raise
            self._drop()
            return Verdict(False, SIDECAR_PROTOCOL_ERROR, repr(exc))
        reason = REASONS.get(code)
        if verdict == 0 and code == 0:
            return Verdict(True, "OK")
        if verdict == 1 and reason is not None and code != 0:
            return Verdict(False, reason)
        self._drop()
        return Verdict(False, SIDECAR_PROTOCOL_ERROR, f"unexpected verdict {verdict}/{code}")

    def report_fill(self, client_order_id: str, symbol: str, side: str | int, quantity: float, price: float) -> Ack:
        """Reports a (partial) fill so the sidecar's ledger follows the real position."""
        try:
            payload = (
                _CHECK_FIXED.pack(
                    float(quantity), float(price), _SIDES[side.upper() if isinstance(side, str) else side]
                )
                + _s(client_order_id, 1, 64, "client_order_id")
                + _s(symbol, 1, 31, "symbol")
            )
        except Exception as exc:
            return Ack(False, "MALFORMED", detail=str(exc))
        return self._ack(T_REPORT_FILL, payload)

    def report_mark(self, symbol: str, price: float) -> Ack:
        """Reports the last price of a symbol (marks drive NAV, collars and staleness)."""
        try:
            payload = _MARK_FIXED.pack(float(price)) + _s(symbol, 1, 31, "symbol")
        except Exception as exc:
            return Ack(False, "MALFORMED", detail=str(exc))
        return self._ack(T_REPORT_MARK, payload)

    def restore_mark(self, symbol: str, price: float, age_s: float) -> Ack:
        """Gives a restarted sidecar a mark received ``age_s`` seconds ago: it counts as that old for the
        staleness limit and never replaces a newer mark the sidecar holds."""
        try:
            payload = _RESTORE_MARK_FIXED.pack(float(price), round(age_s * 1e9)) + _s(symbol, 1, 31, "symbol")
        except Exception as exc:
            return Ack(False, "MALFORMED", detail=str(exc))
        return self._ack(T_RESTORE_MARK, payload)

    def order_done(self, client_order_id: str) -> Ack:
        """Reports that an order will not fill further (cancelled, expired, rejected by the venue)."""
        try:
            payload = _s(client_order_id, 1, 64, "client_order_id")
        except Exception as exc:
            return Ack(False, "MALFORMED", detail=str(exc))
        return self._ack(T_ORDER_DONE, payload)

    def halt(self) -> Ack:
        """Kill switch: the sidecar rejects every risk-increasing order until :meth:`resume`."""
        return self._ack(T_HALT, b"")

    def resume(self) -> Ack:
        """Clears a manual halt and the drawdown reduce-only lock (reason DAILY_LOSS if a daily-loss halt stays)."""
        return self._ack(T_RESUME, b"")

    def reload(self) -> ReloadResult:
        """Asks the sidecar to re-read its configuration file; only tightening reloads are applied."""
        try:
            view = self._call(T_RELOAD, b"", None)
            code, n = _TEXT.unpack_from(view)
            if len(view) != 4 + n:
                raise _Failure(SIDECAR_PROTOCOL_ERROR, "bad RELOAD reply length")
            reason = REASONS.get(code, SIDECAR_PROTOCOL_ERROR)
            return ReloadResult(code == 0, reason, bytes(view[4 : 4 + n]).decode("utf-8", "replace"))
        except _Failure as f:
            return ReloadResult(False, f.reason, f.detail)

    def state(self, symbol: str = "") -> State:
        """Reads the sidecar's state. Raises :class:`SidecarError` if there is no valid answer."""
        try:
            payload = _s(symbol, 1, 31, "symbol") if symbol else b"\x00"
            view = self._call(T_GET_STATE, payload, _STATE.size)
        except _Failure as f:
            raise SidecarError(f"{f.reason}: {f.detail}") from None
        except ValueError as exc:
            raise SidecarError(str(exc)) from None
        v = _STATE.unpack_from(view)
        flags = v[1]
        return State(
            mode=MODES.get(v[0], "UNKNOWN"),
            manual_halt=bool(flags & 1),
            daily_loss_halt=bool(flags & 2),
            drawdown_reduce_only=bool(flags & 4),
            open_orders=v[3],
            symbols=v[4],
            cash=v[6],
            nav=v[7],
            peak_nav=v[8],
            day_start_nav=v[9],
            gross_exposure=v[10],
            net_long=v[11],
            net_short=v[12],
            symbol_found=bool(flags & 8),
            position=v[13],
            open_buy=v[14],
            open_sell=v[15],
            mark=v[16],
            mark_age_ns=v[17],
        )

    @property
    def connected(self) -> bool:
        """Whether a connection is open. After a call that failed (the sidecar stopped, hung or restarted), or
        once the sidecar has closed its end, it is closed, and the next call opens a new one, perhaps to a
        restarted sidecar with an empty ledger."""
        self._drop_if_closed()
        return self._sock is not None

    def _drop_if_closed(self) -> None:
        """Close a connection the sidecar has closed (it stopped or restarted since the last reply): between
        calls nothing may be readable on a live one, so any event there means its end is gone."""
        if self._poller is not None and self._poller.poll(0):
            self._drop()

    def close(self) -> None:
        """Closes the connection (the next call reconnects)."""
        self._drop()

    def __enter__(self) -> SidecarClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals --------------------------------------------------------------------------

    def _ack(self, msg_type: int, payload: bytes) -> Ack:
        try:
            code, mode, _pad = _ACK.unpack_from(self._call(msg_type, payload, 4))
        except _Failure as f:
            return Ack(False, f.reason, detail=f.detail)
        reason = REASONS.get(code)
        if reason is None:
            self._drop()
            return Ack(False, SIDECAR_PROTOCOL_ERROR, detail=f"unknown reason {code}")
        return Ack(code == 0, reason, MODES.get(mode, "UNKNOWN"))

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
            self._poller = None

    def _connect(self, deadline: float) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(max(deadline - time.monotonic(), 1e-6))
            sock.connect(self.socket_path)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._poller = select.poll()
        self._poller.register(sock.fileno(), select.POLLIN)
        return sock

    def _wait_readable(self, deadline: float) -> None:
        remaining_ms = (deadline - time.monotonic()) * 1000.0
        if remaining_ms <= 0 or not self._poller.poll(max(remaining_ms, 0.001)):
            raise TimeoutError("deadline exceeded")

    def _call(self, msg_type: int, payload: bytes, expect_len: int | None) -> memoryview:
        """Sends one request and returns the reply payload; raises _Failure (connection dropped)."""
        deadline = time.monotonic() + self.deadline_s
        req_id = self._next_id
        self._next_id = (req_id + 1) & 0xFFFFFFFF or 1
        self._drop_if_closed()  # a restarted sidecar: connect anew rather than fail on the dead connection
        try:
            sock = self._sock or self._connect(deadline)
        except OSError as exc:
            raise _Failure(SIDECAR_UNAVAILABLE, f"connect: {exc}") from None
        try:
            frame = HEADER.pack(MAGIC, VERSION, msg_type, 0, req_id, len(payload)) + payload
            # Frames are <= 1040 bytes: an idle Unix socket takes them whole; anything else is a
            # sidecar that does not read, i.e. unavailable.
            if sock.send(frame) != len(frame):
                raise TimeoutError("short send")
            got = 0
            need = HEADER_SIZE
            buf = self._rview
            spin_until = time.monotonic() + self.spin_s
            while got < need:
                try:
                    n = sock.recv_into(buf[got:], len(self._rbuf) - got)
                except BlockingIOError:
                    now = time.monotonic()
                    if now > deadline:
                        raise TimeoutError("deadline exceeded") from None
                    if now >= spin_until:
                        self._wait_readable(deadline)
                    continue
                if n == 0:
                    raise ConnectionResetError("sidecar closed the connection")
                got += n
                if need == HEADER_SIZE and got >= HEADER_SIZE:
                    magic, version, rtype, flags, rid, length = HEADER.unpack_from(buf)
                    if magic != MAGIC or version != VERSION or flags != 0 or length > MAX_PAYLOAD:
                        raise _Failure(SIDECAR_PROTOCOL_ERROR, "bad reply header")
                    need = HEADER_SIZE + length
            if time.monotonic() > deadline:
                raise TimeoutError("deadline exceeded")
        except _Failure:
            self._drop()
            raise
        except (TimeoutError, BlockingIOError) as exc:
            self._drop()
            raise _Failure(SIDECAR_UNAVAILABLE, f"no reply within {self.deadline_s * 1000:.3g} ms: {exc}") from None
        except OSError as exc:
            self._drop()
            raise _Failure(SIDECAR_UNAVAILABLE, str(exc)) from None
        if got != need or rid != req_id:
            self._drop()
            raise _Failure(SIDECAR_PROTOCOL_ERROR, "unexpected extra bytes or request id mismatch")
        body = buf[HEADER_SIZE:need]
        if rtype == T_ERROR:
            self._drop()
            code = _TEXT.unpack_from(body)[0] if len(body) >= 4 else -1
            raise _Failure(SIDECAR_PROTOCOL_ERROR, f"sidecar error {REASONS.get(code, code)}")
        if rtype != (msg_type | REPLY_BIT) or (expect_len is not None and length != expect_len):
            self._drop()
            raise _Failure(SIDECAR_PROTOCOL_ERROR, f"unexpected reply type 0x{rtype:02x} / length {length}")
        return body
