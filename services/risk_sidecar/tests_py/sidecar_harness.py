"""Test harness: runs the REAL sidecar binary on a temporary socket.

The binary is built with scripts/build.sh when missing. If it cannot be built or started the
tests FAIL (never skip): a risk layer that silently is not tested is worse than a red build.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[1]
REPO = SERVICE.parents[1]
BINARY = Path(os.environ.get("QUORUM_RISK_SIDECAR_BIN", REPO / "build" / "risk_sidecar" / "quorum-risk-sidecar"))
sys.path.insert(0, str(SERVICE / "client"))

BASE = {
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


def render_config(overrides: dict[str, dict[str, str]] | None = None) -> str:
    """Config text: BASE with per-section overrides (a value of None deletes the key)."""
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
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_binary() -> Path:
    if not BINARY.exists():
        result = subprocess.run(
            ["bash", str(SERVICE / "scripts" / "build.sh")], capture_output=True, text=True, timeout=900
        )
        if result.returncode != 0 or not BINARY.exists():
            pytest.fail(f"cannot build the sidecar:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return BINARY


class Sidecar:
    """One sidecar process on a temporary socket, with its config file and metrics port."""

    def __init__(self, workdir: Path, config_text: str) -> None:
        self.binary = ensure_binary()
        self.workdir = workdir
        self.config_path = workdir / "sidecar.conf"
        self.config_path.write_text(config_text)
        self.socket_path = str(workdir / "risk.sock")
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "sidecar.log"

    def start(self) -> Sidecar:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = self._spawn(log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"sidecar exited with {self.proc.returncode}: {self.log_path.read_text()}")
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(self.socket_path)
                return self
            except OSError:
                time.sleep(0.01)
        pytest.fail(f"sidecar did not start listening: {self.log_path.read_text()}")
        raise AssertionError  # unreachable

    def _spawn(self, log) -> subprocess.Popen[bytes]:
        cmd = [str(self.binary), "--config", str(self.config_path), "--socket", self.socket_path]
        cmd += ["--metrics-port", str(self.metrics_port)]
        return subprocess.Popen(cmd, stdout=log, stderr=log)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
