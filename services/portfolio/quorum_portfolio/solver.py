"""Where the optimiser's solves run: inline (the rebalance tick waits for them), started early in a
worker process, or in a worker process off the order path.

A solve costs tens to hundreds of milliseconds; a bar costs microseconds. With ``optimiser_worker =
"process"`` the engine hands a due solve to one worker process and keeps handling records, so a
solve never holds up the order path; the weights are taken at the first rebalance tick after the
solve finished. With ``"inline"`` (the embedded desk, where runs must be reproducible) the solve runs
inside the tick that asked for it and lands in the same tick. ``"early"`` lands the same weights in
the same tick as ``"inline"`` (reproducible), but starts the solve in a worker process at the bar's
``BAR_CLOSE`` tick, so it runs while alpha and the manager work (lockstep services over Kafka).

All have the same interface: :meth:`submit` a :class:`SolveRequest` when none is in flight,
:meth:`take` the :class:`Solved` result at a tick (``None`` while it is still running);
:meth:`prestart` is the early start (a no-op unless ``starts_early``).
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Protocol

from quorum_common.runtime.worker import worker_pool

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


def same_solve(a: SolveRequest, b: SolveRequest) -> bool:
    """Whether two requests ask for the same solve (so they have the same result): returns, constraints,
    solvers, previous weights, annualisation and mandate. Their time and trigger do not enter the solve."""
    if not a.problem.returns.equals(b.problem.returns):
        return False
    if any(getattr(a.problem, f.name) != getattr(b.problem, f.name)
           for f in dataclasses.fields(Problem) if f.name != "returns"):
        return False
    return (a.solvers, a.previous, a.periods_per_year, a.mandate_key) == \
        (b.solvers, b.previous, b.periods_per_year, b.mandate_key)


class Solver(Protocol):
    """Runs solves; at most one in flight."""

    starts_early: bool
    """Whether :meth:`prestart` does anything (the engine only builds an early request then)."""

    def prestart(self, request: SolveRequest) -> None:
        """Start the solve the next rebalance tick is expected to ask for (``early`` only)."""

    @property
    def busy(self) -> bool:
        """Whether a submitted solve has not been taken yet."""

    def submit(self, request: SolveRequest) -> None:
        """Start ``request`` (only when not busy)."""

    def take(self) -> Solved | None:
        """The finished solve, once; None while none has finished."""

    def wait(self, timeout_s: float) -> bool:
        """Block until the solve in flight (if any) has finished; False on timeout."""

    @property
    def settled(self) -> bool:
        """Whether nothing is running in a worker (what a checkpoint of the engine needs: a finished solve not taken
        yet is kept as its result)."""

    def close(self) -> None:
        """Release the worker, if any."""


class SolverWorker:
    """The worker process of a solver, left out of a checkpoint: a solver restored from one starts its own when
    it first needs one (:func:`frozen` and :func:`thawed` carry its finished solves over)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = worker_pool(__name__)

    def submit(self, request: SolveRequest) -> Future[Result]:
        """Start ``request`` in the worker."""
        if self._pool is None:
            self._pool = worker_pool(__name__)
        return self._pool.submit(solve, request)

    def restart(self) -> None:
        """Replace a worker that died."""
        self._pool = worker_pool(__name__)

    def close(self) -> None:
        """Stop the worker (a running solve is abandoned)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def __getstate__(self) -> dict:
        return {"_pool": None}


Started = tuple[SolveRequest, Future[Result]]
"""A solve handed to a worker, with its request."""
Frozen = tuple[SolveRequest, Result | None, str | None]
"""A finished solve in a checkpoint: its request, and its result or its error."""


def frozen(started: Started | None) -> Frozen | None:
    """A finished solve as a checkpoint keeps it (``started`` must be done: see ``settled``)."""
    if started is None:
        return None
    request, future = started
    error = future.exception(timeout=0)
    return request, None if error is not None else future.result(), None if error is None else f"{error!r}"


def thawed(kept: Frozen | None) -> Started | None:
    """The solve :func:`frozen` kept, as a finished future again (an error raises where the result is taken)."""
    if kept is None:
        return None
    request, result, error = kept
    future: Future[Result] = Future()
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(RuntimeError(f"the solve failed before the checkpoint: {error}"))
    return request, future


def _done(started: Started | None) -> bool:
    return started is None or started[1].done()


class InlineSolver:
    """Solves inside :meth:`submit`: the result is ready at once."""

    starts_early = False

    def __init__(self) -> None:
        self._done: Solved | None = None

    def prestart(self, request: SolveRequest) -> None:
        """Nothing: inline solves start when asked."""

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

    @property
    def settled(self) -> bool:
        """Always: nothing runs in a worker."""
        return True

    def close(self) -> None:
        """Nothing to release."""


class ProcessSolver:
    """Solves in one worker process (started with ``spawn``: the parent runs librdkafka threads), at a
    lower scheduling priority than the service (``WORKER_NICENESS``)."""

    starts_early = False

    def __init__(self) -> None:
        self._worker = SolverWorker()
        self._future: Future[Result] | None = None
        self._request: SolveRequest | None = None

    def prestart(self, request: SolveRequest) -> None:
        """Nothing: a worker solve already stays off the order path."""

    @property
    def busy(self) -> bool:
        """Whether a solve is running or finished and not yet taken."""
        return self._future is not None

    def submit(self, request: SolveRequest) -> None:
        """Queue ``request`` on the worker; returns at once."""
        if self._future is not None:
            raise RuntimeError("a solve is already in flight")
        self._request = request
        self._future = self._worker.submit(request)

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
            self._worker.restart()
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

    @property
    def settled(self) -> bool:
        """Whether no solve is running in the worker."""
        return self._future is None or self._future.done()

    def close(self) -> None:
        """Stop the worker (a running solve is abandoned)."""
        self._worker.close()

    def __getstate__(self) -> dict:
        started = None if self._future is None else (self._request, self._future)
        return {**vars(self), "_future": frozen(started), "_request": None}

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        started = thawed(state["_future"])
        self._request, self._future = started if started is not None else (None, None)


class EarlySolver(InlineSolver):
    """The results of :class:`InlineSolver`, in the same ticks, with a shorter wait.

    :meth:`prestart` hands the solve the next rebalance tick is expected to ask for to a worker process
    (at ``BAR_CLOSE``, while alpha and the manager work). :meth:`submit` adopts it when the rebalance asks
    for the same solve (:func:`same_solve`), and :meth:`take` waits for it: at once, or ``solve_lag_sessions``
    later, so that the solve runs while the desk handles the sessions between. A request that changed
    since ``BAR_CLOSE`` (the mandate or the risk state) is solved inline, as is one whose worker failed.
    So what lands never depends on timing: a replay reproduces it, and the embedded desk (inline) takes
    the same decisions.
    """

    starts_early = True

    def __init__(self) -> None:
        super().__init__()
        self._worker = SolverWorker()
        self._early: Started | None = None
        self._adopted: Started | None = None
        self.adopted = 0
        """Solves served by an early start (the rest were solved inline)."""

    def prestart(self, request: SolveRequest) -> None:
        """Start ``request`` in the worker (replacing an early start that was never asked for)."""
        self._early = (request, self._worker.submit(request))

    @property
    def busy(self) -> bool:
        """Whether a submitted solve has not been taken yet."""
        return self._adopted is not None or super().busy

    def submit(self, request: SolveRequest) -> None:
        """Adopt the early start if it is this solve (without waiting for it), else solve now."""
        early, self._early = self._early, None
        if early is not None and same_solve(early[0], request):
            self._adopted = (request, early[1])
            return
        super().submit(request)

    def take(self) -> Solved | None:
        """The submitted solve, once: an adopted early start is waited for (solved inline if its worker failed)."""
        if self._adopted is None:
            return super().take()
        (request, future), self._adopted = self._adopted, None
        try:
            result = future.result()
            self.adopted += 1
            return Solved(request, result)
        except BrokenProcessPool as exc:
            log.error("optimiser worker died; restarting it and solving inline", extra={"error": str(exc)})
            self._worker.restart()
        except Exception as exc:  # the inline solve below gives the same answer, or the same error
            log.error("early solve failed; solving inline", extra={"error": f"{type(exc).__name__}: {exc}"})
        return Solved(request, solve(request))

    @property
    def settled(self) -> bool:
        """Whether no solve is running in the worker (an early start or an adopted one)."""
        return _done(self._early) and _done(self._adopted)

    def close(self) -> None:
        """Stop the worker (an early start nobody asked for is abandoned)."""
        self._worker.close()

    def __getstate__(self) -> dict:
        return {**vars(self), "_early": frozen(self._early), "_adopted": frozen(self._adopted)}

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        self._early, self._adopted = thawed(state["_early"]), thawed(state["_adopted"])


def make_solver(kind: str) -> Solver:
    """The solver for the ``optimiser_worker`` setting."""
    if kind == "inline":
        return InlineSolver()
    if kind == "early":
        return EarlySolver()
    if kind == "process":
        return ProcessSolver()
    raise ValueError(f"optimiser_worker must be 'inline', 'early' or 'process', not {kind!r}")
