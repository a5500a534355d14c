"""Swarm simulation of any transition system: random walks that reach far deeper than BFS.

BFS proves a bound exhaustively but its frontier grows exponentially with depth; a bug that needs
fifty steps (the paper's Figure 8 needs five terms) is out of its reach. A random walk reaches
depth fifty in microseconds per step, but a uniformly random walk keeps doing the same few likely
things. Swarm testing (Groce et al., "Swarm Testing", ISSTA 2012) fixes that cheaply: each walk
gets its own random configuration, here a weight per action name, some names left out, so that
different walks explore different kinds of behaviour (one rarely times out and lets elections
finish, another keeps clients busy). The engine is the generic one of ``checker.explore``: a
system with ``init_states``, ``steps``, ``constraint``, ``fingerprint``, ``invariants`` and
``step_properties``; nothing here knows Raft.

A walk, from an initial state: enumerate ``steps(state)``, keep the successors within the
constraint that change the state (stuttering steps change nothing, and the step properties of
TLA+ specs, ``[][P]_vars``, hold on them by definition), pick an action name by the walk's
weights among the enabled names, then one of its instances by the walk's weights for instances
(so that, say, one server rarely times out or one message is slow); check every invariant on
the new state and every step property on the step. Left-out names and instances are taken only
when nothing else is enabled: a walk that leaves out timeouts times out only when the system is
quiet, as a real cluster whose election timeout is long next to its message delays. Some walks
also escape loops: when the chosen step leads back to a state the walk has visited, they choose
again among the steps to states it has not. Given ``links`` (which parties a step links: a
message's sender and receiver), most walks also cut one party about to send off from the
others for a stretch of steps, a network partition (``SwarmSettings.partition``). A walk ends
at its depth, when nothing is enabled, or when it has only revisited its own states for a
while; the next walk starts afresh. Walk
``k`` of seed ``s`` draws all its choices from generators seeded by ``(s, k)``, so a seed
reproduces every walk, whatever the speed of the machine.

A violating walk is then shrunk (as QuickCheck and Hypothesis shrink inputs): cut loops (a state
visited twice) and delete runs of steps, halving the run length down to one, keeping a candidate
when its actions, replayed through ``steps`` from the same initial state within the constraint,
still violate a property (the first one violated along it, as a walk or BFS reports it).
Actions that are no longer enabled during a replay are skipped, so every candidate is a real
trace of the system. Deletion stops in local minima (a detour that reaches the same situation
by other steps cannot be deleted piecewise), so shrinking also replaces segments by shortcuts
found by small breadth-first searches from the trace's states (``_shortcuts``), whose bound may
grow when a round gains nothing (``shrink_trace``), and, when that gains nothing either, by every
short path in place of a segment one step longer, the rest of the trace replayed after it
(``_replacements``). The result is replayed once more, strictly, before it is returned.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import random
import signal
import threading
import time
import traceback
from collections.abc import Callable, Hashable, Iterable, Sequence
from queue import Empty
from typing import Any, Protocol

import attrs

from raftspec.checker.explore import System
from raftspec.checker.gcpolicy import searching
from raftspec.protocol.errors import RaftspecError

Trace = list[tuple[Any, Any]]
Links = Callable[[Any, Any, Any], Sequence[Hashable]]
"""``links(action, state, next_state)``: the parties a step links, sender first."""


@attrs.frozen
class SwarmSettings:
    """How walk configurations are drawn (defaults chosen by trying variants on the planted Raft
    bugs; benchmarks/bench_simulate.py measures the result).

    Each action name is left out of a walk with probability ``omit``, or ``omit_by_name[name]``
    (the protocol's hint for actions that a real system takes rarely), and each action instance,
    among those of its name, with probability ``omit_instance``. A left-out action is still
    taken when nothing else is enabled (choosing among left-out ones by their weights), so
    leaving out a necessary action delays it instead of ending the walk. Weights are ``2**u``
    with ``u`` uniform in ``[-weight_range, 0]``. A walk's depth is uniform in
    ``[min_depth_fraction * depth, depth]``; its loop-escape probability is one of ``escape``.
    A walk that has visited only states it had already visited for ``patience`` steps is over.

    Partitions (used only when ``simulate`` gets ``links``): a walk cuts, with probability
    ``partition``, one party (a server about to send) off from the others for a stretch of
    its steps (its start uniform in the first ``partition_start`` of the walk's depth, its
    length uniform in ``[1, partition_length * depth]``): actions that link it to another
    party (a message sent to or by it) are then taken only when nothing else is enabled,
    left-out actions included.
    Real bugs of this kind are found by partition schedules (Jepsen): a deposed leader that
    hears nothing of the new term while the others move on is what per-action weights almost
    never produce.
    """

    omit: float = 0.2
    omit_instance: float = 0.2
    weight_range: float = 5.0
    min_depth_fraction: float = 0.5
    patience: int = 20
    escape: tuple[float, ...] = (0.0, 0.5, 1.0)
    omit_by_name: dict[str, float] = attrs.field(factory=dict)
    partition: float = 0.9
    partition_start: float = 0.1
    partition_length: float = 1.0


@attrs.frozen
class WalkConfig:
    """One walk's configuration beyond its weights: its seed and index, its depth and its
    loop-escape probability, and its partition's stretch of steps (``cut_from`` to
    ``cut_until``, none when equal)."""

    seed: int
    walk: int
    depth: int
    escape: float = 0.0
    cut_from: int = 0
    cut_until: int = 0


@attrs.frozen
class Progress:
    """A snapshot of a running simulation, for progress displays."""

    walks: int
    steps: int
    seconds: float


class Interrupted(KeyboardInterrupt):
    """A KeyboardInterrupt (Ctrl-C, or a signal turned into one) or the caller's budget
    (``should_stop``, whose answer is ``reason``; None for an interrupt) that stopped the walks,
    with the exact figures of the walks completed until then (``progress``): what a stopped run
    reports, rather than the last figures its progress callback saw."""

    def __init__(self, progress: Progress, reason: str | None = None) -> None:
        super().__init__()
        self.progress = progress
        self.reason = reason


class _Stop(KeyboardInterrupt):
    """``should_stop`` answered ``reason``, or a worker died without its result: the run
    stops as an interrupt stops it (workers asked for their exact figures, a violation being
    shrunk kept)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _why(stop: KeyboardInterrupt) -> str | None:
    """The reason for a stop (a budget's, a dead worker's), None for an interrupt."""
    return stop.reason if isinstance(stop, _Stop) else None


@attrs.frozen
class SimulationResult:
    """The outcome of a simulation.

    ``trace`` is the (shrunk) path from an initial state to the violating state as
    (action, state) pairs, the first action ``None``; for a step property the last pair is the
    violating step. ``shrink_stopped`` says why shrinking ended early ("interrupted": Ctrl-C or
    a stop signal; else the reason of the caller's budget, ``should_stop``): the trace is then
    the shortest found so far, a real violating trace all the same.
    ``original_length`` is the length in states of the walk prefix that first
    violated a property, before shrinking (which may end at another property's violation).
    A simulation without a violation is never a proof:
    ``verdict`` is then "incomplete".
    """

    seed: int
    walks: int
    steps: int
    seconds: float
    violated: str | None = None
    trace: Trace | None = None
    walk: int | None = None
    original_length: int | None = None
    shrink_seconds: float = 0.0
    shrink_replays: int = 0
    shrink_stopped: str | None = None

    @property
    def verdict(self) -> str:
        return "incomplete" if self.violated is None else "violation"


