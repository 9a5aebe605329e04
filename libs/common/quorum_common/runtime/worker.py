"""One background worker process for a service's heavy, pure computations (optimiser solves, model fits).

The worker is started with ``spawn`` (the service runs librdkafka threads, which ``fork`` would copy in an
unusable state) and runs at a lower scheduling priority than the service (``WORKER_NICENESS``): its work
is background work and yields the CPU to the record path whenever both want it. It also exits on its own
within ``PARENT_WATCH_S`` of its service's death: a spawned worker holds both ends of its task queue, so a
service killed outright (``kill -9``, the OOM killer, ``make restart KILL=1``) would otherwise leave it
blocked on that queue for good.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

WORKER_NICENESS = 10
"""How much lower than the service the worker's scheduling priority is."""

PARENT_WATCH_S = 1.0
"""How often the worker checks that the service that started it is still alive."""


def _exit_when_orphaned(parent: int) -> None:
    """Leave the process at once when its parent is gone (it has been re-parented); never returns otherwise."""
    while os.getppid() == parent:
        time.sleep(PARENT_WATCH_S)
    os._exit(0)  # no cleanup to run: the worker's state is the service's, and the service is gone


def _start_worker(parent: int) -> None:
    """Worker initializer: a lower scheduling priority than the service, and a watch on the service."""
    os.nice(WORKER_NICENESS)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), name="parent-watch", daemon=True).start()


def worker_pool(warm_module: str) -> ProcessPoolExecutor:
    """A one-process pool that has started importing ``warm_module`` (so the first task does not pay for it)."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(os.getpid(),))
    pool.submit(importlib.import_module, warm_module)
    return pool
