"""The desk's trading state machine: ``ACTIVE`` → ``REDUCING`` (reduce-only) → ``HALTED``.

Rules of a control command (pure; the engine applies and persists the result):

- ``VIEWER`` may change nothing.
- ``HALT_TRADING`` → HALTED, ``REDUCE_ONLY`` and ``FLATTEN`` → REDUCING, ``RESUME_TRADING`` → ACTIVE.
  Moving to a stricter (or the same) state is open to OPERATOR, RISK_OFFICER and SYSTEM; moving to a
  looser state (e.g. FLATTEN while HALTED) needs RISK_OFFICER; RESUME_TRADING always needs RISK_OFFICER.
- ``TIGHTEN_LIMITS`` scales limits by factors in (0, 1]; ``SET_LIMITS`` sets values and may loosen
  only from RISK_OFFICER.
- ``SET_MANDATE`` is the manager's business: the risk service learns the result from ``mandate.compiled``.

A refused command raises :class:`CommandRefused` with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quorum_risk.limits import Limits, LimitsError

ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"
RANK = {ACTIVE: 0, REDUCING: 1, HALTED: 2}
STATE_COMMANDS = {"HALT_TRADING": HALTED, "REDUCE_ONLY": REDUCING, "FLATTEN": REDUCING, "RESUME_TRADING": ACTIVE}
LIMIT_COMMANDS = frozenset({"TIGHTEN_LIMITS", "SET_LIMITS"})
RISK_OFFICER = "RISK_OFFICER"
ACTING_ROLES = frozenset({"OPERATOR", RISK_OFFICER, "SYSTEM"})


class CommandRefused(Exception):
    """The command is not allowed for its role or its content is invalid."""


def target_state(command: str, role: str, current: str) -> str:
    """The state a state command moves to from ``current``; raise :class:`CommandRefused` if not allowed."""
    target = STATE_COMMANDS[command]
    if role not in ACTING_ROLES:
        raise CommandRefused(f"{command} refused: role {role} may not change the trading state")
    if command == "RESUME_TRADING" and role != RISK_OFFICER:
        raise CommandRefused(f"RESUME_TRADING refused: only RISK_OFFICER may resume, not {role}")
    if RANK[target] < RANK[current] and role != RISK_OFFICER:
        raise CommandRefused(f"{command} refused: {current} -> {target} loosens the state; only RISK_OFFICER may")
    return target


def limits_after(command: str, role: str, limits: Limits, values: Mapping[str, float] | None) -> Limits:
    """The limits after a limit command; raise :class:`CommandRefused` if not allowed."""
    if role not in ACTING_ROLES:
        raise CommandRefused(f"{command} refused: role {role} may not change limits")
    if not values:
        raise CommandRefused(f"{command} refused: no limits given")
    try:
        if command == "TIGHTEN_LIMITS":
            return limits.tightened(values)
        return limits.with_values(values, may_loosen=role == RISK_OFFICER)
    except LimitsError as exc:
        raise CommandRefused(f"{command} refused: {exc}") from None


def lock_code(state: str, reason: str) -> str | None:
    """The reason code that rejects risk-increasing orders in ``state`` (``reason`` of the state change)."""
    if state == HALTED:
        return "TRADING_HALTED"
    if state == REDUCING:
        return "DRAWDOWN_LOCK" if reason.startswith("DRAWDOWN_LOCK") else "REDUCE_ONLY"
    return None


def describe(command: Mapping[str, Any]) -> str:
    """Human-readable summary of a control command for a state change's reason."""
    why = f": {command['reason']}" if command.get("reason") else ""
    return f"{command['command']} by {command['issued_by']} ({command['role']}){why}"