class _Weights:
    """A walk's weight per action name and per action instance, drawn when first met; negative
    for a left-out one.

    Each weight comes from its own generator seeded by (walk seed, name or ``repr`` of the
    instance), so it does not depend on the order in which actions turn up (nor on
    ``PYTHONHASHSEED``).
    """

    __slots__ = ("_key", "_settings", "_cache", "_instances")

    def __init__(self, key: str, settings: SwarmSettings) -> None:
        self._key = key
        self._settings = settings
        self._cache: dict[str, float] = {}
        self._instances: dict[Any, float] = {}

    def _draw(self, label: str, omit: float) -> float:
        """A weight; negative for a left-out name (its size orders the fallback choice)."""
        rng = random.Random(f"{self._key}/{label}")
        s = self._settings
        omitted = rng.random() < omit
        weight = 2.0 ** -rng.uniform(0, s.weight_range)
        return -weight if omitted else weight

    def __call__(self, name: str) -> float:
        weight = self._cache.get(name)
        if weight is None:
            s = self._settings
            weight = self._cache[name] = self._draw(name, s.omit_by_name.get(name, s.omit))
        return weight

    def instance(self, action: Any) -> float:
        weight = self._instances.get(action)
        if weight is None:
            weight = self._instances[action] = self._draw(
                f"instance/{action!r}", self._settings.omit_instance)
        return weight


class _SoFar:
    """A shrinking's ``progress``: the result with the shortest violating trace found so far,
    passed on to ``on_violation``."""

    def __init__(self, result: SimulationResult,
                 on_violation: Callable[[SimulationResult], None] | None) -> None:
        self.result, self._on_violation = result, on_violation

    def __call__(self, trace: Trace, prop: str) -> None:
        self.result = attrs.evolve(self.result, trace=trace, violated=prop)
        if self._on_violation is not None:
            self._on_violation(self.result)


class _Found(Exception):
    def __init__(self, name: str, trace: Trace) -> None:
        self.name, self.trace = name, trace
        self.steps = len(trace) - 1  # steps the walk itself took (its restart prefix excluded)


REPLACE_DEPTH = 3
"""The longest path ``_replacements`` puts in place of a segment of the trace (one step
longer). Measured with ``raftspec simulate``'s settings on the Figure 8 mutant's walks, seeds 1-5
(benchmarks/bench_simulate.py ``--replace-depth``): 3 takes seeds 2 and 4 from 56 to 55 states
(55, 55, 52, 55, 55) for 0-3.5 s more shrinking (8.1-11.8 s instead of 6.5-8.9 s); 4 gained
nothing more (without partitions, seeds 2, 4 and 5 stay at 56). On the four-server membership
bug it gained nothing and costs some 5.5 s (7.3 s of shrinking instead of 1.7 s, seed 1)."""
REPLACE_NODES = 2_000
"""A bound on each search of ``_replacements``, for systems whose states have many more
successors than Raft's on three servers."""


@searching
def simulate(
    system: System,
    *,
    seed: int = 0,
    depth: int = 300,
    time_limit: float | None = 60.0,
    max_walks: int | None = None,
    first_walk: int = 0,
    walk_stride: int = 1,
    action_name: Callable[[Any], str] = lambda action: str(action),
    settings: SwarmSettings = SwarmSettings(),
    cells: Callable[[Any], Hashable] | None = None,
    shrink: bool = True,
    shrink_time_limit: float = 60.0,
    shrink_nodes: int | None = None,
    replace_depth: int = REPLACE_DEPTH,
    renamings: Renamings | None = None,
    links: Links | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_interval: float = 0.5,
    on_violation: Callable[[SimulationResult], None] | None = None,
    should_stop: Callable[[], str | None] | None = None,
) -> SimulationResult:
    """Run walks ``first_walk, first_walk + walk_stride, ...`` of ``seed`` until one violates a
    property, ``time_limit`` seconds pass or ``max_walks`` walks are done.

    ``depth`` bounds a trace's length in steps. ``first_walk``/``walk_stride`` let independent
    processes share one seed's walks. ``cells``, if given, maps a state to a coarse abstraction of
    it (a protocol's hint, e.g. each server's term, role and log terms without the messages): walks
    then start from the cells met so far instead of an initial state (see ``_Archive``); without it
    every walk starts afresh and walk ``k`` of a seed is the same walk whatever ran before it. On a
    violation the trace is shrunk (for at most ``shrink_time_limit`` seconds; ``shrink=False`` keeps
    it as found; ``renamings`` shrinks modulo symmetry, ``shrink_nodes`` lets its searches grow
    up to that many states and ``replace_depth`` bounds its replacements; see ``shrink_trace``).
    ``links``, if given, maps a step (action, state, next state) to the parties it links, sender
    first (a message's sender and receiver; one or none for a local step): walks then may cut
    one party off for a stretch (``SwarmSettings.partition``).
    A KeyboardInterrupt while shrinking ends the shrinking, not the run: the result is the violation
    with the shortest trace found so far. ``on_violation`` is called with the violation as found,
    then with each shorter trace shrinking finds (what a parent process reports if it is interrupted
    while this one shrinks). ``should_stop`` (the caller's budget, e.g. a memory ceiling) is
    asked between walks every ``progress_interval`` seconds: a reason (not None) stops the walks
    as an interrupt does, with ``Interrupted`` carrying the exact figures and that reason.

    Runs under ``gcpolicy.search_policy``: the cells' traces keep states alive as a search's
    seen set does, and full collections would rescan them all for nothing.
    """
    if depth < 1:
        raise ValueError("depth must be >= 1")
    started = time.perf_counter()
    deadline = None if time_limit is None else started + time_limit
    next_report = started + progress_interval
    walks = total_steps = 0
    k = first_walk
    inits = list(system.init_states())
    archive = None
    if cells is not None:
        archive = _Archive(cells)
        for state in inits:
            archive.offer([(None, state)])
    try:
        while (max_walks is None or walks < max_walks) and (
            deadline is None or time.perf_counter() < deadline
        ):
            config = walk_config(seed, k, depth, settings)
            try:
                steps = _walk(system, inits, config, settings, action_name, deadline, archive,
                              depth, links)
                walks, total_steps = walks + 1, total_steps + steps   # no signal between the two
            except _Found as found:
                walks += 1
                result = SimulationResult(
                    seed=seed, walks=walks, steps=total_steps + found.steps,
                    seconds=time.perf_counter() - started, violated=found.name, trace=found.trace,
                    walk=k, original_length=len(found.trace))
                if on_violation is not None:
                    on_violation(result)
                if not shrink:
                    return result
                return _shrunk(system, result, on_violation, time_limit=shrink_time_limit,
                               cells=cells, renamings=renamings, nodes=shrink_nodes,
                               replace_depth=replace_depth)
            k += walk_stride
            if time.perf_counter() >= next_report:
                next_report = time.perf_counter() + progress_interval
                if on_progress is not None:
                    on_progress(Progress(walks, total_steps, time.perf_counter() - started))
                if should_stop is not None and (reason := should_stop()) is not None:
                    raise _Stop(reason)
    except KeyboardInterrupt as stop:   # the walks completed so far, exactly
        raise Interrupted(Progress(walks, total_steps, time.perf_counter() - started),
                          _why(stop)) from stop
    return SimulationResult(seed=seed, walks=walks, steps=total_steps,
                            seconds=time.perf_counter() - started)


