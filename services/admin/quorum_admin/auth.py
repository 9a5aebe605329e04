"""Bearer-token authentication and role checks.

A presented token is hashed with sha256 and compared, with :func:`hmac.compare_digest`, against every
configured digest (all of them, so the time taken does not reveal which one matched).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from quorum_admin.config import Principal

RANK = {"viewer": 0, "operator": 1, "risk_officer": 2}
AVRO_ROLE = {"viewer": "VIEWER", "operator": "OPERATOR", "risk_officer": "RISK_OFFICER"}


def token_digest(token: str) -> str:
    """The sha256 hex digest under which a token is configured."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def authenticate(authorization: str | None, tokens: Mapping[str, Principal]) -> Principal | None:
    """The principal of the request's bearer token, or ``None`` when missing or unknown."""
    token = bearer_token(authorization)
    if token is None:
        return None
    digest = token_digest(token)
    found = None
    for known, principal in tokens.items():
        if hmac.compare_digest(known, digest):
            found = principal
    return found


def allowed(principal: Principal, minimum: str) -> bool:
    """Whether ``principal``'s role is at least ``minimum``."""
    return RANK[principal.role] >= RANK[minimum]
