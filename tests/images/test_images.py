"""The image recipes and the `make images` tooling (fast checks; `make images` itself builds and runs them)."""

from __future__ import annotations

import http.server
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "deploy" / "images"
sys.path.insert(0, str(IMAGES))

from containers import CheckFailed, free_port, http_status, wait_until  # noqa: E402
from smoke import read_builds  # noqa: E402

PYTHON_DOCKERFILES = sorted(p.parent / "Dockerfile" for p in (ROOT / "services").glob("*/pyproject.toml"))
ALL_DOCKERFILES = [*PYTHON_DOCKERFILES, ROOT / "services" / "risk_sidecar" / "Dockerfile"]


def _instructions(path: Path) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("path", ALL_DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_is_multi_stage_non_root_with_a_pinned_base_argument(path: Path) -> None:
    text = path.read_text()
    lines = _instructions(path)
    base = next(line for line in lines if line.startswith("ARG BASE_IMAGE="))
    assert re.fullmatch(r"ARG BASE_IMAGE=(python:3\.11-slim-bookworm|debian:bookworm-slim)(@sha256:[0-9a-f]{64})?",
                        base), base
    stages = [line for line in lines if line.startswith("FROM")]
    assert stages[0].startswith("FROM ${BASE_IMAGE} AS ") and stages[-1] == "FROM ${BASE_IMAGE} AS runtime", stages
    assert len(stages) >= 2
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1] == "USER 10001:10001", user
    # Offline builds: a `# syntax=` directive would make BuildKit pull the frontend from a registry.
    assert not text.startswith("# syntax="), path


@pytest.mark.parametrize("path", PYTHON_DOCKERFILES, ids=lambda p: p.parent.name)
def test_python_dependency_layer_comes_before_the_code(path: Path) -> None:
    lines = _instructions(path)
    deps = next(i for i, line in enumerate(lines) if "pip install -c constraints.txt" in line)
    first_code = next(i for i, line in enumerate(lines) if line.startswith("COPY libs/common libs/common"))
    assert deps < first_code
    assert all(not line.startswith("COPY") or "pyproject.toml" in line or "constraints.txt" in line
               for line in lines[:deps]), "only manifests may be copied before the dependency layer"
    assert "--mount=type=cache,target=/root/.cache/pip" in lines[deps]
    assert "--mount=type=secret,id=ca_bundle" in lines[deps]
    # The runtime copies the dependency venv first, then only the local wheels: a code change keeps
    # the big layer.
    runtime = lines[lines.index("FROM ${BASE_IMAGE} AS runtime"):]
    copies = [line for line in runtime if line.startswith(("COPY --from", "RUN --mount=type=bind"))]
    assert copies[0] == "COPY --from=deps /opt/venv /opt/venv"
    assert "from=build,source=/wheels" in copies[1] and "--no-index --no-deps" in copies[1]


def _mirror(apt_dir: Path) -> str:
    script = f'source "{IMAGES / "lib.sh"}"; debian_mirror "{apt_dir}"'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.strip()


def test_debian_mirror_is_read_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n")
    assert _mirror(tmp_path) == "http://mirror.example/debian"


def test_debian_mirror_is_read_from_one_line_lists(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb http://other.example/apt cloud-sdk-bookworm main\n"
        "deb [signed-by=/k.gpg] http://mirror.example/debian bookworm main\n")
    assert _mirror(tmp_path) == "http://mirror.example/debian"


def test_debian_mirror_is_empty_without_a_bookworm_entry(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://mirror.example/debian trixie main\n")
    assert _mirror(tmp_path) == ""


@pytest.fixture
def http_server() -> Iterator[int]:
    """A local server answering 200 on /ok and 503 on everything else."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_http_status_tells_answers_from_silence(http_server: int) -> None:
    assert http_status(f"http://127.0.0.1:{http_server}/ok") == 200
    assert http_status(f"http://127.0.0.1:{http_server}/readyz") == 503
    assert http_status(f"http://127.0.0.1:{free_port()}/healthz", timeout_s=0.5) is None


def test_wait_until_fails_fast_when_the_container_exits() -> None:
    with pytest.raises(CheckFailed, match="healthz: the container exited"):
        wait_until("healthz", lambda: False, timeout_s=30, alive=lambda: False)


def test_wait_until_times_out_naming_the_step() -> None:
    with pytest.raises(CheckFailed, match=r"joining the broker: not within 0 s"):
        wait_until("joining the broker", lambda: False, timeout_s=0.2, alive=lambda: True, interval_s=0.05)
    assert wait_until("x", lambda: True, timeout_s=1, alive=lambda: True) < 1


def test_build_times_are_read_from_the_build_script_file(tmp_path: Path) -> None:
    path = tmp_path / "builds.tsv"
    path.write_text("alpha\t12.5\tok\nrisk-sidecar\t80.0\tFAIL\n")
    assert read_builds(path) == {"alpha": (12.5, "ok"), "risk-sidecar": (80.0, "FAIL")}
    assert read_builds(None) == {}
