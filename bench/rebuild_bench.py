"""A restarted lockstep service rebuilds its engine from its input history (README: phases and lockstep): how long
that takes and how much memory it needs, for the portfolio after six years of daily bars (2005-2010, the default
mandate and data) replayed over Kafka, from the whole history and from its last checkpoint.

The portfolio runs as its own process beside the in-process desk (:func:`quorum_desk.kafka_run.run_over_kafka`),
writing checkpoints of its engine every 90 days of event time (the default). Once the replay is over it is stopped and
started again on the same topics with checkpoints off, and rebuilds from the whole history; then stopped and started
once more with them on, and rebuilds from the last checkpoint. Reported: the records it read back and the seconds
each rebuild took (from its log), the most records that waited at once to be handed over, and the peak resident memory
of the restarted processes beside that of the instance that ran the whole replay.
"""

from __future__ import annotations

import secrets
import tempfile
import uuid
from datetime import date
from pathlib import Path

from quorum_common.benchjson import Figure, write_result
from quorum_common.bus.kafka_admin import delete_catalog_topics
from quorum_common.schemas import default_catalog
from quorum_desk.kafka_run import run_over_kafka
from quorum_desk.service_process import ServiceProcess

SERVICE = "portfolio"
START, END = date(2005, 1, 1), date(2010, 12, 31)
REBUILT = "state rebuilt from input history"


def run(client_config: dict[str, str]) -> list[Figure]:
    """Replay 2005-2010 with the portfolio as its own process, restart it, and write ``bench/results/rebuild.json``."""
    overrides = {"ingest": {"start": START, "end": END},
                 "portfolio": {"optimiser_worker": "early", "checkpoint_key": secrets.token_hex(16)}}
    prefix = f"rebuildbench{uuid.uuid4().hex[:6]}."
    with tempfile.TemporaryDirectory() as logs:
        service = ServiceProcess(SERVICE, client_config, prefix, "at_least_once", overrides[SERVICE], Path(logs))
        try:
            service.start()
            run_over_kafka(client_config, prefix, overrides, timeout_s=600, elsewhere={SERVICE})
            running_mib = service.peak_rss_mib()
            service.stop()
            service.env["QUORUM_CHECKPOINT_EVERY_DAYS"] = "0"
            service.start()
            done = service.log_record(2, REBUILT, timeout_s=600)
            rebuilt_mib = service.peak_rss_mib()
            service.stop()
            del service.env["QUORUM_CHECKPOINT_EVERY_DAYS"]
            service.start()
            resumed = service.log_record(3, REBUILT, timeout_s=600)
            resumed_mib = service.peak_rss_mib()
        finally:
            service.stop()
            delete_catalog_topics(client_config, default_catalog(), prefix)
    if done["checkpoint"] is not None or resumed["checkpoint"] is None:
        raise RuntimeError(f"the restarts did not rebuild as asked: checkpoint {done['checkpoint']} with checkpoints "
                           f"off, {resumed['checkpoint']} with them on")
    figures = [
        Figure("input records read back", done["records"], "records", None),
        Figure("rebuild time", done["seconds"], "s", None),
        Figure("records waiting at once to be handed over, at most", done["most_held"], "records", None),
        Figure("peak memory of the restarted process, rebuild done", round(rebuilt_mib), "MiB", None),
        Figure("peak memory of the instance that ran the whole replay", round(running_mib), "MiB", None),
        Figure("input records read back, from the last checkpoint", resumed["records"], "records", None),
        Figure("rebuild time, from the last checkpoint", resumed["seconds"], "s", None),
        Figure("peak memory of the process restarted from the last checkpoint", round(resumed_mib), "MiB", None),
    ]
    write_result("rebuild", figures, notes=f"{SERVICE} restarted after a lockstep Kafka replay of {START}..{END} "
                 "(default mandate and data, at least once, optimiser worker early, a checkpoint every 90 days of "
                 "event time); from the whole history with checkpoints off, then from the last checkpoint (its time "
                 "includes finding and restoring it); the rest of the desk in one process beside it; memory is Linux "
                 "VmHWM")
    return figures
