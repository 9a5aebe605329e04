"""``quorum-desk up`` / ``down``: the local broker and every service as its own process.

Each service runs ``python -m quorum_<name>.app`` with its HTTP endpoint (``/healthz``, ``/readyz``,
``/metrics``; the admin API too) on ``127.0.0.1:<base port + n>``, logs in ``.run/logs/<name>.log``
and its pid in ``.run/<name>.pid``. The consumers start first; once all are ready the ingest replay
starts in lockstep, waiting before every clock tick until every consumer reported the last phase done, so the run
over Kafka takes the same decisions as the embedded one; once the replay has ended ingest stands by, so a command
sent then (``POST /halt``) still takes effect (``quorum_common.bus.standby``). The admin API gets three fresh
bearer tokens (viewer, operator, risk officer), written to ``.run/admin-tokens.json`` (mode 600); only their SHA-256
digests reach the service.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from confluent_kafka import Consumer
from quorum_common import kafka_local
from quorum_common.bus.kafka_admin import partitions_of, watermark_offsets
from quorum_common.paths import REPO_ROOT
from quorum_common.schemas import default_catalog

from quorum_desk.composition import CONSUMERS, SOURCE, consumer_inputs

RUN_DIR = Path(os.environ.get("QUORUM_RUN_DIR", REPO_ROOT / ".run"))
BASE_PORT = int(os.environ.get("QUORUM_BASE_PORT", "18080"))
ADMIN_PORT = int(os.environ.get("QUORUM_ADMIN_PORT", "18000"))


CHECKPOINT_KEY_FILE = "checkpoint.key"
"""In ``.run/`` (mode 600): the key every service seals its checkpoints with, made once and kept, so that a desk
started again on the same broker restores the checkpoints of the one before."""

ENV_FILE = "env.json"
"""In ``.run/`` (mode 600): the environment `up` started the services with (the admin's token digests are not in it)."""


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


def checkpoint_key() -> str:
    """The local desk's checkpoint key (``.run/checkpoint.key``), made on first use."""
    path = RUN_DIR / CHECKPOINT_KEY_FILE
    if not path.exists():
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def admin_tokens() -> dict[str, str]:
    """Fresh bearer tokens for the three roles, saved to ``.run/admin-tokens.json`` (mode 600)."""
    tokens = {role: secrets.token_urlsafe(24) for role in ("viewer", "operator", "risk_officer")}
    path = RUN_DIR / "admin-tokens.json"
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tokens, indent=2) + "\n")
    path.chmod(0o600)
    return tokens


class UpRefused(RuntimeError):
    """``up`` started nothing: a desk it started runs still, or a replay was asked for on topics that already hold an
    earlier desk's. The message says what to do."""


