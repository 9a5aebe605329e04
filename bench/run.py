"""``make bench``: every benchmark; each writes one JSON file under ``bench/results/``.

Usage: ``python bench/run.py [codec] [optimiser] [kafka]`` (default: all). The Kafka benchmarks start the
local broker when none answers and stop it again afterwards.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import codec_bench
import kafka_bench
import optimiser_bench
from quorum_common import kafka_local


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all by default)."""
    wanted = set(argv) or {"codec", "optimiser", "kafka"}
    if "codec" in wanted:
        codec_bench.run()
    if "optimiser" in wanted:
        optimiser_bench.run()
    if "kafka" in wanted:
        started = False
        if not kafka_local.is_up():
            kafka_local.up(create_topics=False)
            started = True
        try:
            kafka_bench.run({"bootstrap.servers": kafka_local.BOOTSTRAP})
            halt_bench.run({"bootstrap.servers": kafka_local.BOOTSTRAP})
        finally:
            if started:
                kafka_local.down()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
