#!/usr/bin/env python3
"""Python client -> sidecar round trip over the Unix socket.

Starts the real sidecar binary on a temporary socket, then measures with one client:
  * latency p50 / p99 (us) over N sequential check_order calls (approved and rejected mixed);
  * sustained checks per second over a fixed wall-clock window.
Writes bench/results/sidecar_roundtrip.json via quorum_common.benchjson.

Both ends busy-poll by default (sidecar --busy-poll-us, client spin_us): on virtualised hosts a
sleeping process needs tens of microseconds to wake, more than the whole round trip. Pass
--no-spin to measure the blocking configuration as well.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[3]
sys.path.insert(0, str(REPO / "libs" / "common"))
sys.path.insert(0, str(HERE.parents[1] / "client"))
from quorum_common.benchjson import Figure, write_result  # noqa: E402
from quorum_sidecar import SidecarClient  # noqa: E402

CONFIG = """
[account]
initial_cash = 1000000000
[limits]
max_order_quantity = 1000
max_order_notional = 1000000
price_collar = 0.05
max_position_quantity = 1e12
max_position_notional = 1e15
max_gross_exposure = 1e15
max_net_exposure = 1e15
max_drawdown = 0.5
max_daily_loss = 1e9
max_orders_per_second = 1e9
order_burst = 1000000
max_open_orders = 100000
stale_mark_seconds = 3600
[asset_class_caps]
equity = 100
[sector_caps]
default = 100
[engine]
order_id_memory = 4194304
"""


def percentile(sorted_vals: list[float], q: float) -> float:
    idx = min(len(sorted_vals) - 1, max(0, round(q * (len(sorted_vals) - 1))))
    return sorted_vals[idx]


def run(binary: str, n: int, seconds: float, busy_poll_us: int, spin_us: float) -> tuple[float, float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "sidecar.conf"
        cfg.write_text(CONFIG)
        sock = str(Path(tmp) / "risk.sock")
        cpus = sorted(os.sched_getaffinity(0))
        pin = len(cpus) >= 2
        # Busy-polling only pays off with a core each: two spinning processes on one core starve
        # each other. Pin the sidecar to the last CPU and this client to the first.
        proc = subprocess.Popen(
            [binary, "--config", str(cfg), "--socket", sock, "--busy-poll-us", str(busy_poll_us)],
            stderr=subprocess.DEVNULL,
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpus[-1]})) if pin else None,
        )
        if pin:
            os.sched_setaffinity(0, {cpus[0]})
        try:
            deadline = time.monotonic() + 5
            while not os.path.exists(sock):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("sidecar did not start")
                time.sleep(0.01)
            client = SidecarClient(sock, deadline_ms=50, spin_us=spin_us)
            assert client.report_mark("AAPL", 100.0).ok
            check = client.check_order
            # Warm up (connection, caches).
            for i in range(2000):
                check(f"w-{i}", "AAPL", "BUY", 1, 100.0, "equity", "technology")
            lat: list[int] = []
            clock = time.perf_counter_ns
            rejected_or_failed = 0
            for i in range(n):
                # Every other order is rejected (quantity beyond the limit): both paths measured.
                qty = 1 if i & 1 else 5000
                t0 = clock()
                v = check(f"l-{i}", "AAPL", "BUY", qty, 100.0, "equity", "technology")
                lat.append(clock() - t0)
                if v.reason not in ("OK", "MAX_ORDER_QUANTITY"):
                    rejected_or_failed += 1
            if rejected_or_failed:
                raise RuntimeError(f"{rejected_or_failed} unexpected verdicts")
            lat.sort()
            p50 = percentile(lat, 0.50) / 1e3
            p99 = percentile(lat, 0.99) / 1e3
            # Sustained throughput from one client.
            count = 0
            t_end = time.perf_counter() + seconds
            t_start = time.perf_counter()
            while True:
                for _ in range(256):
                    check(f"t-{count}", "AAPL", "BUY", 5000, 100.0, "equity", "technology")
                    count += 1
                now = time.perf_counter()
                if now >= t_end:
                    break
            rate = count / (now - t_start)
            return p50, p99, rate, percentile(lat, 0.999) / 1e3
        finally:
            proc.terminate()
            proc.wait(timeout=5)
            os.sched_setaffinity(0, cpus)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=str(REPO / "build" / "risk_sidecar" / "quorum-risk-sidecar"))
    ap.add_argument("-n", type=int, default=50_000, help="sequential checks for the latency figures")
    ap.add_argument("--seconds", type=float, default=3.0, help="window for the throughput figure")
    ap.add_argument("--busy-poll-us", type=int, default=1000, help="sidecar busy-poll window")
    ap.add_argument("--spin-us", type=float, default=100.0, help="client spin before sleeping")
    ap.add_argument("--no-spin", action="store_true", help="also measure with both ends blocking")
    args = ap.parse_args()

    p50, p99, rate, p999 = run(args.binary, args.n, args.seconds, args.busy_poll_us, args.spin_us)
    figures = [
        Figure("roundtrip_p50_us", round(p50, 2), "us", 20.0, "max"),
        Figure("roundtrip_p99_us", round(p99, 2), "us", 60.0, "max"),
        Figure("roundtrip_p999_us", round(p999, 2), "us", None, "max"),
        Figure("sustained_checks_per_s", round(rate), "checks/s", 50_000.0, "min"),
    ]
    notes = (
        f"One Python {sys.version.split()[0]} client (quorum_sidecar.SidecarClient, spin_us={args.spin_us}) -> "
        f"quorum-risk-sidecar --busy-poll-us {args.busy_poll_us} on a Unix socket; {args.n} sequential "
        "check_order calls, half approved and half rejected; throughput over "
        f"{args.seconds}s. Host has {os.cpu_count()} cores; the sidecar and the client are pinned to "
        "different cores (as with a dedicated CPU for the sidecar container)."
    )
    if args.no_spin:
        b50, b99, brate, _ = run(args.binary, args.n, args.seconds, 0, 0.0)
        figures += [
            Figure("blocking_roundtrip_p50_us", round(b50, 2), "us", None, "max"),
            Figure("blocking_roundtrip_p99_us", round(b99, 2), "us", None, "max"),
            Figure("blocking_checks_per_s", round(brate), "checks/s", None, "min"),
        ]
        notes += " blocking_* figures: both ends sleep in poll/epoll (--busy-poll-us 0, spin_us=0)."
    write_result("sidecar_roundtrip", figures, notes=notes)
    return 0  # met / missed is recorded per figure in the JSON; a crash or error still exits non-zero


if __name__ == "__main__":
    sys.exit(main())