def _shrunk(system: System, result: SimulationResult,
            on_violation: Callable[[SimulationResult], None] | None, *, time_limit: float,
            cells: Callable[[Any], Hashable] | None, renamings: Renamings | None,
            nodes: int | None, replace_depth: int) -> SimulationResult:
    """``result`` with its trace shrunk; a KeyboardInterrupt while shrinking ends the
    shrinking, not the run: the shortest trace so far."""
    started = time.perf_counter()
    so_far = _SoFar(result, on_violation)
    try:
        trace, prop, replays = shrink_trace(
            system, result.trace, time_limit=time_limit, cells=cells, renamings=renamings,
            max_shortcut_nodes=nodes, replace_depth=replace_depth, progress=so_far)
    except KeyboardInterrupt:
        return attrs.evolve(so_far.result, shrink_stopped="interrupted",
                            shrink_seconds=time.perf_counter() - started)
    return attrs.evolve(result, violated=prop, trace=trace,
                        shrink_seconds=time.perf_counter() - started, shrink_replays=replays)


def simulate_parallel(
    make_system: Callable[[], System],
    workers: int,
    *,
    seed: int = 0,
    time_limit: float | None = 60.0,
    max_walks: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_interval: float = 0.5,
    should_stop: Callable[[], str | None] | None = None,
    **options: Any,
) -> SimulationResult:
    """``simulate`` in ``workers`` processes: worker ``w`` runs walks ``w, w + workers, ...`` of
    the same seed (together, the walks one process would run, in another order) and shrinks
    what it finds; the first violation reported ends the others. Interrupted (KeyboardInterrupt)
    or stopped by ``should_stop`` (asked here, in this process, as ``simulate`` asks it) while a
    worker shrinks a violation, it returns that violation with the shortest trace the worker
    had reported; otherwise it raises ``Interrupted`` with the workers' exact figures.

    ``make_system`` builds the system in each worker (a forked copy of this process). Which
    worker finds a violation first depends on timing, but the violating walk is named in the
    result; without ``cells`` it is reproducible on its own (``first_walk=walk, max_walks=1``);
    with ``cells`` each worker keeps its own archive, so a walk depends on its worker's earlier
    walks.
    """
    if workers == 1:
        return simulate(make_system(), seed=seed, time_limit=time_limit, max_walks=max_walks,
                        on_progress=on_progress, progress_interval=progress_interval,
                        should_stop=should_stop, **options)
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    share = None if max_walks is None else -(-max_walks // workers)
    processes = [
        context.Process(
            target=_worker, daemon=True,
            args=(make_system, queue, w, workers, seed, time_limit, share, options),
        )
        for w in range(workers)
    ]
    counts = {w: (0, 0) for w in range(workers)}   # (walks, steps) of each worker

    def so_far() -> Progress:
        return Progress(sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values()),
                        time.perf_counter() - started)

    done: set[int] = set()  # workers whose result is in
    found: SimulationResult | None = None
    shrinking: SimulationResult | None = None  # a violation whose worker is shrinking it
    next_report = started + progress_interval
    with _DeferredStops() as stops:    # a stop while the workers start: raised once they run
        try:
            try:
                for process in processes:
                    process.start()
            except OSError as err:   # out of processes or memory: a user's --workers
                raise RaftspecError(f"cannot start {workers:,} worker processes "
                                    f"({err.strerror or err}); use fewer",
                                    field="--workers") from None
            while len(done) < workers and found is None:
                stops.check()
                try:
                    kind, w, payload = queue.get(timeout=min(progress_interval, STOP_POLL))
                except Empty:
                    stops.check()   # a stop signal sent to the whole group kills the workers
                    _dead_without_result(processes, done)
                    kind, w, payload = "none", -1, None
                if kind == "violation":
                    if shrinking is None or shrinking.walk == payload.walk:
                        shrinking = payload
                elif kind == "progress":
                    counts[w] = payload
                elif kind == "error":
                    raise RuntimeError(f"simulation worker {w} failed:\n{payload}")
                elif kind == "result":
                    done.add(w)
                    counts[w] = (payload.walks, payload.steps)
                    if payload.violated is not None:
                        found = payload
                if time.perf_counter() >= next_report:
                    next_report = time.perf_counter() + progress_interval
                    if on_progress is not None:
                        on_progress(so_far())
                    if should_stop is not None and (reason := should_stop()) is not None:
                        raise _Stop(reason)
        except KeyboardInterrupt as stop:
            running = {w for w, p in enumerate(processes) if p.is_alive()} - done
            final = _stop_workers(processes, queue, running, counts)
            if final is not None and final.violated is not None:
                found = final     # a worker shrinking its violation: the shortest trace it had
                if _why(stop) is not None and final.shrink_stopped == "interrupted":
                    found = attrs.evolve(final, shrink_stopped=_why(stop))   # (asked by us)
            elif shrinking is not None:
                found = attrs.evolve(shrinking, shrink_stopped=_why(stop) or "interrupted")
            else:
                raise Interrupted(so_far(), _why(stop)) from stop
        finally:
            _end(processes)
    total = so_far()
    if found is None:
        return SimulationResult(seed=seed, walks=total.walks, steps=total.steps,
                                seconds=total.seconds)
    return attrs.evolve(found, walks=total.walks, steps=total.steps)


def _dead_without_result(processes: list[Any], done: set[int]) -> None:
    """Stop the run (``_Stop``) if a worker has exited without sending its result: killed from
    outside (the OOM killer, a user). Asked when the queue is empty, so a worker that sent its
    result and exited has had it read. (Before, the others ran on to their time limit and the
    run then ended as an internal error, "every simulation worker died", their figures lost.)"""
    for w, process in enumerate(processes):
        if w not in done and process.exitcode is not None:
            raise _Stop(f"simulation worker {w} died (exit code {process.exitcode})")


STOP_POLL = 0.1
"""Seconds between an interrupted ``simulate_parallel``'s checks for a stop signal while it
waits for its workers' messages (see ``_DeferredStops``)."""


