"""HALT latency: from an operator's ``POST /halt`` to the risk service refusing risk-increasing orders.

Measured as the time from the HTTP call until the risk service's ``control.state`` HALTED record is
received (every order the risk service handles after publishing it is refused), over repeated
halt/resume cycles through the admin API, Kafka and the risk service.
"""

from __future__ import annotations

import statistics
import time
import uuid

from quorum_common.benchjson import Figure, write_result
from quorum_desk.halt_drill import HaltDrill
from quorum_risk import testing as rt


def _until(watch, state: str) -> float:
    while True:
        rec, received = watch.next()
        if rec["state"] == state:
            return received


def run(conf: dict[str, str], cycles: int = 50) -> None:
    """Run the drill and write ``bench/results/halt_latency.json``."""
    prefix = f"haltbench{uuid.uuid4().hex[:6]}."
    drill = HaltDrill(conf, prefix)
    latencies = []
    with drill.running():
        states = drill.watch("control.state")
        drill.send("mandate.compiled", rt.mandate(), key="m1")
        _until(states, "ACTIVE")
        for _ in range(cycles + 1):
            start = time.monotonic()
            assert drill.call("operator", "POST", "/halt", json={"reason": "bench"}) == 202
            latencies.append((_until(states, "HALTED") - start) * 1000)
            assert drill.call("risk_officer", "POST", "/resume", json={"reason": "bench"}) == 202
            _until(states, "ACTIVE")
    first, latencies = latencies[0], latencies[1:]
    q = statistics.quantiles(latencies, n=100)
    write_result("halt_latency", [
        Figure("first HALT to refusal", round(first, 2), "ms", 100.0, "max"),
        Figure("HALT to refusal p50", round(q[49], 2), "ms", None),
        Figure("HALT to refusal p99", round(q[98], 2), "ms", 100.0, "max"),
    ], notes=f"the first halt, then {cycles} more halt/resume cycles: admin API (in-process HTTP client; its producer "
             "connected at start, as the admin service does) -> control.commands -> risk (exactly-once consumer) -> "
             "control.state HALTED received; local broker")
