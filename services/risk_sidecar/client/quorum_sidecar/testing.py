"""Test harness: runs the REAL ``quorum-risk-sidecar`` binary on a temporary socket.

Usage (in a pytest fixture)::

    from quorum_sidecar.testing import SidecarFleet

    with SidecarFleet(tmp_path) as fleet:
        sc = fleet.start({"limits": {"max_order_notional": "5000"}})  # BASE config with overrides
        client = SidecarClient(sc.socket_path, deadline_ms=5)
        sc.kill()      # SIGKILL; sc.start() brings it back on the same socket
        sc.pause()     # SIGSTOP (a hung sidecar); sc.resume() is SIGCONT

The binary is ``$QUORUM_RISK_SIDECAR_BIN``, else ``quorum-risk-sidecar`` in ``$QUORUM_RISK_BUILD_DIR``
(default ``build/risk_sidecar``, relative to the repository root, as in ``scripts/build.sh``). When
it is missing it is built with ``services/risk_sidecar/scripts/build.sh`` (under a file lock, so
parallel test processes build it once). If it cannot be built or started, :class:`SidecarHarnessError`
is raised: the test fails, it never skips — a risk layer that silently goes untested is worse than a
red build.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[4]
SERVICE = REPO / "services" / "risk_sidecar"
BUILD_SCRIPT = SERVICE / "scripts" / "build.sh"
START_TIMEOUT_S = 10.0
BUILD_TIMEOUT_S = 900.0
SUN_PATH_MAX = 107  # bytes of a Unix socket path (sun_path is 108 with the terminating NUL)

Overrides = dict[str, dict[str, str | None]]

#: A permissive configuration: every limit far away, so a test tightens only the one it is about.
BASE: dict[str, dict[str, str]] = {
    "account": {"initial_cash": "1000000"},
    "limits": {
        "max_order_quantity": "1000",
        "max_order_notional": "1000000",
        "price_collar": "0.05",
        "max_position_quantity": "1000000",
        "max_position_notional": "100000000",
        "max_gross_exposure": "100000000",
        "max_net_exposure": "100000000",
        "max_drawdown": "0.5",
        "max_daily_loss": "500000",
        "max_orders_per_second": "1000000",
        "order_burst": "100000",
        "max_open_orders": "10000",
        "stale_mark_seconds": "60",
    },
    "asset_class_caps": {"equity": "100", "crypto": "100"},
    "sector_caps": {"default": "100"},
    "restricted": {"symbols": "GME"},
    "instruments": {"BTC": "crypto, crypto"},
}


class SidecarHarnessError(RuntimeError):
    """The sidecar binary could not be built, started or stopped."""


def binary_path() -> Path:
    """Where the sidecar binary is (or will be built)."""
    default = REPO / os.environ.get("QUORUM_RISK_BUILD_DIR", "build/risk_sidecar") / "quorum-risk-sidecar"
    return Path(os.environ.get("QUORUM_RISK_SIDECAR_BIN", default))


def render_config(overrides: Overrides | None = None) -> str:
    """Config text: :data:`BASE` with per-section overrides (a value of ``None`` deletes the key)."""
    sections = {k: dict(v) for k, v in BASE.items()}
    for section, kv in (overrides or {}).items():
        sec = sections.setdefault(section, {})
        for key, value in kv.items():
            if value is None:
                sec.pop(key, None)
            else:
                sec[key] = value
    lines: list[str] = []
    for section, kv in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {v}" for k, v in kv.items()]
    return "\n".join(lines) + "\n"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago (for the sidecar's metrics endpoint)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_binary() -> Path:
    """The sidecar binary, built with ``scripts/build.sh`` first when it is missing."""
    binary = binary_path()
    if binary.exists():
        return binary
    lock_path = REPO / "build" / ".risk_sidecar.build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it right now
        if not binary.exists():
            try:
                result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True,
                                        timeout=BUILD_TIMEOUT_S, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise SidecarHarnessError(f"cannot build the sidecar with {BUILD_SCRIPT}: {exc}") from exc
            if result.returncode != 0 or not binary.exists():
                raise SidecarHarnessError(f"cannot build the sidecar with {BUILD_SCRIPT} (rc {result.returncode}):\n"
                                          f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return binary


def _can_connect(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(path)
        except OSError:
            return False
    return True


class Sidecar:
    """One sidecar process on a temporary socket, with its config file, log file and metrics port.

    Args:
        workdir: an existing directory for the config, the socket and the log.
        config_text: the configuration file's content (see :func:`render_config`).
    """

    def __init__(self, workdir: Path, config_text: str) -> None:
        self.binary = ensure_binary()
        self.workdir = workdir
        self.config_path = workdir / "sidecar.conf"
        self.config_path.write_text(config_text)
        self.socket_path = str(workdir / "risk.sock")
        self._short_dir: str | None = None
        if len(os.fsencode(self.socket_path)) > SUN_PATH_MAX:  # deep pytest tmp_path: a short directory
            self._short_dir = tempfile.mkdtemp(prefix="qsc-")
            self.socket_path = os.path.join(self._short_dir, "risk.sock")
        self.metrics_port = free_port()
        self.log_path = workdir / "sidecar.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False
        self.state_file: Path | None = None
        """When set before :meth:`start`: the ``--state-file`` the sidecar keeps its state in."""
        self.state_interval_ms = 10

    @property
    def command(self) -> list[str]:
        """The command line that starts this sidecar."""
        state = ([] if self.state_file is None else
                 ["--state-file", str(self.state_file), "--state-interval-ms", str(self.state_interval_ms)])
        return [str(self.binary), "--config", str(self.config_path), "--socket", self.socket_path,
                "--metrics-port", str(self.metrics_port), *state]

    def log(self) -> str:
        """What the sidecar wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> Sidecar:
        """Start the process (again, after :meth:`kill` or :meth:`stop`) and wait until its socket accepts."""
        if self.alive():
            raise SidecarHarnessError(f"sidecar on {self.socket_path} is already running")
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = self._spawn(log)
        self.paused = False
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SidecarHarnessError(f"sidecar exited with {self.proc.returncode}: {self.log()}")
            if _can_connect(self.socket_path):
                return self
            time.sleep(0.01)
        self.stop()
        raise SidecarHarnessError(f"sidecar did not listen on {self.socket_path} within {START_TIMEOUT_S} s: "
                                  f"{self.log()}")

    def _spawn(self, log: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command, stdout=log, stderr=log)

    @property
    def pid(self) -> int:
        """The process id of the running sidecar."""
        if self.proc is None:
            raise SidecarHarnessError("sidecar was never started")
        return self.proc.pid

    def alive(self) -> bool:
        """True while the process exists (also when it is paused)."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and reap it: no clean shutdown, the socket file stays behind."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP: the process stays, its sockets stay open, nothing answers (a hung sidecar)."""
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        os.kill(self.pid, signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 5 s); a paused process is continued first so that it can exit."""
        if not self.alive():
            return
        assert self.proc is not None
        if self.paused:
            self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self) -> None:
        """Stop the process and remove the short socket directory, if one was needed."""
        self.stop()
        if self._short_dir is not None:
            shutil.rmtree(self._short_dir, ignore_errors=True)


class SidecarFleet:
    """Starts sidecars in subdirectories of ``root`` and stops every one of them on :meth:`close`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Sidecar] = []

    def create(self, overrides: Overrides | None = None) -> Sidecar:
        """A sidecar with :data:`BASE` + ``overrides`` in a fresh directory, not yet started."""
        workdir = self.root / f"sidecar{len(self.started) + 1}"
        workdir.mkdir(parents=True)
        sc = Sidecar(workdir, render_config(overrides))
        self.started.append(sc)
        return sc

    def start(self, overrides: Overrides | None = None) -> Sidecar:
        """A started sidecar with :data:`BASE` + ``overrides``."""
        return self.create(overrides).start()

    def close(self) -> None:
        """Stop every sidecar of the fleet."""
        for sc in self.started:
            with contextlib.suppress(Exception):
                sc.cleanup()

    def __enter__(self) -> SidecarFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
