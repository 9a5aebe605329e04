"""The admin API: 401/403 on every route, audit of every change attempt, commands, status and mandate (an admin
API and a risk engine on one in-process bus, one token per role)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from quorum_admin import mandate
from quorum_admin.api import ACTIONS, Action, AdminApi
from quorum_admin.auth import RANK, authenticate, bearer_token, token_digest
from quorum_admin.config import AdminSettings, Principal
from quorum_admin.view import AdminView
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.runtime.config import ConfigError, load_settings
from quorum_risk import testing as t
from quorum_risk.testing import Harness, market

TOKENS = {"viewer": "tok-viewer-1", "operator": "tok-operator-2", "risk_officer": "tok-officer-3"}
NAMES = {"viewer": "victor", "operator": "olga", "risk_officer": "rita"}




def auth(role: str) -> dict[str, str]:
    """The Authorization header of ``role``'s token."""
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@dataclass
class Desk:
    """The API client, the risk harness (which records every delivered record) and the view."""

    client: TestClient
    risk: Harness
    view: AdminView

    def records(self, topic: str) -> list[dict]:
        """Every record delivered on ``topic``."""
        return self.risk.seen[topic]


@pytest.fixture
def desk(request: pytest.FixtureRequest) -> Iterator[Desk]:
    """The desk; ``indirect`` parametrisation gives the API the symbols the desk has market data for."""
    bus = InProcessBus()
    view = AdminView(bus.publisher("admin"))
    bus.subscribe("admin", AdminView.inputs, view.on_message)
    risk = market(Harness(bus))
    clock = itertools.count(t.T0 + 100)
    tokens = {token_digest(tok): Principal(name=NAMES[role], role=role) for role, tok in TOKENS.items()}
    api = AdminApi(view, bus.publisher("admin"), tokens, flush=bus.run, now_ns=lambda: next(clock),
                   tradable=getattr(request, "param", None))
    app = FastAPI()
    app.include_router(api.router())
    with TestClient(app) as client:
        yield Desk(client, risk, view)


BODIES = {"flatten": {"symbols": ["JPM"]}, "tighten_limits": {"limits": {"max_position_weight": 0.5}},
          "set_limits": {"limits": {"max_position_weight": 0.2}}}
MANDATE_OK = """
mandate_id: admin-test
capital: 500000
base_currency: USD
horizon: 1y
risk_tolerance: conservative
max_drawdown: 0.10
universe:
  - {symbol: AAPL, sector: Information Technology, asset_class: equity}
  - {symbol: JPM, sector: Financials, asset_class: equity}
"""


def call(desk: Desk, action: Action, headers: dict[str, str] | None = None, body: object = None):
    if action.body is None:
        return desk.client.request(action.method, action.path, headers=headers, content=MANDATE_OK)
    return desk.client.request(action.method, action.path, headers=headers, json=body or BODIES.get(action.name))


BAD_CREDENTIALS = [None, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKENS['operator']}"},
                   {"Authorization": "Bearer "}, {"Authorization": token_digest(TOKENS["operator"])}]


