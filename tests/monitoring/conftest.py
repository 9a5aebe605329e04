"""A running desk over the local broker, the C++ sidecar, and a real Prometheus scraping them all.

Each service runs as its own process (``python -m quorum_<name>.app``) on a free HTTP port, under a
fresh topic prefix, consumers first and then the lockstep ingest replay of a short window of real data
with the desk tests' mandate. Prometheus (Debian's ``prometheus`` package) scrapes every ``/metrics``
once a second from a temporary storage folder. Anything missing (Prometheus, the sidecar binary, the
broker) fails the tests: nothing here skips.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import yaml
from confluent_kafka.admin import AdminClient
from quorum_common.bus.kafka_admin import delete_catalog_topics, ensure_topics
from quorum_common.paths import REPO_ROOT
from quorum_common.schemas import default_catalog
from quorum_desk.composition import CONSUMERS, SOURCE, consumer_inputs

DASHBOARDS_DIR = REPO_ROOT / "deploy" / "helm" / "quorum" / "dashboards"
ALERTS = REPO_ROOT / "deploy" / "helm" / "quorum" / "alerts" / "quorum-alerts.yaml"
DASHBOARDS_PY = REPO_ROOT / "deploy" / "prometheus" / "dashboards.py"
MANDATE = REPO_ROOT / "services" / "desk" / "tests" / "test_mandate.yaml"
SIDECAR_BUILD = Path(os.environ.get("QUORUM_RISK_BUILD_DIR", REPO_ROOT / "build" / "risk_sidecar"))
SIDECAR_BIN = SIDECAR_BUILD / "quorum-risk-sidecar"
SIDECAR_CONF = REPO_ROOT / "services" / "risk_sidecar" / "config" / "sidecar.example.conf"
SYMBOLS = ["AAPL", "MSFT", "JPM", "XOM", "KO", "PEP", "HD", "JNJ", "SPX", "VIX"]
REPLAY_ENV = {  # five months of 2006, the regime fitted after 60 rows so that it publishes in the window
    "QUORUM_START": "2006-03-01", "QUORUM_END": "2006-08-31", "QUORUM_SYMBOLS": json.dumps(SYMBOLS),
    "QUORUM_MANDATE_PATH": str(MANDATE), "QUORUM_MIN_FIT_BARS": "60", "QUORUM_REFIT_EVERY": "20",
}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need_binary(path: str | Path, how: str) -> str:
    """``path`` (or the command on PATH) when executable; fail the test naming ``how`` to install it."""
    found = shutil.which(str(path))
    if found is None:
        pytest.fail(f"{path} is missing: {how}", pytrace=False)
    return found


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, step_s: float = 0.5) -> None:
    """Poll ``check`` until true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError, KeyError, ValueError):
            pass
        time.sleep(step_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}", pytrace=False)


@dataclass
class Processes:
    """Child processes started by the fixtures, stopped (SIGTERM, then SIGKILL) at the end."""

    logs: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start ``argv`` with its output in ``<logs>/<name>.log``."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(argv, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last ``lines`` lines of a process's log."""
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_all(self) -> None:
        """SIGTERM every process still running, SIGKILL whatever is left after 10 s."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class Monitoring:
    """What the tests query: the Prometheus URL, the scrape targets by job, the processes."""

    prometheus: str
    targets: dict[str, str]
    processes: Processes
    prefix: str

    wait_for = staticmethod(wait_for)

    def query(self, expr: str) -> list[dict]:
        """The result of an instant query; fails with Prometheus's error for a bad expression."""
        reply = httpx.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert reply["status"] == "success", f"{expr}: {reply.get('errorType')}: {reply.get('error')}"
        return reply["data"]["result"]


