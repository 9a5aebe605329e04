"""Settings of the embedded desk (environment variables ``QUORUM_*``)."""

from __future__ import annotations

from quorum_alpha.config import AlphaSettings
from quorum_ingest.config import IngestSettings


class DeskSettings(IngestSettings, AlphaSettings):
    """The settings of every embedded service together."""

    service_name: str = "desk"
    transport: str = "inprocess"
