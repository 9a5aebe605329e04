"""The admin API routes: every change is a command on ``control.commands`` and an audit record on ``admin.audit``.

| route | minimum role | command |
|---|---|---|
| ``GET /status`` | viewer | — (state, limits, NAV, positions, mandate) |
| ``POST /halt`` | operator | HALT_TRADING |
| ``POST /reduce-only`` | operator | REDUCE_ONLY |
| ``POST /flatten`` | operator | FLATTEN (optional ``symbols``) |
| ``POST /limits/tighten`` | operator | TIGHTEN_LIMITS (``limits``: scale factors in (0, 1]) |
| ``POST /resume`` | risk_officer | RESUME_TRADING |
| ``PUT /limits`` | risk_officer | SET_LIMITS (``limits``: values; may loosen) |
| ``PUT /mandate`` | risk_officer | SET_MANDATE (body: the YAML/JSON document) |

Authentication comes before anything else: a missing or unknown bearer token is 401 (with
``WWW-Authenticate: Bearer``), a known token whose role is too low is 403, an invalid body is 422 naming
the field, an accepted change is 202. Every call to a change route is audited, allowed or denied.

Time: the admin is where people's input enters the desk, so the ``ts_event`` of its commands and audit
records is the wall clock at the request (``time.time_ns()``, injectable). That is an input event, not
decision logic; everything downstream reads time from these stamps.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from quorum_common.bus.base import Publisher
from quorum_common.engine import envelope
from quorum_common.runtime.config import validation_message

from quorum_admin.auth import AVRO_ROLE, allowed, authenticate
from quorum_admin.config import Principal
from quorum_admin.mandate import MandateInvalid, validate_document
from quorum_admin.view import AdminView

COMMANDS, AUDIT = "control.commands", "admin.audit"


class CommandBody(BaseModel):
    """Optional JSON body of a state command."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=500, description="Why (kept in the command and the audit trail).")


class FlattenBody(CommandBody):
    """Body of ``POST /flatten``."""

    symbols: list[str] | None = Field(None, description="Symbols to flatten; all when omitted.")


class TightenBody(CommandBody):
    """Body of ``POST /limits/tighten``: scale factors, so that an operator can only tighten."""

    limits: dict[str, float] = Field(min_length=1, description="Limit name (``*``: every limit) -> scale factor in "
                                     "(0, 1]: 0.5 halves the limit.")

    @field_validator("limits")
    @classmethod
    def _factors(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in sorted(value.items()) if not (math.isfinite(v) and 0 < v <= 1)}
        if bad:
            raise ValueError(f"scale factors must be in (0, 1] (0.5 halves a limit; PUT /limits sets values): {bad}")
        return value


