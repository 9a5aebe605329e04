"""``make bench``: every benchmark; each writes one JSON file under ``bench/results/``.

Usage: ``python bench/run.py [codec] [optimiser] [regime] [desk] [kafka] [halt] [rebuild] [pipeline]`` (default: all).
The Kafka benchmarks start the local broker when none answers and stop it again afterwards.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from quorum_common import kafka_local

LOCAL = ("codec", "optimiser", "regime", "desk")
ON_KAFKA = ("kafka", "halt", "rebuild", "pipeline")


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all by default)."""
    wanted = [b for b in (*LOCAL, *ON_KAFKA) if not argv or b in argv]
    unknown = set(argv) - {*LOCAL, *ON_KAFKA}
    if unknown:
        print(f"unknown benchmarks {sorted(unknown)}; choose from {[*LOCAL, *ON_KAFKA]}", file=sys.stderr)
        return 2
    for name in (b for b in wanted if b in LOCAL):
        importlib.import_module(f"{name}_bench").run()
    kafka = [b for b in wanted if b in ON_KAFKA]
    if not kafka:
        return 0
    started = not kafka_local.is_up() and bool(kafka_local.up(create_topics=False))
    try:
        conf = {"bootstrap.servers": kafka_local.BOOTSTRAP}
        for name in kafka:
            module = importlib.import_module(f"{name}_bench")
            module.run() if name == "pipeline" else module.run(conf)
    finally:
        if started and kafka_local.is_up():
            kafka_local.down()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
