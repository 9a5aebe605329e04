"""Service Dockerfiles are generated from one template and kept in sync with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_python_service_has_a_dockerfile_rendered_from_the_template() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "deploy/docker/render.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for pyproject in (ROOT / "services").glob("*/pyproject.toml"):
        text = (pyproject.parent / "Dockerfile").read_text()
        assert "USER 10001" in text and "AS runtime" in text and "ARG BASE_IMAGE" in text
