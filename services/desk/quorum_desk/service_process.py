"""One desk service as its own process (``python -m quorum_<name>.app``) on a run's topics, as `make up` runs it,
started, killed and stopped on demand: the restart tests and the rebuild benchmark replace one this way."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from quorum_common.runtime.config import settings_env


class ServiceProcess:
    """One service as its own process (``python -m quorum_<name>.app``) on the run's topics, as `make up` runs it."""

    def __init__(self, name: str, kafka_config: dict[str, str], prefix: str, delivery: str,
                 settings: dict[str, Any], logs: Path) -> None:
        self.name = name
        self.logs = logs
        self.env = {**os.environ, "QUORUM_KAFKA_BOOTSTRAP_SERVERS": kafka_config["bootstrap.servers"],
                    "QUORUM_TOPIC_PREFIX": prefix, "QUORUM_DELIVERY": delivery, "QUORUM_LOCKSTEP": "true",
                    "QUORUM_SERVICE_NAME": name, "QUORUM_HTTP_PORT": "0",
                    **settings_env(settings)}
        self.procs: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        """Start one more instance."""
        with open(self.logs / f"{self.name}-{len(self.procs) + 1}.log", "wb") as log:
            self.procs.append(subprocess.Popen([sys.executable, "-m", f"quorum_{self.name}.app"], env=self.env,
                                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT))
        return self.procs[-1]

    def kill(self) -> None:
        """SIGKILL the last instance started: no graceful stop, no last commit."""
        if not self.procs or self.procs[-1].poll() is not None:
            raise RuntimeError(f"{self.name} is not running")
        self.procs[-1].send_signal(signal.SIGKILL)
        self.procs[-1].wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (a graceful stop) to every instance still running."""
        for proc in (p for p in self.procs if p.poll() is None):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def log(self, start: int) -> str:
        """What the process of the ``start``-th start wrote."""
        return (self.logs / f"{self.name}-{start}.log").read_text(errors="replace")

    def peak_rss_mib(self) -> float:
        """The peak resident memory so far of the last instance started (Linux ``VmHWM``), in MiB."""
        status = Path(f"/proc/{self.procs[-1].pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        if match is None:
            raise RuntimeError(f"no VmHWM in /proc/{self.procs[-1].pid}/status")
        return int(match.group(1)) / 1024

    def log_record(self, start: int, message: str, timeout_s: float = 0.0) -> dict[str, Any]:
        """The first JSON log record whose message is ``message`` that the ``start``-th instance wrote, waiting up
        to ``timeout_s`` for it; raises ``LookupError`` when it has not come (or the instance stopped first)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for line in self.log(start).splitlines():
                try:
                    record = json.loads(line) if line.startswith("{") else {}
                except ValueError:  # a line being written
                    continue
                if record.get("message") == message:
                    return record
            if time.monotonic() >= deadline or self.procs[start - 1].poll() is not None:
                raise LookupError(f"{self.name} ({start}) logged no {message!r}:\n{self.log(start)[-3000:]}")
            time.sleep(0.2)

    def metrics(self, start: int) -> str:
        """What the ``start``-th instance serves on ``/metrics`` now (Prometheus text)."""
        port = self.log_record(start, "service started", timeout_s=60)["http_port"]
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