class _DeferredStops:
    """While ``simulate_parallel`` reads its workers' queue, a stop signal (Ctrl-C; the CLI's
    SIGTERM) is recorded, and ``check`` raises it between messages, as the signal's own handler
    would have. Raised inside ``Queue.get``, the KeyboardInterrupt could leave a message half
    read, so that the next read waited for ever for bytes that were never coming, or leave the
    queue's read lock held: a CI run hung there for good. Only signals whose handler raises (a
    Python callable) are deferred, and only in the main thread (the only one that can set
    handlers); elsewhere the KeyboardInterrupt lands where it lands, as before. A signal that
    comes once the workers are done is dropped: the run is over, its result stands."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> _DeferredStops:
        self.pending: int | None = None
        self._previous: dict[int, Callable[[int, Any], Any]] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                handler = signal.getsignal(sig)
                if callable(handler):
                    self._previous[sig] = handler
                    signal.signal(sig, self._record)
        return self

    def _record(self, signum: int, frame: Any) -> None:
        if self.pending is None:
            self.pending = signum

    def check(self) -> None:
        """Call the handler of the signal recorded, if any (it raises KeyboardInterrupt)."""
        if self.pending is not None:
            signum, self.pending = self.pending, None
            self._previous[signum](signum, None)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _end(processes: list[Any]) -> None:
    """End the workers still running: SIGTERM, then SIGKILL for one that outlives it a second."""
    processes = [p for p in processes if p.pid is not None]   # started
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(1.0)
        if process.is_alive():
            process.kill()
            process.join()


STOP_SIGNAL = signal.SIGUSR1
"""What ``simulate_parallel`` sends its workers when it is interrupted: each answers with the
exact figures of the walks it completed (or, shrinking, with its shortest trace so far)."""
STOP_PATIENCE = 5.0
"""Seconds an interrupted ``simulate_parallel`` waits for its workers' answers before it ends
them (a worker answers within one step of its walk, or one replay of its shrinking)."""


def _stop_workers(processes: list[Any], queue: Any, running: set[int],
                  counts: dict[int, tuple[int, int]]) -> SimulationResult | None:
    """Ask the ``running`` workers to stop and collect their answers into ``counts``; the
    result of a worker that was shrinking a violation, if any."""
    for w in running:
        with contextlib.suppress(ProcessLookupError):  # ended meanwhile
            os.kill(processes[w].pid, STOP_SIGNAL)
    found = None
    deadline = time.monotonic() + STOP_PATIENCE
    while running and time.monotonic() < deadline:
        try:
            kind, w, payload = queue.get(timeout=0.1)
        except Empty:
            running = {w for w in running if processes[w].is_alive()}
            continue
        if w not in running:   # it has answered already
            continue
        if kind == "stopped":
            if payload is not None:
                counts[w] = payload
            running.discard(w)
        elif kind == "result":
            counts[w] = (payload.walks, payload.steps)
            running.discard(w)
            if payload.violated is not None and found is None:
                found = payload
        elif kind == "progress":
            counts[w] = payload
    return found


def _stop_once(signum: int, frame: Any) -> None:
    """A worker's ``STOP_SIGNAL`` handler: a KeyboardInterrupt, once (the parent asks once; a
    second one could land while the worker answers the first)."""
    signal.signal(signum, signal.SIG_IGN)
    raise KeyboardInterrupt


def _worker(
    make_system: Callable[[], System], queue: Any, first: int, stride: int, seed: int,
    time_limit: float | None, max_walks: int | None, options: dict[str, Any],
) -> None:
    """One process of ``simulate_parallel``: its share of the walks, reported on ``queue``;
    ``STOP_SIGNAL`` stops it, reporting the figures of the walks it completed. Ctrl-C is the
    parent's to handle (it asks each worker with ``STOP_SIGNAL``), SIGTERM ends a worker: the
    handlers forked from the parent (its deferred stops among them) are not the worker's."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(STOP_SIGNAL, _stop_once)
    answer: tuple = ("stopped", first, None)  # stopped before its walks began or after them
    try:
        try:
            result = simulate(
                make_system(), seed=seed, time_limit=time_limit, max_walks=max_walks,
                first_walk=first, walk_stride=stride, progress_interval=1.0,
                on_progress=lambda p: _put(queue, ("progress", first, (p.walks, p.steps))),
                on_violation=lambda r: _put(queue, ("violation", first, r)),
                **options,
            )
            answer = ("result", first, result)
        except Interrupted as stop:
            answer = ("stopped", first, (stop.progress.walks, stop.progress.steps))
        except Exception:  # reported to the parent, which raises it
            answer = ("error", first, traceback.format_exc())
    except KeyboardInterrupt:   # the stop came outside the walks: the answer as it stands
        pass
    # the answer is final: a stop asked from now on (the parent asks every worker still
    # running) must not land in the put, nor in the exit's joining of the queue's thread
    signal.signal(STOP_SIGNAL, signal.SIG_IGN)
    queue.put(answer)


def _put(queue: Any, message: tuple) -> None:
    """``queue.put`` with ``STOP_SIGNAL`` held back until it returns: the KeyboardInterrupt
    it raises then lands in the walks, not inside the queue's own code. (The queue's feeder
    thread, started by the first put, inherits the blocked signal, so the walking thread is
    the only one that takes it.)"""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {STOP_SIGNAL})
    try:
        queue.put(message)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def walk_config(seed: int, walk: int, depth: int, settings: SwarmSettings) -> WalkConfig:
    """The configuration of walk ``walk`` of ``seed`` (its depth drawn from its own seed)."""
    rng = random.Random(f"{seed}/{walk}/depth")
    low = max(1, round(depth * settings.min_depth_fraction))
    config = WalkConfig(seed=seed, walk=walk, depth=rng.randint(low, depth),
                        escape=rng.choice(settings.escape))
    cut = random.Random(f"{seed}/{walk}/partition")  # its own generator: the rest unchanged
    if settings.partition > 0 and cut.random() < settings.partition:
        start = cut.randint(0, int(config.depth * settings.partition_start))
        config = attrs.evolve(config, cut_from=start,
                              cut_until=start + cut.randint(
                                  1, max(1, round(config.depth * settings.partition_length))))
    return config


class _Archive:
    """The cells met so far, each with the shortest trace known to reach it: walks restart
    from a cell chosen with weight 1/sqrt(1 + times chosen), so that rarely reached cells are
    extended first (Go-Explore's "first return, then explore", Ecoffet et al., Nature 2021).

    A bug that needs several rare events in a row (Figure 8: a leader goes quiet, twice, then
    another commits an old entry) then costs the sum of the waits for each event, not their
    product: each event's cell, once reached, is kept.
    """

    def __init__(self, cell_of: Callable[[Any], Hashable]) -> None:
        self._cell_of = cell_of
        self._index: dict[Hashable, int] = {}
        self._traces: list[tuple[tuple[Any, Any], ...]] = []
        self._chosen: list[int] = []

    def __len__(self) -> int:
        return len(self._traces)

    def offer(self, trace: Trace) -> None:
        """Keep ``trace`` as its last state's cell's way in, if that cell is new or the trace
        is shorter than the one kept."""
        cell = self._cell_of(trace[-1][1])
        i = self._index.get(cell)
        if i is None:
            self._index[cell] = len(self._traces)
            self._traces.append(tuple(trace))
            self._chosen.append(0)
        elif len(trace) < len(self._traces[i]):
            self._traces[i] = tuple(trace)

    def pick(self, rng: random.Random) -> Trace:
        weights = [1.0 / math.sqrt(1 + c) for c in self._chosen]
        i = rng.choices(range(len(weights)), weights)[0]
        self._chosen[i] += 1
        return list(self._traces[i])


