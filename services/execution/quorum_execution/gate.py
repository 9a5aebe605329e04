"""The C++ risk sidecar as the last gate before a venue (fail closed).

The client package ``quorum_sidecar`` is imported only when a socket is configured. Its
``check_order`` never raises: a sidecar that is down, slow or unsure answers a reject verdict.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

_NOT_TOKEN = re.compile(r"[^\x21-\x7e]")
TOKEN_MAX = 31


def sidecar_token(text: str | None) -> str:
    """``text`` in the sidecar's string form: printable ASCII without spaces (``_``), at most 31 characters.

    Sectors such as ``Information Technology`` become ``Information_Technology``; a missing one ``NONE``.
    """
    return _NOT_TOKEN.sub("_", text or "NONE")[:TOKEN_MAX]


class SidecarLike(Protocol):
    """The part of ``quorum_sidecar.SidecarClient`` the gate uses."""

    def check_order(self, client_order_id: str, symbol: str, side: str, quantity: float, price: float,
                    asset_class: str, sector: str) -> Any:
        """A verdict with ``approved``, ``reason`` and ``detail``."""

    def report_fill(self, client_order_id: str, symbol: str, side: str, quantity: float, price: float) -> Any:
        """Acknowledge a fill."""

    def report_mark(self, symbol: str, price: float) -> Any:
        """Acknowledge a mark."""

    def order_done(self, client_order_id: str) -> Any:
        """Acknowledge that an order will not fill further."""


_UNCERTAIN = ("SIDECAR_UNAVAILABLE", "SIDECAR_PROTOCOL_ERROR")
"""Reject reasons where the sidecar may still have received (and later approved) the check."""


class SidecarGate:
    """Checks every order with the sidecar and keeps its ledger informed of fills, marks and ended orders.

    A check that timed out may still be processed by a slow sidecar, which would then count the order
    as in flight forever. The gate remembers such orders and, as soon as the sidecar answers again,
    reports each as done (an order the sidecar never saw just gets an ``UNKNOWN_ORDER`` reply).
    """

    def __init__(self, client: SidecarLike) -> None:
        self.client = client
        self.abandoned: list[str] = []

    def check(self, order: dict[str, Any]) -> str | None:
        """``None`` when the sidecar approves the ``SubmitOrder`` record, else the reject reason."""
        price = order["limit_price"] if order["order_type"] == "LIMIT" else order["reference_price"]
        try:
            verdict = self.client.check_order(order["client_order_id"], order["symbol"], order["side"],
                                              order["quantity"], price, sidecar_token(order["asset_class"]),
                                              sidecar_token(order["sector"]))
        except Exception as exc:  # the real client never raises; anything else fails closed too
            self.abandoned.append(order["client_order_id"])
            return f"sidecar SIDECAR_UNAVAILABLE: {type(exc).__name__}: {exc}"
        reason = getattr(verdict, "reason", "UNKNOWN")
        if reason in _UNCERTAIN:
            self.abandoned.append(order["client_order_id"])
        else:
            self._settle()
        if getattr(verdict, "approved", False) is True:
            return None
        detail = getattr(verdict, "detail", "")
        return f"sidecar {reason}" + (f": {detail}" if detail else "")

    def fill(self, client_order_id: str, symbol: str, side: str, quantity: float, price: float) -> None:
        """Report a fill to the sidecar's ledger."""
        self._answered(self.client.report_fill(client_order_id, symbol, side, quantity, price))

    def mark(self, symbol: str, price: float) -> None:
        """Report the last price of ``symbol``."""
        self._answered(self.client.report_mark(symbol, price))

    def done(self, client_order_id: str) -> None:
        """Report that an order ended without filling completely."""
        self._answered(self.client.order_done(client_order_id))

    def _answered(self, ack: Any) -> None:
        if getattr(ack, "ok", False) is True or getattr(ack, "reason", None) not in (*_UNCERTAIN, None):
            self._settle()

    def _settle(self) -> None:
        """Report every abandoned order as done, stopping at the first call that gets no answer."""
        while self.abandoned:
            ack = self.client.order_done(self.abandoned[0])
            if getattr(ack, "reason", None) in _UNCERTAIN:
                return
            self.abandoned.pop(0)


def open_sidecar_gate(socket_path: str, deadline_ms: float) -> SidecarGate:
    """A gate on the sidecar at ``socket_path``; a clear error when the client package is missing."""
    try:
        from quorum_sidecar import SidecarClient
    except ImportError as exc:
        raise RuntimeError(
            "QUORUM_SIDECAR_SOCKET is set but the sidecar client package quorum_sidecar is not installed "
            "(pip install -e services/risk_sidecar/client)"
        ) from exc
    return SidecarGate(SidecarClient(socket_path, deadline_ms=deadline_ms))
