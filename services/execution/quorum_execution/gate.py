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


class SidecarGate:
    """Checks every order with the sidecar and keeps its ledger informed of fills, marks and ended orders."""

    def __init__(self, client: SidecarLike) -> None:
        self.client = client

    def check(self, order: dict[str, Any]) -> str | None:
        """``None`` when the sidecar approves the ``SubmitOrder`` record, else the reject reason."""
        price = order["limit_price"] if order["order_type"] == "LIMIT" else order["reference_price"]
        try:
            verdict = self.client.check_order(order["client_order_id"], order["symbol"], order["side"],
                                              order["quantity"], price, sidecar_token(order["asset_class"]),
                                              sidecar_token(order["sector"]))
        except Exception as exc:  # the real client never raises; anything else fails closed too
            return f"sidecar SIDECAR_UNAVAILABLE: {type(exc).__name__}: {exc}"
        if getattr(verdict, "approved", False) is True:
            return None
        detail = getattr(verdict, "detail", "")
        return f"sidecar {getattr(verdict, 'reason', 'UNKNOWN')}" + (f": {detail}" if detail else "")

    def fill(self, client_order_id: str, symbol: str, side: str, quantity: float, price: float) -> None:
        """Report a fill to the sidecar's ledger."""
        self.client.report_fill(client_order_id, symbol, side, quantity, price)

    def mark(self, symbol: str, price: float) -> None:
        """Report the last price of ``symbol``."""
        self.client.report_mark(symbol, price)

    def done(self, client_order_id: str) -> None:
        """Report that an order ended without filling completely."""
        self.client.order_done(client_order_id)


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