def _walk(
    system: System,
    inits: Sequence[Any],
    config: WalkConfig,
    settings: SwarmSettings,
    action_name: Callable[[Any], str],
    deadline: float | None,
    archive: _Archive | None = None,
    max_length: int | None = None,
    links: Links | None = None,
) -> int:
    """One walk; returns its number of steps, or raises _Found with the violating prefix."""
    rng = random.Random(f"{config.seed}/{config.walk}")
    trace: Trace = []
    if archive is not None:
        trace = archive.pick(random.Random(f"{config.seed}/{config.walk}/start"))
        if max_length is not None:
            config = attrs.evolve(
                config, depth=max(0, min(config.depth, max_length + 1 - len(trace))))
    start = len(trace)
    try:
        return _random_walk(system, inits, config, settings, action_name, deadline, rng, trace,
                            archive, links if config.cut_until > config.cut_from else None)
    except _Found as found:
        found.steps = len(found.trace) - max(start, 1)
        raise


def _random_walk(
    system: System,
    inits: Sequence[Any],
    config: WalkConfig,
    settings: SwarmSettings,
    action_name: Callable[[Any], str],
    deadline: float | None,
    rng: random.Random,
    trace: Trace,
    archive: _Archive | None = None,
    links: Links | None = None,
) -> int:
    """The random walk of ``_walk``, appending to ``trace`` (from its last state if it is not
    empty; that state has been checked). With ``links``, the walk cuts a party off during
    its partition's stretch: a party drawn (from its own generator) among the senders of the
    enabled actions that link two parties, when the stretch begins or, if there are none, at
    the first step where there are (a party about to talk, say a leader: cutting off a
    server with nothing to say changes little)."""
    weights = _Weights(f"{config.seed}/{config.walk}", settings)
    invariants = list(system.invariants.items())
    step_properties = list(system.step_properties.items())
    steps, constraint, fingerprint = system.steps, system.constraint, system.fingerprint

    if trace:
        state = trace[-1][1]
    else:
        state = inits[rng.randrange(len(inits))] if len(inits) > 1 else inits[0]
        trace.append((None, state))
        for name, holds in invariants:
            if not holds(state):
                raise _Found(name, trace)
    visited = {fingerprint(state)}
    stale = 0
    victim: Hashable | None = None
    cut_rng = random.Random(f"{config.seed}/{config.walk}/victim")
    for n in range(config.depth):
        if deadline is not None and n % 64 == 63 and time.perf_counter() >= deadline:
            return n
        by_name: dict[str, list[tuple[Any, Any]]] = {}
        for action, nxt in steps(state):
            if nxt is state or not constraint(nxt) or nxt == state:
                continue
            name = action_name(action)
            group = by_name.get(name)
            if group is None:
                by_name[name] = [(action, nxt)]
            else:
                group.append((action, nxt))
        if not by_name:
            return n
        if links is not None and config.cut_from <= n < config.cut_until:
            if victim is None:
                parties = sorted({parties[0] for group in by_name.values() for a, s in group
                                  if len(set(parties := links(a, state, s))) > 1})
                if parties:
                    victim = cut_rng.choice(parties)
            if victim is not None:
                by_name = _cut_off(by_name, links, victim, state)
        action, nxt = _choose(by_name, weights, rng)
        fp = fingerprint(nxt)
        if fp in visited and config.escape and rng.random() < config.escape:
            fresh: dict[str, list[tuple[Any, Any]]] = {}
            for name, group in by_name.items():
                kept = [(a, s) for a, s in group if fingerprint(s) not in visited]
                if kept:
                    fresh[name] = kept
            if fresh:
                action, nxt = _choose(fresh, weights, rng)
                fp = fingerprint(nxt)
        trace.append((action, nxt))
        for name, holds in step_properties:
            if not holds(state, nxt):
                raise _Found(name, trace)
        for name, holds in invariants:
            if not holds(nxt):
                raise _Found(name, trace)
        state = nxt
        if archive is not None:
            archive.offer(trace)
        if fp in visited:
            stale += 1
            if stale >= settings.patience:
                return n + 1
        else:
            visited.add(fp)
            stale = 0
    return config.depth


def _cut_off(by_name: dict[str, list[tuple[Any, Any]]], links: Links, victim: Hashable,
             state: Any) -> dict[str, list[tuple[Any, Any]]]:
    """The enabled steps that do not link ``victim`` to another party, if there are any, else
    all of them (a partition delays what nothing else can replace, as a left-out action)."""
    kept: dict[str, list[tuple[Any, Any]]] = {}
    for name, group in by_name.items():
        rest = [(a, s) for a, s in group
                if victim not in (parties := links(a, state, s)) or len(set(parties)) < 2]
        if rest:
            kept[name] = rest
    return kept or by_name


def _positive(weights: list[float]) -> list[float]:
    """Choice weights: the kept entries' if any, else the left-out ones' (stored negative)."""
    if any(w > 0 for w in weights):
        return [w if w > 0 else 0.0 for w in weights]
    return [-w if w < 0 else 1.0 for w in weights] if any(weights) else [1.0] * len(weights)


def _choose(
    by_name: dict[str, list[tuple[Any, Any]]], weights: _Weights, rng: random.Random
) -> tuple[Any, Any]:
    """An action name by the walk's weights, then one of its instances."""
    names = sorted(by_name)
    group = by_name[rng.choices(names, _positive([weights(name) for name in names]))[0]]
    if len(group) == 1:
        return group[0]
    return rng.choices(group, _positive([weights.instance(a) for a, _ in group]))[0]


# --- shrinking ---------------------------------------------------------------------------------


def replay(
    system: System,
    init: Any,
    actions: Iterable[Any],
    *,
    strict: bool = False,
) -> tuple[Trace, str] | None:
    """The trace that ``actions`` produce from ``init`` through ``steps`` within the constraint,
    cut at the first violation of any property, and that property; None if none is violated.

    Not strict: an action that is not enabled (or leaves the constraint, or changes nothing) is
    skipped. Strict: such an action makes the replay fail (None).
    """
    invariants = list(system.invariants.items())
    step_properties = list(system.step_properties.items())
    trace: Trace = [(None, init)]
    for name, holds in invariants:
        if not holds(init):
            return trace, name
    state = init
    for action in actions:
        nxt = _successor(system, state, action)
        if nxt is None:
            if strict:
                return None
            continue
        trace.append((action, nxt))
        if (name := _violated(invariants, step_properties, state, nxt)) is not None:
            return trace, name
        state = nxt
    return None


def _violated(invariants: list, step_properties: list, state: Any, nxt: Any) -> str | None:
    """The first property the step from ``state`` to ``nxt`` violates (step properties
    first, as BFS checks them), or None."""
    for name, holds in step_properties:
        if not holds(state, nxt):
            return name
    for name, holds in invariants:
        if not holds(nxt):
            return name
    return None


def _successor(system: System, state: Any, action: Any) -> Any | None:
    """The state ``action`` leads to from ``state``, if enabled, within the constraint and not
    a stuttering step."""
    for candidate, nxt in system.steps(state):
        if candidate == action:
            if nxt is state or nxt == state or not system.constraint(nxt):
                return None
            return nxt
    return None


