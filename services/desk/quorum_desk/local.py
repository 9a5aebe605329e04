"""``quorum-desk up`` / ``down``: the local broker and every service as its own process.

Each service runs ``python -m quorum_<name>.app`` with its HTTP endpoint (``/healthz``, ``/readyz``,
``/metrics``; the admin API too) on ``127.0.0.1:<base port + n>``, logs in ``.run/logs/<name>.log``
and its pid in ``.run/<name>.pid``. The consumers start first; once all are ready the ingest replay
starts in lockstep, waiting before every clock tick until all consumer groups caught up, so the run
over Kafka takes the same decisions as the embedded one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from quorum_common import kafka_local
from quorum_common.paths import REPO_ROOT

from quorum_desk.composition import CONSUMERS, SOURCE, consumer_inputs

RUN_DIR = Path(os.environ.get("QUORUM_RUN_DIR", REPO_ROOT / ".run"))
BASE_PORT = int(os.environ.get("QUORUM_BASE_PORT", "18080"))
ADMIN_PORT = int(os.environ.get("QUORUM_ADMIN_PORT", "18000"))


def _say(msg: str) -> None:
    print(f"[desk] {msg}", flush=True)


def port_of(name: str) -> int:
    """HTTP port of a service."""
    if name == "admin":
        return ADMIN_PORT
    names = [s.name for s in CONSUMERS] + [SOURCE.name]
    return BASE_PORT + names.index(name)


def _start(name: str, env: dict[str, str]) -> int:
    logs = RUN_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    full = {**os.environ, "QUORUM_HTTP_PORT": str(port_of(name)), "QUORUM_SERVICE_NAME": name, **env}
    with open(logs / f"{name}.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", f"quorum_{name}.app"], env=full, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    (RUN_DIR / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def _wait_ready(name: str, timeout_s: float = 60.0) -> None:
    url = f"http://127.0.0.1:{port_of(name)}/readyz"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not become ready on {url}; see {RUN_DIR / 'logs' / (name + '.log')}")


def up(env: dict[str, str] | None = None, replay: bool = True) -> None:
    """Start the broker, every consumer, then (``replay``) the lockstep ingest replay."""
    bootstrap = kafka_local.up()
    common = {"QUORUM_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "QUORUM_LOCKSTEP": "true",
              "QUORUM_DELIVERY": "at_least_once", **(env or {})}
    for spec in CONSUMERS:
        pid = _start(spec.name, common)
        _say(f"{spec.name:<10} pid {pid:<7} http://127.0.0.1:{port_of(spec.name)}")
    for spec in CONSUMERS:
        _wait_ready(spec.name)
    _say("every consumer is ready")
    if replay:
        groups = json.dumps(consumer_inputs())
        pid = _start(SOURCE.name, {**common, "QUORUM_LOCKSTEP_GROUPS": groups})
        _say(f"ingest     pid {pid:<7} replaying in lockstep (logs: {RUN_DIR / 'logs'})")


def down(purge: bool = False) -> None:
    """Stop every service started by :func:`up`, then the broker."""
    for pid_file in sorted(RUN_DIR.glob("*.pid")):
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        pid_file.unlink()
        _say(f"stopped {pid_file.stem}")
    kafka_local.down(purge=purge)
