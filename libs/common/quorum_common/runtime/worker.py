"""One background worker process for a service's heavy, pure computations (optimiser solves, model fits).

The worker is started with ``spawn`` (the service runs librdkafka threads, which ``fork`` would copy in an
unusable state) and runs at a lower scheduling priority than the service (``WORKER_NICENESS``): its work
is background work and yields the CPU to the record path whenever both want it.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

WORKER_NICENESS = 10
"""How much lower than the service the worker's scheduling priority is."""


def _lower_priority() -> None:
    """Worker initializer: run at a lower scheduling priority than the service."""
    os.nice(WORKER_NICENESS)


def worker_pool(warm_module: str) -> ProcessPoolExecutor:
    """A one-process pool that has started importing ``warm_module`` (so the first task does not pay for it)."""
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_lower_priority)
    pool.submit(importlib.import_module, warm_module)
    return pool