def violates(system: System, trace: Trace, prop: str) -> bool:
    """Whether ``trace`` is a real trace of ``system`` (each step one of ``steps`` within the
    constraint, from an initial state) whose last state (invariant) or last step (step property)
    violates ``prop``, and no earlier state or step violates any property."""
    init = trace[0][1]
    if trace[0][0] is not None or not any(init == s for s in system.init_states()):
        return False
    replayed = replay(system, init, [a for a, _ in trace[1:]], strict=True)
    return replayed is not None and replayed[1] == prop and len(replayed[0]) == len(trace) and all(
        s == t for (_, s), (_, t) in zip(replayed[0], trace, strict=True)
    )


def shrink_trace(
    system: System,
    trace: Trace,
    *,
    time_limit: float = 60.0,
    cells: Callable[[Any], Hashable] | None = None,
    shortcut_nodes: int = 400,
    max_shortcut_nodes: int | None = None,
    shortcut_growth: int = 4,
    renamings: Renamings | None = None,
    replace_depth: int = REPLACE_DEPTH,
    progress: Callable[[Trace, str], None] | None = None,
) -> tuple[Trace, str, int]:
    """A trace no longer than ``trace`` that violates a property, that property, and the number
    of replays it took.

    A candidate counts when it violates any property, as a walk or BFS would report it: the
    first property violated along it (so a shorter way to another property's violation wins).
    Rounds of two passes, repeated until a round gains nothing: deletion (loop cuts, then runs
    of steps, lengths halving from half the trace down to one), then shortcuts (``_shortcuts``:
    a small breadth-first search from each state of the trace for a shorter way to a later
    state, to a state as good as a later one, or to a violation). Deletion alone stops in local
    minima that a shortcut leaves: a detour that reaches the same situation by other steps
    (say, an election won with other votes) cannot be deleted step by step, since no part of
    it can go alone. With ``renamings`` (a system whose servers are interchangeable), a shortcut
    may also reach a renaming of a later state, or of its cell, and go on with the rest of the trace
    renamed: an election won by another server than in the shortest trace is then no local minimum
    either. With ``max_shortcut_nodes`` (none: no growth), when a round gains nothing the searches'
    bound grows by ``shortcut_growth`` (``shortcut_nodes``, then 4 times that, ...) up to
    ``max_shortcut_nodes``, and rounds go on; shrinking ends when a round at the largest bound gains
    nothing. The first rounds are the small searches' own, so a larger ceiling never gives a longer
    trace; it costs one failing round at each bound (``DEEP_SHRINK_NODES`` says what it gained).
    When a round at the largest bound gains nothing, ``_replacements`` (paths of up to
    ``replace_depth`` steps; 0: never) tries every short path in place of a segment one step
    longer; a gain starts a new round, else shrinking ends. It comes last, so it never gives a
    longer trace than shrinking without it.
    Deterministic: the searches are bounded by counts, and ``time_limit`` is only a safety net.
    ``progress`` is called with each shorter trace found (a real, violating trace), so that a caller
    interrupted while shrinking still has the best one so far.
    """
    deadline = time.perf_counter() + time_limit
    replayed = replay(system, trace[0][1], [a for a, _ in trace[1:]])
    if replayed is None or len(replayed[0]) > len(trace):
        raise ValueError("the trace does not violate a property when replayed")
    best, prop = replayed
    work = 1
    searched: set[int] = set()
    replaced: set[int] = set()  # the suffixes from which _replacements found nothing
    targets = _Targets(system, cells, renamings)
    nodes = shortcut_nodes
    ceiling = shortcut_nodes if max_shortcut_nodes is None else max_shortcut_nodes
    while time.perf_counter() < deadline:
        before = len(best)
        best, prop, replays = _delete_steps(system, best, prop, deadline, progress)
        work += replays
        if nodes > 0:
            best, prop, replays = _shortcuts(system, best, prop, deadline, cells,
                                             nodes, searched, targets, progress)
            work += replays
        if len(best) >= before:
            if nodes > 0 and shortcut_growth > 1 and nodes * shortcut_growth <= ceiling:
                nodes *= shortcut_growth
                searched = set()  # found nothing within the smaller bound only
                continue
            if replace_depth <= 0:
                break
            best, prop, replays = _replacements(system, best, prop, deadline, replaced,
                                                replace_depth, progress)
            work += replays
            if len(best) >= before:
                break
    if not violates(system, best, prop):  # every step was produced by steps(); check anyway
        raise AssertionError("shrunk trace does not replay to a violation")
    return best, prop, work


class Renamings(Protocol):
    """What shrinking modulo symmetry needs of a system whose servers are interchangeable
    (``checker.symmetry.Renaming`` is one): its renamings, the identity first, and a renaming
    applied to a state and to an action. Nothing here knows what a renaming renames."""

    def renamings(self) -> list[Any]: ...
    def state(self, state: Any, renaming: Any) -> Any: ...
    def action(self, action: Any, renaming: Any) -> Any: ...


DEEP_SHRINK_NODES = 6_400
"""The ``max_shortcut_nodes`` of ``raftspec simulate`` (``shrink_trace``'s own default is no
growth: 400 states per search). Measured on the Figure 8 mutant's first violating walks, seeds
1-5 with and without partitions (benchmarks/bench_simulate.py): growing 400 -> 1,600 -> 6,400
shortened six of ten by 1-4 states (to 52-56 instead of 53-59), in 12.7-16.5 s of shrinking
instead of 1.7-4.4 s (load 0.1-2.6; README's table); up to 25,600 shortened one of three others
by one state, in 64-66 s."""


RENAMED_TRIES = 1
"""Renamings tried per search state whose cell is a renaming of a later state's cell (when its
own cell is not that cell): each try replays the rest of the trace. Measured (shrink of one
walk): one keeps the only gain seen (Figure 8, seed 5: 57 -> 56 states), and bounds the cost
on four servers (24 renamings; the membership bug's walk: 2.2 times the shrink time without
renamings with one try, to the same length)."""
MAX_RENAMINGS = 6
"""Shrinking uses renamings only when a system has at most this many (three servers): on the
membership bug (four servers, 24) they doubled the shrink time without shortening the trace."""


class _Targets:
    """The later states of a trace a shortcut may aim at, each also under every renaming:
    the renamed states' fingerprints and cells, cached across searches (by the state's
    fingerprint and the renaming), since a trace changes little between searches."""

    def __init__(self, system: System, cells: Callable[[Any], Hashable] | None,
                 renamings: Renamings | None) -> None:
        self._fingerprint = system.fingerprint
        self._cells = cells
        self._renamings = renamings
        perms = renamings.renamings() if renamings is not None else []
        self._perms = [None] + (perms[1:] if len(perms) <= MAX_RENAMINGS else [])
        self._cache: dict[tuple[Any, int], tuple[Any, Any, Hashable]] = {}

    def renamed(self, state: Any, fp: Any, k: int) -> tuple[Any, Any, Hashable]:
        """(state, fingerprint, cell) of ``state`` under renaming ``k`` (0: the identity)."""
        key = (fp, k)
        hit = self._cache.get(key)
        if hit is None:
            if k == 0:
                renamed, rfp = state, fp
            else:
                assert self._renamings is not None
                renamed = self._renamings.state(state, self._perms[k])
                rfp = self._fingerprint(renamed)
            cell = self._cells(renamed) if self._cells is not None else None
            hit = self._cache[key] = (renamed, rfp, cell)
        return hit

    @property
    def count(self) -> int:
        return len(self._perms)

    def actions(self, best: Trace, j: int, k: int) -> list[Any]:
        """The actions after ``best[j]``, under renaming ``k``."""
        if k == 0:
            return [a for a, _ in best[j + 1:]]
        assert self._renamings is not None
        return [self._renamings.action(a, self._perms[k]) for a, _ in best[j + 1:]]


