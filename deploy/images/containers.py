"""Small helpers of the image smoke checks: the docker command line, free ports, HTTP polling.

Everything here shells out to the docker client chosen by ``deploy/images/lib.sh`` (passed on as
``--docker``); no docker SDK is needed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


class CheckFailed(Exception):
    """A smoke check failed; the message says which step and why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str, timeout_s: float = 2.0) -> int | None:
    """The HTTP status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


def wait_until(what: str, predicate: Callable[[], bool], timeout_s: float, alive: Callable[[], bool],
               interval_s: float = 0.25) -> float:
    """Poll ``predicate`` until true; return the seconds it took.

    Raises :class:`CheckFailed` naming ``what`` on timeout, or as soon as ``alive()`` turns false.
    """
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if not alive():
            raise CheckFailed(f"{what}: the container exited")
        if time.monotonic() - started > timeout_s:
            raise CheckFailed(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(interval_s)


@dataclass
class Docker:
    """The docker client (BuildKit-capable, see lib.sh) and the containers this run started."""

    binary: str = "docker"
    label: str = "quorum.imgtest"
    started: list[str] = field(default_factory=list)

    def run(self, args: Sequence[str], timeout_s: float = 120.0, check: bool = True) -> str:
        """Run ``docker <args>``; return stdout. Raises :class:`CheckFailed` on failure when ``check``."""
        env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        try:
            proc = subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"docker {args[0]}: no answer within {timeout_s:.0f} s") from None
        if check and proc.returncode != 0:
            raise CheckFailed(f"docker {' '.join(args[:2])}: {proc.stderr.strip()[-400:]}")
        return proc.stdout.strip()

    def start(self, name: str, image: str, env: dict[str, str], args: Sequence[str] = (),
              volumes: Sequence[str] = ()) -> str:
        """Start a detached container on the host network; return its id."""
        cmd = ["run", "-d", "--name", name, "--network", "host", "--label", self.label]
        for key, value in env.items():
            cmd += ["-e", f"{key}={value}"]
        for volume in volumes:
            cmd += ["-v", volume]
        cid = self.run([*cmd, image, *args])
        self.started.append(cid)
        return cid

    def running(self, cid: str) -> bool:
        """Whether the container is still running."""
        return self.run(["inspect", "-f", "{{.State.Running}}", cid], check=False) == "true"

    def stop(self, cid: str, grace_s: int = 15) -> int:
        """SIGTERM the container (SIGKILL after ``grace_s``); return its exit code."""
        self.run(["stop", "-t", str(grace_s), cid], timeout_s=grace_s + 30)
        return int(self.run(["inspect", "-f", "{{.State.ExitCode}}", cid]))

    def wait(self, cid: str, timeout_s: float) -> int:
        """Wait for the container to exit; return its exit code."""
        return int(self.run(["wait", cid], timeout_s=timeout_s))

    def logs(self, cid: str, lines: int = 25) -> str:
        """The last lines of the container's output."""
        proc = subprocess.run([self.binary, "logs", "--tail", str(lines), cid], capture_output=True, text=True)
        return (proc.stdout + proc.stderr).strip()

    def image_user(self, image: str) -> str:
        """The image's configured user ("" when none: root)."""
        return self.run(["image", "inspect", "-f", "{{.Config.User}}", image])

    def image_size_mb(self, image: str) -> float:
        """The image's size in MB."""
        return int(self.run(["image", "inspect", "-f", "{{.Size}}", image])) / 1e6

    def remove_all(self) -> None:
        """Remove every container this run started (also after a failure)."""
        for cid in self.started:
            self.run(["rm", "-f", cid], check=False)
        self.started.clear()
