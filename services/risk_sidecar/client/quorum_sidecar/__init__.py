"""Fail-closed client for the Quorum C++ risk sidecar.

Every order must be approved by :meth:`SidecarClient.check_order` before it is sent anywhere. The
client never raises from ``check_order``: a sidecar that is down, slow (past the deadline), closes
the socket or answers anything unexpected yields a REJECT verdict with reason
``SIDECAR_UNAVAILABLE`` or ``SIDECAR_PROTOCOL_ERROR``.
"""

from .client import (
    REASONS,
    SIDECAR_PROTOCOL_ERROR,
    SIDECAR_UNAVAILABLE,
    Ack,
    ReloadResult,
    SidecarClient,
    SidecarError,
    State,
    Verdict,
)

__all__ = [
    "REASONS",
    "SIDECAR_PROTOCOL_ERROR",
    "SIDECAR_UNAVAILABLE",
    "Ack",
    "ReloadResult",
    "SidecarClient",
    "SidecarError",
    "State",
    "Verdict",
]
