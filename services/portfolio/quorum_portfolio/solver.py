"""Where the optimiser's solves run: inline (the rebalance tick waits for them) or in a worker process.

A solve costs tens to hundreds of milliseconds; a bar costs microseconds. With ``optimiser_worker =
"process"`` the engine hands a due solve to one worker process and keeps handling records, so a
solve never holds up the order path; the weights are taken at the first rebalance tick after the
solve finished. With ``"inline"`` (lockstep replays and the embedded desk, where runs must be
reproducible) the solve runs inside the tick that asked for it and lands in the same tick.

Both have the same interface: :meth:`submit` a :class:`SolveRequest` when none is in flight,
:meth:`take` the :class:`Solved` result at a tick (``None`` while it is still running).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Protocol

from quorum_portfolio.optimiser import Problem, Result, optimise

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SolveRequest:
    """One solve: the problem, how to solve it, and what it is for."""

    problem: Problem
    solvers: tuple[str, ...]
    previous: dict[str, float] | None
    periods_per_year: int
    ts: int
    """Event time of the tick that asked for it (its returns end at this bar time)."""
    trigger: str | None
    """The rebalance it serves (``INITIAL``, ``CALENDAR``, ...), run when its weights land; None: none."""
    mandate_key: tuple[str, int]
    """``(mandate_id, version)`` it was solved for: weights for a superseded mandate are not used."""

    @property
    def lookback(self) -> int:
        """Rows of returns the solve sees."""
        return int(self.problem.returns.shape[0])


@dataclass(frozen=True)
class Solved:
    """A finished solve and the request it answers."""

    request: SolveRequest
    result: Result


def solve(request: SolveRequest) -> Result:
    """Run one request (in this process or the worker's)."""
    return optimise(request.problem, request.solvers, request.previous, request.periods_per_year)


class Solver(Protocol):
    """Runs solves; at most one in flight."""

    @property
    def busy(self) -> bool:
        """Whether a submitted solve has not been taken yet."""

    def submit(self, request: SolveRequest) -> None:
        """Start ``request`` (only when not busy)."""

    def take(self) -> Solved | None:
        """The finished solve, once; None while none has finished."""

    def wait(self, timeout_s: float) -> bool:
        """Block until the solve in flight (if any) has finished; False on timeout."""

    def close(self) -> None:
        """Release the worker, if any."""


class InlineSolver:
    """Solves inside :meth:`submit`: the result is ready at once."""

    def __init__(self) -> None:
        self._done: Solved | None = None

    @property
    def busy(self) -> bool:
        """Whether a solved result is waiting to be taken."""
        return self._done is not None

    def submit(self, request: SolveRequest) -> None:
        """Solve now."""
        self._done = Solved(request, solve(request))

    def take(self) -> Solved | None:
        """The result of the last submit, once."""
        done, self._done = self._done, None
        return done

    def wait(self, timeout_s: float) -> bool:
        """Always finished."""
        return True

    def close(self) -> None:
        """Nothing to release."""


def _warm_up() -> None:
    """Runs in the new worker so that its imports (cvxpy, riskfolio) are paid before the first solve."""


WORKER_NICENESS = 10
"""How much lower than the service the worker's scheduling priority is: a solve is background work and
yields the CPU to the record path whenever both want it."""


def _lower_priority() -> None:
    """Worker initializer: run at a lower scheduling priority than the service."""
    os.nice(WORKER_NICENESS)


class ProcessSolver:
    """Solves in one worker process (started with ``spawn``: the parent runs librdkafka threads), at a
    lower scheduling priority than the service (``WORKER_NICENESS``)."""

    def __init__(self) -> None:
        self._pool = self._start()
        self._future: Future[Result] | None = None
        self._request: SolveRequest | None = None

    @staticmethod
    def _start() -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_lower_priority)
        pool.submit(_warm_up)
        return pool

    @property
    def busy(self) -> bool:
        """Whether a solve is running or finished and not yet taken."""
        return self._future is not None

    def submit(self, request: SolveRequest) -> None:
        """Queue ``request`` on the worker; returns at once."""
        if self._future is not None:
            raise RuntimeError("a solve is already in flight")
        self._request = request
        self._future = self._pool.submit(solve, request)

    def take(self) -> Solved | None:
        """The finished solve, once. A crashed worker is restarted and the solve dropped (logged):
        the engine keeps its weights and asks again when the next solve is due."""
        if self._future is None or not self._future.done():
            return None
        future, request = self._future, self._request
        self._future = self._request = None
        try:
            return Solved(request, future.result())
        except BrokenProcessPool as exc:
            log.error("optimiser worker died; restarting it", extra={"error": str(exc)})
            self._pool = self._start()
        except Exception as exc:  # an unexpected optimiser error must not stop the portfolio
            log.error("background solve failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        return None

    def wait(self, timeout_s: float) -> bool:
        """Block until the solve in flight (if any) has finished; False on timeout."""
        if self._future is None:
            return True
        try:
            self._future.exception(timeout=timeout_s)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        """Stop the worker (a running solve is abandoned)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def make_solver(kind: str) -> Solver:
    """The solver for the ``optimiser_worker`` setting."""
    if kind == "inline":
        return InlineSolver()
    if kind == "process":
        return ProcessSolver()
    raise ValueError(f"optimiser_worker must be 'inline' or 'process', not {kind!r}")