def load_dashboards_module() -> ModuleType:
    """``deploy/prometheus/dashboards.py`` (not a package) loaded from its path."""
    spec = importlib.util.spec_from_file_location("quorum_dashboards", DASHBOARDS_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def panel_targets() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expression) of every panel target of every shipped dashboard."""
    out = []
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            out.extend((path.name, panel["title"], t["expr"]) for t in panel["targets"])
    return out


def alert_rules() -> list[dict]:
    """Every rule of the shipped alert file."""
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def prometheus_config(targets: dict[str, str]) -> dict:
    """A scrape config: one job per service (label ``job`` = service name) every second, with the alerts."""
    return {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "rule_files": [str(ALERTS)],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [addr]}]}
                               for job, addr in sorted(targets.items())]}


def _wait_for_leaders(client: dict[str, str], prefix: str) -> None:
    """Wait until every partition of the prefixed topics has a leader (a fresh topic may not have one yet)."""
    admin = AdminClient(client)

    def led() -> bool:
        topics = {n: t for n, t in admin.list_topics(timeout=5).topics.items() if n.startswith(prefix)}
        return bool(topics) and all(t.error is None and t.partitions and
                                    all(p.leader >= 0 for p in t.partitions.values()) for t in topics.values())

    wait_for(led, 60, f"leaders of the {prefix}* topics")


def _start_desk(procs: Processes, bootstrap: str, prefix: str, ports: dict[str, int]) -> None:
    common = {"QUORUM_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "QUORUM_TOPIC_PREFIX": prefix,
              "QUORUM_LOCKSTEP": "true", "QUORUM_DELIVERY": "at_least_once", "QUORUM_LOG_LEVEL": "WARNING",
              **REPLAY_ENV}
    for spec in CONSUMERS:
        procs.start(spec.name, [sys.executable, "-m", f"quorum_{spec.name}.app"],
                    {**common, "QUORUM_HTTP_PORT": str(ports[spec.name]), "QUORUM_SERVICE_NAME": spec.name})
    for spec in CONSUMERS:
        url = f"http://127.0.0.1:{ports[spec.name]}/readyz"
        wait_for(lambda u=url: httpx.get(u, timeout=1).status_code == 200, 90,
                 f"{spec.name} to be ready:\n{procs.log_tail(spec.name)}")
    procs.start(SOURCE.name, [sys.executable, "-m", f"quorum_{SOURCE.name}.app"],
                {**common, "QUORUM_HTTP_PORT": str(ports[SOURCE.name]), "QUORUM_SERVICE_NAME": SOURCE.name,
                 "QUORUM_LOCKSTEP_GROUPS": json.dumps(sorted(consumer_inputs()))})


def _exercise_sidecar(socket_path: Path) -> None:
    """A few checks, a mark and a fill through the real client, so the sidecar's verdict series exist."""
    from quorum_sidecar import SidecarClient

    client = SidecarClient(str(socket_path), deadline_ms=1000)
    client.report_mark("AAPL", 100.0)
    assert client.check_order("mon-1", "AAPL", "BUY", 10, 100.0, "equity", "technology").approved
    client.report_fill("mon-1", "AAPL", "BUY", 10, 100.0)
    assert not client.check_order("mon-2", "AAPL", "BUY", 10, 150.0, "equity", "technology").approved


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``panel_target``: every (dashboard, title, expression); ``alert_rule``: every alert rule."""
    if "panel_target" in metafunc.fixturenames:
        metafunc.parametrize("panel_target", panel_targets(), ids=[f"{d}:{t}:{i}" for i, (d, t, _) in
                                                                   enumerate(panel_targets())])
    if "alert_rule" in metafunc.fixturenames:
        metafunc.parametrize("alert_rule", alert_rules(), ids=[r["alert"] for r in alert_rules()])


@pytest.fixture(scope="session")
def dashboards() -> ModuleType:
    """The dashboard generator module."""
    return load_dashboards_module()


@pytest.fixture(scope="module")
def monitoring(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitoring]:
    """The desk, the sidecar and Prometheus, running until the end of the test module."""
    prometheus = need_binary("prometheus", "apt-get install -y prometheus (Debian package)")
    sidecar = need_binary(SIDECAR_BIN, "build the sidecar first (make sidecar / cmake in build/risk_sidecar)")
    tmp = tmp_path_factory.mktemp("monitoring")
    procs = Processes(tmp / "logs")
    prefix = f"mon{uuid.uuid4().hex[:8]}."
    client = {"bootstrap.servers": kafka_bootstrap}
    ensure_topics(client, default_catalog(), prefix)
    _wait_for_leaders(client, prefix)
    names = [s.name for s in CONSUMERS] + [SOURCE.name]
    ports = {name: free_port() for name in names}
    targets = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    sidecar_port, sock = free_port(), tmp / "sidecar.sock"
    targets["risk-sidecar"] = f"127.0.0.1:{sidecar_port}"
    prom_port = free_port()
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(targets)))
    try:
        procs.start("risk-sidecar", [sidecar, "--config", str(SIDECAR_CONF), "--socket", str(sock),
                                     "--metrics-port", str(sidecar_port)])
        procs.start("prometheus", [prometheus, f"--config.file={tmp / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}",
                                   "--log.level=warn"])
        mon = Monitoring(f"http://127.0.0.1:{prom_port}", targets, procs, prefix)
        wait_for(lambda: httpx.get(f"{mon.prometheus}/-/ready", timeout=1).status_code == 200, 30,
                 f"Prometheus to be ready:\n{procs.log_tail('prometheus')}")
        wait_for(sock.exists, 10, f"the sidecar socket:\n{procs.log_tail('risk-sidecar')}", step_s=0.1)
        _exercise_sidecar(sock)
        _start_desk(procs, kafka_bootstrap, prefix, ports)
        yield mon
    finally:
        procs.stop_all()
        delete_catalog_topics(client, default_catalog(), prefix)