class SetLimitsBody(CommandBody):
    """Body of ``PUT /limits``: the limits' new values."""

    limits: dict[str, float] = Field(min_length=1, description="Limit name -> new value (a finite number >= 0).")

    @field_validator("limits")
    @classmethod
    def _values(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in sorted(value.items()) if not (math.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"values must be finite numbers >= 0: {bad}")
        return value


@dataclass(frozen=True)
class Action:
    """One change route."""

    name: str
    method: str
    path: str
    minimum: str
    command: str
    body: type[CommandBody] | None = CommandBody
    """``None``: the body is a mandate document."""


ACTIONS = (
    Action("halt", "POST", "/halt", "operator", "HALT_TRADING"),
    Action("reduce_only", "POST", "/reduce-only", "operator", "REDUCE_ONLY"),
    Action("flatten", "POST", "/flatten", "operator", "FLATTEN", FlattenBody),
    Action("tighten_limits", "POST", "/limits/tighten", "operator", "TIGHTEN_LIMITS", TightenBody),
    Action("resume", "POST", "/resume", "risk_officer", "RESUME_TRADING"),
    Action("set_limits", "PUT", "/limits", "risk_officer", "SET_LIMITS", SetLimitsBody),
    Action("set_mandate", "PUT", "/mandate", "risk_officer", "SET_MANDATE", None),
)


class _Refused(Exception):
    def __init__(self, status: int, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(detail))
        self.status, self.detail, self.headers = status, detail, headers


class AdminApi:
    """Authenticates, authorises, publishes and audits; :meth:`router` exposes it as FastAPI routes."""

    def __init__(self, view: AdminView, publisher: Publisher, tokens: Mapping[str, Principal], desk: str = "desk",
                 flush: Callable[[], None] = lambda: None, now_ns: Callable[[], int] = time.time_ns,
                 tradable: Collection[str] | None = None) -> None:
        self.view, self.publisher, self.tokens, self.desk = view, publisher, tokens, desk
        self.flush, self.now_ns = flush, now_ns
        self.tradable = None if tradable is None else frozenset(tradable)
        """The symbols the desk has market data for: ``PUT /mandate`` refuses a universe naming others (None: any)."""

    def router(self) -> APIRouter:
        """The routes of the table above."""
        router = APIRouter()

        @router.get("/status", summary="Trading state, limits, NAV, positions and mandate (viewer).")
        def status(request: Request) -> dict[str, Any]:
            try:
                self._authorise(self._authenticate(request), "viewer")
            except _Refused as exc:
                raise HTTPException(exc.status, exc.detail, exc.headers) from None
            return self.view.status()

        for action in ACTIONS:
            router.add_api_route(action.path, self._route(action), methods=[action.method], name=action.name,
                                 status_code=202, summary=f"{action.command} ({action.minimum})")
        return router

    def _route(self, action: Action) -> Callable[[Request], Any]:
        async def route(request: Request) -> JSONResponse:
            return await self.change(request, action)

        route.__doc__ = f"Publish {action.command} on control.commands (role {action.minimum} or above)."
        return route

    async def change(self, request: Request, action: Action) -> JSONResponse:
        """Handle one change request end to end; every outcome is audited."""
        request_id = uuid.uuid4().hex
        ts = self.now_ns()
        principal: Principal | None = None
        try:
            principal = self._authenticate(request)
            self._authorise(principal, action.minimum)
            fields = self._parse(action, await request.body())
        except _Refused as exc:
            self._audit(ts, request, action, principal, exc.status, json.dumps(exc.detail), request_id, None)
            self.flush()
            return JSONResponse({"detail": exc.detail}, exc.status, exc.headers)
        cmd = {
            **envelope(ts, "admin", action.command, principal.name, request_id),
            "desk": self.desk, "command": action.command, "issued_by": principal.name,
            "role": AVRO_ROLE[principal.role], "reason": "", "limits": None, "mandate_document": None,
            "symbols": None, "source_service": "admin", **fields,
        }
        self.publisher.publish(COMMANDS, cmd, key=self.desk)
        self._audit(ts, request, action, principal, 202, cmd["reason"], request_id, cmd["event_id"])
        self.flush()
        return JSONResponse({"command": action.command, "command_event_id": cmd["event_id"],
                             "issued_by": principal.name, "role": principal.role}, 202)

    def _authenticate(self, request: Request) -> Principal:
        principal = authenticate(request.headers.get("authorization"), self.tokens)
        if principal is None:
            raise _Refused(401, "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})
        return principal

    @staticmethod
    def _authorise(principal: Principal, minimum: str) -> None:
        if not allowed(principal, minimum):
            raise _Refused(403, f"role {principal.role} may not do this; needs {minimum} or above")

    def _parse(self, action: Action, body: bytes) -> dict[str, Any]:
        text = body.decode("utf-8", "replace")
        if action.body is None:
            try:
                validate_document(text, self.tradable)
            except MandateInvalid as exc:
                raise _Refused(422, [{"field": f, "message": m} for f, m in exc.problems]) from None
            return {"mandate_document": text}
        try:
            parsed = action.body.model_validate_json(text or "{}")
        except ValidationError as exc:
            raise _Refused(422, [{"field": ".".join(str(p) for p in e["loc"]) or "body",
                                  "message": validation_message(e)} for e in exc.errors()]) from None
        return parsed.model_dump()

    def _audit(self, ts: int, request: Request, action: Action, principal: Principal | None, status: int,
               detail: str, request_id: str, command_event_id: str | None) -> None:
        actor = principal.name if principal else "anonymous"
        self.publisher.publish(AUDIT, {
            **envelope(ts, "admin.audit", action.name, actor, request_id, correlation_id=command_event_id),
            "actor": actor, "role": AVRO_ROLE[principal.role] if principal else None, "action": action.name,
            "http_method": action.method, "http_path": action.path,
            "outcome": "ALLOWED" if status < 400 else "DENIED", "status_code": status, "detail": detail,
            "request_id": request_id, "client_ip": request.client.host if request.client else None,
            "command_event_id": command_event_id,
        }, key=actor)