def _from_each_state(
    system: System,
    best: Trace,
    prop: str,
    deadline: float,
    searched: set[int],
    search: Callable[[Trace, list[Any], str, int, set], tuple[tuple[Trace, str] | None, int]],
    progress: Callable[[Trace, str], None] | None = None,
) -> tuple[Trace, str, int]:
    """Run ``search(best, fingerprints, prop, i, memo)`` from each state ``best[i]`` in turn
    for a shorter trace (and its property), or None, and the number of replays it tried. Each
    gain restarts from the same ``i`` with a fresh ``memo`` (a set the search may fill with what
    it found useless in this trace). ``searched`` holds the suffixes from which a search found
    nothing (its outcome depends on the suffix only), across passes."""
    replays = 0
    i = 0
    memo: set = set()
    fingerprints = [system.fingerprint(state) for _, state in best]
    while i < len(best) - 2 and time.perf_counter() < deadline:
        suffix = hash(tuple(fingerprints[i:]))
        if suffix in searched:
            i += 1
            continue
        found, tried = search(best, fingerprints, prop, i, memo)
        replays += tried
        if found is not None:
            best, prop = found
            if progress is not None:
                progress(best, prop)
            memo = set()
            fingerprints = [system.fingerprint(state) for _, state in best]
        else:
            searched.add(suffix)
            i += 1
    return best, prop, replays


def _shortcuts(
    system: System,
    best: Trace,
    prop: str,
    deadline: float,
    cells: Callable[[Any], Hashable] | None,
    max_nodes: int,
    searched: set[int],
    targets: _Targets,
    progress: Callable[[Trace, str], None] | None = None,
) -> tuple[Trace, str, int]:
    """Replace segments of ``best`` by shorter ones: from each state ``best[i]``, a
    breadth-first search (at most ``max_nodes`` states) for a state reached in fewer steps than
    along the trace. A search state counts when it is a later state ``best[j]`` itself (the
    rest of the trace then replays unchanged), when it violates a property (the trace ends
    there), or, with ``cells``, when it is in the same cell as a later state and the rest of the
    trace, replayed from it, still violates a property (a state "as good as" ``best[j]`` for
    the rest of the trace). With renamings (modulo symmetry), a search state also counts when
    it is a renaming of a later state (or in a renaming's cell): the rest of the trace is then
    replayed renamed the same way, which a symmetric system follows step for step (replayed,
    not assumed). Each gain restarts the search from the same ``i``; ``searched`` as in
    ``_from_each_state``."""
    def search(best: Trace, fingerprints: list[Any], prop: str, i: int,
               failed: set) -> tuple[tuple[Trace, str] | None, int]:
        return _shortcut_from(system, best, fingerprints, prop, i, deadline, cells, max_nodes,
                              failed, targets)
    return _from_each_state(system, best, prop, deadline, searched, search, progress)


def _replacements(
    system: System,
    best: Trace,
    prop: str,
    deadline: float,
    searched: set[int],
    max_depth: int,
    progress: Callable[[Trace, str], None] | None = None,
) -> tuple[Trace, str, int]:
    """Replace a segment of ``d + 1`` steps of ``best`` by any path of ``d`` steps (``d`` up to
    ``max_depth``) from the state before it, the rest of the trace replayed after the path
    (actions no longer enabled skipped), when that still violates a property. This leaves the
    local minima that ``_shortcuts`` cannot: a segment whose shorter replacement leads to a
    state that is neither a later state nor in its cell, yet from which the rest of the trace
    still works (say, an election won with the candidate's own vote instead of a peer's, the
    peer's term left behind until a later message moves it on). Every path of the search is
    tried, so it stays shallow; ``searched`` as in ``_from_each_state``."""
    def search(best: Trace, fingerprints: list[Any], prop: str, i: int,
               memo: set) -> tuple[tuple[Trace, str] | None, int]:
        return _replacement_from(system, best, i, max_depth, deadline)
    return _from_each_state(system, best, prop, deadline, searched, search, progress)


def _replacement_from(system: System, best: Trace, i: int, max_depth: int,
                      deadline: float) -> tuple[tuple[Trace, str] | None, int]:
    """One search of ``_replacements`` from ``best[i]``: a shorter trace and its property, or
    None; and the number of replays tried."""
    fingerprint = system.fingerprint
    invariants = list(system.invariants.items())
    step_properties = list(system.step_properties.items())
    n = len(best)
    start = best[i][1]
    seen = {fingerprint(start)}
    frontier: list[tuple[Any, Trace]] = [(start, [])]
    replays = nodes = 0
    for depth in range(1, max_depth + 1):
        j = i + depth + 1  # best[i + 1 .. j] (depth + 1 steps) replaced by a path of depth
        if j >= n - 1:
            break
        rest = [a for a, _ in best[j + 1:]]
        nxt_frontier = []
        for state, path in frontier:
            for action, nxt, _ in _new_steps(system, state, seen):
                nodes += 1
                walked = path + [(action, nxt)]
                if (name := _violated(invariants, step_properties, state, nxt)) is not None:
                    return (best[: i + 1] + walked, name), replays
                replays += 1
                tail = replay(system, nxt, rest)
                if tail is not None and i + depth + len(tail[0]) < n:
                    return (best[: i + 1] + walked + tail[0][1:], tail[1]), replays
                nxt_frontier.append((nxt, walked))
                if nodes >= REPLACE_NODES or time.perf_counter() >= deadline:
                    return None, replays
        frontier = nxt_frontier
    return None, replays


