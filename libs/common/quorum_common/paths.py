"""Where the repository's shared files live, overridable through environment variables."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(os.environ.get("QUORUM_REPO_ROOT", Path(__file__).resolve().parents[3]))
"""Root of the Quorum checkout (the folder holding ``schemas/`` and ``services/``)."""

SCHEMAS_DIR = Path(os.environ.get("QUORUM_SCHEMAS_DIR", REPO_ROOT / "schemas"))
"""Folder with ``avro/*.avsc`` and ``topics.yaml``; images copy it to the same relative place."""