@pytest.mark.parametrize("headers", BAD_CREDENTIALS)
def test_status_without_valid_credentials_is_401(desk: Desk, headers: dict | None) -> None:
    r = desk.client.get("/status", headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
@pytest.mark.parametrize("headers", BAD_CREDENTIALS)
def test_change_without_valid_credentials_is_401_audited_and_publishes_nothing(
        desk: Desk, action: Action, headers: dict | None) -> None:
    r = call(desk, action, headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert desk.records("control.commands") == []
    [audit] = desk.records("admin.audit")
    assert (audit["outcome"], audit["status_code"], audit["actor"], audit["role"]) == ("DENIED", 401, "anonymous", None)
    assert (audit["action"], audit["http_method"], audit["http_path"]) == (action.name, action.method, action.path)


def test_authentication_comes_before_body_validation(desk: Desk) -> None:
    r = desk.client.post("/limits/tighten", content=b"{not json")
    assert r.status_code == 401


ROLE_MATRIX = [(a, role) for a in ACTIONS for role in RANK]


@pytest.mark.parametrize(("action", "role"), ROLE_MATRIX, ids=[f"{a.name}-{r}" for a, r in ROLE_MATRIX])
def test_every_route_and_role(desk: Desk, action: Action, role: str) -> None:
    r = call(desk, action, auth(role))
    [audit] = desk.records("admin.audit")
    assert (audit["actor"], audit["role"]) == (NAMES[role], role.upper())
    if RANK[role] < RANK[action.minimum]:
        assert r.status_code == 403
        assert desk.records("control.commands") == []
        assert (audit["outcome"], audit["status_code"], audit["command_event_id"]) == ("DENIED", 403, None)
        return
    assert r.status_code == 202, r.text
    [cmd] = desk.records("control.commands")
    assert (cmd["command"], cmd["issued_by"], cmd["role"]) == (action.command, NAMES[role], role.upper())
    assert cmd["source_service"] == "admin" and cmd["desk"] == "desk"
    assert r.json()["command_event_id"] == cmd["event_id"] == audit["command_event_id"]
    assert (audit["outcome"], audit["status_code"]) == ("ALLOWED", 202)


@pytest.mark.parametrize("role", list(RANK))
def test_every_role_may_read_status(desk: Desk, role: str) -> None:
    assert desk.client.get("/status", headers=auth(role)).status_code == 200
    assert desk.records("admin.audit") == []  # reading is not a change


def test_status_says_where_the_drawdown_lock_fires_after_a_resume_beyond_it(desk: Desk) -> None:
    desk.risk.send("portfolio.snapshots", t.snapshot({"JPM": (500.0, 100.0)}, drawdown=0.2, ts=t.T0 + 100))
    status = desk.client.get("/status", headers=auth("viewer")).json()
    assert (status["state"], status["drawdown_lock_at"]) == ("REDUCING", None)
    assert desk.client.post("/resume", headers=auth("risk_officer")).status_code == 202
    status = desk.client.get("/status", headers=auth("viewer")).json()
    assert status["state"] == "ACTIVE" and status["drawdown_lock_at"] == pytest.approx(0.23)  # 0.2 + the 0.03 step


def test_halt_stops_risk_increasing_orders_until_a_risk_officer_resumes(desk: Desk) -> None:
    assert desk.client.post("/halt", headers=auth("operator"), json={"reason": "drill"}).status_code == 202
    assert desk.risk.engine.state == "HALTED"
    order = t.order("after-halt", symbol="JPM", ts=t.T0 + 200)
    d = desk.risk.decide(order)
    assert (d["verdict"], d["reason_code"]) == ("REJECTED", "TRADING_HALTED")
    assert "after-halt" not in desk.risk.approved()
    status = desk.client.get("/status", headers=auth("viewer")).json()
    assert (status["state"], status["state_changed_by"]) == ("HALTED", "olga") and "drill" in status["state_reason"]
    assert desk.client.post("/resume", headers=auth("operator")).status_code == 403
    assert desk.risk.engine.state == "HALTED"
    assert desk.client.post("/resume", headers=auth("risk_officer")).status_code == 202
    assert desk.risk.engine.state == "ACTIVE"
    assert desk.risk.decide(t.order("after-resume", symbol="JPM", ts=t.T0 + 300))["verdict"] == "APPROVED"


def test_reduce_only_and_loosening_limits_through_the_api(desk: Desk) -> None:
    desk.client.post("/reduce-only", headers=auth("operator"))
    assert desk.risk.engine.state == "REDUCING"
    desk.client.post("/limits/tighten", headers=auth("operator"), json={"limits": {"max_position_weight": 0.5}})
    assert desk.risk.engine.limits.max_position_weight == pytest.approx(0.05)
    desk.client.put("/limits", headers=auth("risk_officer"), json={"limits": {"max_position_weight": 0.3}})
    assert desk.risk.engine.limits.max_position_weight == 0.3


def test_status_shows_state_limits_nav_positions_and_mandate(desk: Desk) -> None:
    desk.risk.send("portfolio.snapshots", t.snapshot({"JPM": (500.0, 100.0)}, nav=990_000.0, drawdown=0.01))
    s = desk.client.get("/status", headers=auth("viewer")).json()
    assert s["state"] == "ACTIVE" and s["limits"]["max_position_weight"] == 0.10
    assert s["nav"] == 990_000.0 and s["portfolios"][0]["drawdown"] == 0.01
    assert s["portfolios"][0]["positions"][0] == {
        "symbol": "JPM", "quantity": 500.0, "avg_cost": 100.0, "last_price": 100.0, "market_value": 50_000.0,
        "unrealised_pnl": 0.0, "weight": 50_000.0 / 990_000.0, "sector": "Financials", "asset_class": "equity"}
    assert (s["mandate"]["mandate_id"], s["mandate"]["version"], s["mandate"]["capital"]) == ("m1", 1, 1e6)


def test_put_mandate_publishes_set_mandate_with_the_document(desk: Desk) -> None:
    r = desk.client.put("/mandate", headers=auth("risk_officer"), content=MANDATE_OK)
    assert r.status_code == 202
    [cmd] = desk.records("control.commands")
    assert cmd["command"] == "SET_MANDATE" and cmd["mandate_document"] == MANDATE_OK


@pytest.mark.parametrize(("doc", "field"), [(MANDATE_OK.replace("0.10", "2.5"), "max_drawdown"),
                                            ("[1, 2]", "document"), ("{: bad", "document")])
def test_invalid_mandate_is_422_naming_the_field_and_audited(desk: Desk, doc: str, field: str) -> None:
    r = desk.client.put("/mandate", headers=auth("risk_officer"), content=doc)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == field
    assert desk.records("control.commands") == []
    [audit] = desk.records("admin.audit")
    assert (audit["outcome"], audit["status_code"]) == ("DENIED", 422) and field in audit["detail"]


@pytest.mark.parametrize("desk", [("AAPL", "JPM", "KO")], indirect=True)
def test_a_mandate_naming_a_symbol_the_desk_has_no_data_for_is_422_naming_the_universe(desk: Desk) -> None:
    ok = desk.client.put("/mandate", headers=auth("risk_officer"), content=MANDATE_OK)
    doc = MANDATE_OK + "  - {symbol: TSLA, sector: Consumer Discretionary, asset_class: equity}\n"
    refused = desk.client.put("/mandate", headers=auth("risk_officer"), content=doc)
    assert (ok.status_code, refused.status_code) == (202, 422)
    [problem] = refused.json()["detail"]
    assert problem["field"] == "universe" and problem["message"].startswith(
        "TSLA is not among the symbols this desk has market data for, so it would never trade it; its symbols: AAPL")
    assert [c["mandate_document"] for c in desk.records("control.commands")] == [MANDATE_OK]


def test_without_the_manager_any_mapping_is_accepted(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mandate, "_manager_validator", lambda: None)
    ok = desk.client.put("/mandate", headers=auth("risk_officer"), content='{"max_drawdown": 2.5}')
    bad = desk.client.put("/mandate", headers=auth("risk_officer"), content="- a list")
    assert (ok.status_code, bad.status_code) == (202, 422) and bad.json()["detail"][0]["field"] == "document"


def test_view_keeps_the_newest_state(desk: Desk) -> None:
    desk.client.post("/halt", headers=auth("operator"))
    newest = desk.records("control.state")[-1]
    desk.risk.send("control.state", {**newest, "sequence": 1, "state": "ACTIVE"})
    assert desk.view.status()["state"] == "HALTED"


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/limits/tighten", {"limits": {}}, "limits"), ("/halt", {"bogus": 1}, "bogus"),
    ("/flatten", {"symbols": "JPM"}, "symbols"), ("/limits/tighten", {}, "limits"),
])
def test_invalid_body_is_422_naming_the_field(desk: Desk, path: str, body: dict, field: str) -> None:
    r = desk.client.post(path, headers=auth("risk_officer"), json=body)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == field
    assert desk.records("control.commands") == [] and desk.records("admin.audit")[0]["status_code"] == 422