def _shortcut_from(
    system: System,
    best: Trace,
    fingerprints: list[Any],
    prop: str,
    i: int,
    deadline: float,
    cells: Callable[[Any], Hashable] | None,
    max_nodes: int,
    failed: set[tuple[Any, int, int]],
    targets: _Targets,
) -> tuple[tuple[Trace, str] | None, int]:
    """One search of ``_shortcuts`` from ``best[i]``: a shorter trace and its property, or
    None; and the number of replays tried."""
    fingerprint = system.fingerprint
    invariants = list(system.invariants.items())
    step_properties = list(system.step_properties.items())
    n = len(best)
    exact: dict[Any, tuple[int, int]] = {}  # fingerprint -> (j, renaming), the latest j first
    by_cell: dict[Hashable, list[tuple[int, int]]] = {}  # cell -> (j, renaming), latest first
    for j in range(n - 1, i, -1):
        for k in range(targets.count):
            _, rfp, cell = targets.renamed(best[j][1], fingerprints[j], k)
            exact.setdefault(rfp, (j, k))
            if cells is not None and j > i + 1:
                by_cell.setdefault(cell, []).append((j, k))
    replays = 0

    def renaming_to(state: Any, fp: Any, after: int) -> tuple[int, int]:
        """(j, k): a later state ``best[j]`` (j > ``after``) that renaming k makes into
        ``state`` (of fingerprint ``fp``), or (-1, -1)."""
        j, k = exact.get(fp, (-1, -1))
        if j > after and targets.renamed(best[j][1], fingerprints[j], k)[0] == state:
            return j, k
        return -1, -1

    def renamed_rest(state: Any, j: int, k: int, length: int) -> tuple[Trace, str] | None:
        """The rest of the trace after ``best[j]``, renamed, replayed from ``state`` (reached
        in ``length`` states), if it still violates a property and the whole is shorter."""
        nonlocal replays
        replays += 1
        tail = replay(system, state, targets.actions(best, j, k))
        if tail is not None and length + len(tail[0]) - 1 < n:
            return tail
        return None

    start = best[i][1]
    start_fp = fingerprint(start)
    # the start itself a renaming of a later state: a loop modulo symmetry
    j, k = renaming_to(start, start_fp, i)
    if k > 0:
        tail = renamed_rest(start, j, k, i + 1)
        if tail is not None:
            return (best[: i + 1] + tail[0][1:], tail[1]), replays
    seen = {start_fp}
    parents: dict[Any, tuple[Any, Any]] = {}  # fingerprint -> (parent's, (action, state))
    frontier = [(start_fp, start)]
    nodes = depth = 0
    while frontier and nodes < max_nodes and time.perf_counter() < deadline:
        depth += 1
        if i + depth >= n - 1:  # no shorter way to the end is possible any more
            return None, replays
        nxt_frontier = []
        for fp, state in frontier:
            for action, nxt, nfp in _new_steps(system, state, seen):
                parents[nfp] = (fp, (action, nxt))
                nodes += 1
                violated = _violated(invariants, step_properties, state, nxt)
                if violated is not None:
                    return (best[: i + 1] + _path(parents, nfp), violated), replays
                j, k = renaming_to(nxt, nfp, i + depth)
                if k >= 0:
                    if k == 0:  # the rest replays unchanged
                        return (best[: i + 1] + _path(parents, nfp) + best[j + 1:], prop), \
                            replays
                    tail = renamed_rest(nxt, j, k, i + depth + 1)
                    if tail is not None:
                        return (best[: i + 1] + _path(parents, nfp) + tail[0][1:],
                                tail[1]), replays
                if cells is not None:
                    candidates = by_cell.get(cells(nxt), ())
                    latest = candidates[0][0] if candidates else -1
                    renamed_tries = RENAMED_TRIES
                    for j, k in candidates:
                        if j != latest or j <= i + depth:
                            break
                        if (nfp, j, k) in failed:
                            continue
                        if k > 0:
                            renamed_tries -= 1
                            if renamed_tries < 0:
                                break
                        if k == 0:
                            replays += 1
                            tail = _rejoin(system, nxt, best, j, prop)
                            if tail is not None and i + depth + len(tail[0]) < n:
                                return (best[: i + 1] + _path(parents, nfp) + tail[0][1:],
                                        tail[1]), replays
                        else:
                            tail = renamed_rest(nxt, j, k, i + depth + 1)
                            if tail is not None:
                                return (best[: i + 1] + _path(parents, nfp) + tail[0][1:],
                                        tail[1]), replays
                        failed.add((nfp, j, k))
                nxt_frontier.append((nfp, nxt))
                if nodes >= max_nodes:
                    break
            if nodes >= max_nodes:
                break
        frontier = nxt_frontier
    return None, replays


def _new_steps(system: System, state: Any, seen: set) -> Iterable[tuple[Any, Any, Any]]:
    """A search's steps from ``state``: (action, successor, its fingerprint) for each
    successor within the constraint, not a stuttering step, whose fingerprint is not in
    ``seen`` yet (added as it is yielded)."""
    fingerprint, constraint = system.fingerprint, system.constraint
    for action, nxt in system.steps(state):
        if nxt is state or nxt == state or not constraint(nxt):
            continue
        nfp = fingerprint(nxt)
        if nfp not in seen:
            seen.add(nfp)
            yield action, nxt, nfp


def _rejoin(system: System, state: Any, best: Trace, j: int, prop: str) -> tuple[Trace, str] | None:
    """``replay`` of the actions after ``best[j]`` from ``state`` instead, cut short where it
    rejoins ``best`` (a state equal to the one ``best`` has after the same action: from there
    on it is ``best``, violation included)."""
    invariants = list(system.invariants.items())
    step_properties = list(system.step_properties.items())
    trace: Trace = [(None, state)]
    for m in range(j + 1, len(best)):
        action = best[m][0]
        nxt = _successor(system, state, action)
        if nxt is not None:
            trace.append((action, nxt))
            if (name := _violated(invariants, step_properties, state, nxt)) is not None:
                return trace, name
            state = nxt
        if state == best[m][1]:
            return trace + best[m + 1:], prop
    return None


def _path(parents: dict[Any, tuple[Any, Any]], fp: Any) -> Trace:
    """The search path to ``fp``, as (action, state) pairs from the search's start."""
    out: Trace = []
    while fp in parents:
        fp, step = parents[fp]
        out.append(step)
    out.reverse()
    return out


def _delete_steps(
    system: System, best: Trace, prop: str, deadline: float,
    progress: Callable[[Trace, str], None] | None = None,
) -> tuple[Trace, str, int]:
    """Greedy deletion of loops and of runs of steps while the rest still violates a
    property."""
    replays = 0

    def attempt(prefix_end: int, rest: list[Any]) -> tuple[Trace, str] | None:
        """Replay ``rest`` after ``best[:prefix_end]`` (a prefix of best replays unchanged)."""
        nonlocal replays
        replays += 1
        tail = replay(system, best[prefix_end - 1][1], rest)
        if tail is None:
            return None
        return best[:prefix_end] + tail[0][1:], tail[1]

    best, prop = _cut_loops(system, best, prop)
    size = max(1, (len(best) - 1) // 2)
    while size >= 1 and time.perf_counter() < deadline:
        i = 1  # best[i] is the first step a candidate deletes
        while i < len(best) and time.perf_counter() < deadline:
            candidate = attempt(i, [a for a, _ in best[i + size:]])
            if candidate is not None and len(candidate[0]) < len(best):
                best, prop = candidate
                if progress is not None:
                    progress(best, prop)
            else:
                i += 1 if size == 1 else max(1, size // 2)
        size //= 2
    return best, prop, replays


def _cut_loops(system: System, trace: Trace, prop: str) -> tuple[Trace, str]:
    """Cut every loop: from the first visit of a state, go on after its last visit."""
    fingerprint = system.fingerprint
    last: dict[int, int] = {}
    for index, (_, state) in enumerate(trace):
        last[fingerprint(state)] = index
    out: Trace = [trace[0]]
    index = last[fingerprint(trace[0][1])] + 1
    while index < len(trace):
        action, state = trace[index]
        out.append((action, state))
        index = last[fingerprint(state)] + 1
    if len(out) == len(trace):
        return trace, prop
    # A cut is exact only if equal fingerprints mean equal states: replay to be sure.
    replayed = replay(system, out[0][1], [a for a, _ in out[1:]])
    return replayed if replayed is not None and len(replayed[0]) < len(trace) else (trace, prop)
