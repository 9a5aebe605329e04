"""Settings of the desk runner itself (each service reads its own settings class)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from quorum_common.runtime.config import ServiceSettings


class DeskSettings(ServiceSettings):
    """Where reports go and how often progress is printed."""

    service_name: str = "desk"
    transport: str = "inprocess"
    reports_dir: Path = Field(Path("reports"), description="Folder of the run reports (one sub-folder per run).")
    progress_every: int = Field(100_000, ge=1, description="Print progress every this many delivered events.")
