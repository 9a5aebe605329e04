"""A relay service run as a real subprocess by the crash tests: md.bars → signals.raw.

Environment: BOOTSTRAP, PREFIX, DELIVERY (at_least_once | exactly_once), BATCH, COMMIT_EVERY (default BATCH),
KILL_ON_COMMIT=N (SIGKILL itself right before the N-th offset commit, after the batch's outputs
were acknowledged), HANG_AT=N and HANG_MARKER=path (on the N-th record: write the marker and hang,
inside an open transaction), SLOW_MS=n (sleep n ms per record). SIGTERM stops it gracefully.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from quorum_common.bus.kafka import ConsumerLoop, KafkaBus
from quorum_common.bus.message import Message
from quorum_common.engine import envelope
from quorum_common.schemas import default_catalog
from quorum_common.testing.samples import sample_record


def main() -> int:
    bus = KafkaBus({"bootstrap.servers": os.environ["BOOTSTRAP"]}, topic_prefix=os.environ["PREFIX"],
                   delivery=os.environ["DELIVERY"], batch_size=int(os.environ.get("BATCH", "20")),
                   commit_every=int(os.environ.get("COMMIT_EVERY", os.environ.get("BATCH", "20"))),
                   # a restarted member need not wait 45 s for the killed one to be evicted
                   consumer_overrides={"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    kill_on = int(os.environ.get("KILL_ON_COMMIT", "0"))
    hang_at = int(os.environ.get("HANG_AT", "0"))
    commits = {"n": 0}
    original_commit = ConsumerLoop._commit

    def commit(self: ConsumerLoop, offsets: list, wait: bool = False) -> None:
        commits["n"] += 1
        if commits["n"] == kill_on:
            os.kill(os.getpid(), signal.SIGKILL)
        original_commit(self, offsets, wait)

    ConsumerLoop._commit = commit  # type: ignore[method-assign]
    pub = bus.publisher("relay")
    template = sample_record(default_catalog().schema_for("signals.raw"))
    handled = {"n": 0}

    def handle(msg: Message) -> None:
        handled["n"] += 1
        if handled["n"] == hang_at:
            Path(os.environ["HANG_MARKER"]).write_text("hanging")
            time.sleep(600)
        out = {**template, **envelope(msg.ts_event, "relay", msg.key, correlation_id=msg.value["event_id"])}
        out["symbol"] = msg.value["symbol"]
        pub.publish("signals.raw", out, key=msg.key)

    bus.subscribe("relay", ["md.bars"], handle)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if os.environ.get("SLOW_MS"):
        inner = handle

        def handle(msg: Message) -> None:
            time.sleep(float(os.environ["SLOW_MS"]) / 1000)
            inner(msg)

        bus.loop("relay").handler = handle
    bus.run_service("relay", stop, idle_exit_s=float(os.environ.get("IDLE_EXIT", "3")))
    print(f"handled {handled['n']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