def earlier_records(bootstrap: str, prefix: str) -> dict[str, int]:
    """The desk's topics under ``prefix`` on the broker at ``bootstrap`` that already hold records, with how many
    (catalog order: ``md.bars`` first). Not only the bars: once retention has emptied ``md.bars``, the compacted
    topics (the trading state, the snapshots, the mandate) still hold the earlier desk's state."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"quorum-desk-check-{secrets.token_hex(4)}",
                         "enable.auto.commit": False})
    try:
        held: dict[str, int] = {}
        for spec in default_catalog():
            count = sum(high - low for low, high in (watermark_offsets(consumer, tp)
                                                    for tp in partitions_of(consumer, prefix + spec.name)))
            if count:
                held[spec.name] = count
        return held
    finally:
        consumer.close()


def up(env: dict[str, str] | None = None, replay: bool = True, lockstep: bool = True) -> dict[str, str]:
    """Start the broker, every consumer and the admin API, then (``replay``) the ingest replay, or without one (in
    lockstep) the ingest standing by for commands; return the admin tokens by role.

    ``lockstep`` (the default) makes the run reproduce the embedded one exactly; without it every
    service handles records as they come and the portfolio's solves run in a worker process, but the
    clock ticks overtake the records of their phase (README: phases and lockstep).

    A replay needs a fresh desk: on topics that already hold records (an earlier ``up`` on this broker), the services
    would rebuild the earlier desk's state from its history and the replay would start again underneath it, so
    :class:`UpRefused` is raised before anything starts. Without a replay the services start on what the topics
    hold (a desk resumed after ``down``). It is raised too while a desk ``up`` started runs still (a second one would
    start every service again beside the first, in the same consumer groups).
    """
    running = {name: pid for name, pid in pids().items() if not wait_ended(pid, 0.0)}
    if running:
        listed = ", ".join(f"{name} (pid {pid})" for name, pid in running.items())
        raise UpRefused(f"a desk runs already: {listed}. `make down` stops it; `make restart SERVICE=<name>` starts "
                        "one of its services again")
    bootstrap = kafka_local.up()
    prefix = (env or {}).get("QUORUM_TOPIC_PREFIX", os.environ.get("QUORUM_TOPIC_PREFIX", ""))
    if replay and (held := earlier_records(bootstrap, prefix)):
        listed = ", ".join(f"{prefix}{topic} {count:,}" for topic, count in held.items())
        raise UpRefused(
            f"the local broker's topics already hold an earlier desk's records ({listed}): a replay on them would "
            "start again underneath that desk's state. For a fresh desk, `make down PURGE=1` (deletes the local "
            "broker's data) then `make up`, or give this one topics of its own (QUORUM_TOPIC_PREFIX=<name>.); "
            "`python -m quorum_desk.app up --no-replay` resumes the earlier desk instead")
    common = {"QUORUM_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "QUORUM_LOCKSTEP": str(lockstep).lower(),
              "QUORUM_DELIVERY": "at_least_once",
              # Live: no record waits for a solve. Lockstep: solves land in their own tick (reproducible),
              # started at BAR_CLOSE in a worker so that they run while alpha and the manager work.
              "QUORUM_OPTIMISER_WORKER": "early" if lockstep else "process",
              "QUORUM_FIT_WORKER": "process",  # a lagged regime refit runs in a worker
              "QUORUM_CHECKPOINT_KEY": checkpoint_key(), **(env or {})}
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    env_file = RUN_DIR / ENV_FILE  # what `restart` starts a service with; only this user may read it
    env_file.write_text(json.dumps(common, indent=2) + "\n")
    env_file.chmod(0o600)
    for spec in CONSUMERS:
        pid = _start(spec.name, common)
        _say(f"{spec.name:<10} pid {pid:<7} http://127.0.0.1:{port_of(spec.name)}")
    tokens = admin_tokens()
    digests = {hashlib.sha256(t.encode()).hexdigest(): {"name": f"local-{role}", "role": role}
               for role, t in tokens.items()}
    pid = _start("admin", {**common, "QUORUM_ADMIN_TOKENS": json.dumps(digests)})
    _say(f"admin      pid {pid:<7} http://127.0.0.1:{port_of('admin')} (tokens: {RUN_DIR / 'admin-tokens.json'})")
    for name in [*(s.name for s in CONSUMERS), "admin"]:
        _wait_ready(name)
    _say("every service is ready")
    # In lockstep a command waits for the next tick: after its replay, or with none, ingest stands by and ticks for it.
    source_env = {**common, "QUORUM_LOCKSTEP_GROUPS": json.dumps(sorted(consumer_inputs())),
                  "QUORUM_LOCKSTEP_STANDBY": str(lockstep).lower()}
    if replay:
        pid = _start(SOURCE.name, source_env)
        mode = "in lockstep" if lockstep else "as in live trading (no lockstep)"
        _say(f"ingest     pid {pid:<7} replaying {mode} (logs: {RUN_DIR / 'logs'})")
    elif lockstep:
        pid = _start(SOURCE.name, {**source_env, "QUORUM_MODE": "standby"})
        _say(f"ingest     pid {pid:<7} no replay: standing by, so that commands take effect")
    return tokens


def wait_ended(pid: int, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for process ``pid`` to end; return whether it did (reaped here when it is this
    process's child, as when a test called :func:`up`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def pids() -> dict[str, int]:
    """The process id of every service started by :func:`up` and not stopped yet, by service name."""
    return {pid_file.stem: int(pid_file.read_text()) for pid_file in sorted(RUN_DIR.glob("*.pid"))}


def down(purge: bool = False, broker: bool = True) -> None:
    """Stop every service started by :func:`up`, then (``broker``) the broker."""
    for name, pid in pids().items():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            if not wait_ended(pid, 10.0):
                os.kill(pid, signal.SIGKILL)
                wait_ended(pid, 10.0)
        (RUN_DIR / f"{name}.pid").unlink()
        _say(f"stopped {name}")
    if broker:
        kafka_local.down(purge=purge)


def restart(name: str, kill: bool = False, ready_timeout_s: float = 600.0) -> int:
    """Stop one consumer service started by :func:`up` (SIGTERM, or SIGKILL when ``kill``: no last commit) and start it
    again with the environment `up` gave it; return its new process id once it is ready.

    A lockstep service first rebuilds its engine from its input history (README: phases and lockstep), which its log
    reports; it is ready once it consumes again. Raises ``ValueError`` for a service `up` does not run as a consumer
    and ``RuntimeError`` when no local desk is up.
    """
    names = [s.name for s in CONSUMERS]
    if name not in names:
        raise ValueError(f"cannot restart {name!r}: choose one of {names}")
    env_file, pid_file = RUN_DIR / ENV_FILE, RUN_DIR / f"{name}.pid"
    if not env_file.exists() or not pid_file.exists():
        raise RuntimeError(f"no local desk runs {name} (no {pid_file} or {env_file}): start one with `make up`")
    pid = int(pid_file.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    if not wait_ended(pid, 60.0):
        raise RuntimeError(f"{name} (pid {pid}) did not stop within 60 s")
    _say(f"{'killed' if kill else 'stopped'} {name} (pid {pid})")
    new = _start(name, json.loads(env_file.read_text()))
    _say(f"{name:<10} pid {new:<7} started again; waiting until it is ready (a lockstep engine rebuilds first)")
    _wait_ready(name, ready_timeout_s)
    _say(f"{name} is ready")
    return new