@pytest.mark.parametrize(("method", "path", "limits", "message"), [
    ("POST", "/limits/tighten", {"max_position_weight": 1.5, "drawdown_lock": 0.5},
     "scale factors must be in (0, 1] (0.5 halves a limit; PUT /limits sets values): {'max_position_weight': 1.5}"),
    ("POST", "/limits/tighten", {"*": 0.0},
     "scale factors must be in (0, 1] (0.5 halves a limit; PUT /limits sets values): {'*': 0.0}"),
    ("PUT", "/limits", {"max_position_weight": -0.1},
     "values must be finite numbers >= 0: {'max_position_weight': -0.1}"),
])
def test_limits_out_of_range_are_422_saying_the_rule(desk: Desk, method: str, path: str, limits: dict,
                                                     message: str) -> None:
    """Caught at the API (not a 202 the risk service then refuses): a tighten takes factors, a set takes values."""
    r = desk.client.request(method, path, headers=auth("risk_officer"), json={"limits": limits})
    assert r.status_code == 422 and r.json()["detail"] == [{"field": "limits", "message": message}]
    assert desk.records("control.commands") == []


def test_bearer_parsing_and_digest_lookup() -> None:
    tokens = {token_digest("s3cret"): Principal(name="a", role="operator")}
    assert bearer_token("bearer  s3cret") == "s3cret" and bearer_token("Token s3cret") is None
    assert authenticate("Bearer s3cret", tokens) == Principal(name="a", role="operator")
    assert authenticate("Bearer s3cre", tokens) is None and authenticate(None, tokens) is None


def test_tokens_config_takes_digests_only(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = token_digest("s3cret")
    monkeypatch.setenv("QUORUM_ADMIN_TOKENS", f'{{"{digest}": {{"name": "ann", "role": "risk_officer"}}}}')
    assert load_settings(AdminSettings).admin_tokens[digest].role == "risk_officer"
    monkeypatch.setenv("QUORUM_ADMIN_TOKENS", '{"s3cret": {"name": "ann", "role": "risk_officer"}}')
    with pytest.raises(ConfigError, match="QUORUM_ADMIN_TOKENS"):
        load_settings(AdminSettings)
    monkeypatch.setenv("QUORUM_ADMIN_TOKENS", f'{{"{digest}": {{"name": "ann", "role": "root"}}}}')
    with pytest.raises(ConfigError, match="QUORUM_ADMIN_TOKENS"):
        load_settings(AdminSettings)
