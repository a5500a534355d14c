"""Breadth-first exhaustive exploration of any finite transition system, counted as TLC counts.

The engine knows nothing about Raft. A system is any object with::

    init_states() -> Iterable[S]
    steps(state) -> Iterable[tuple[A, S]]      every enabled action instance, pruned ones too
    expand(state) -> (int, list[(int, S)])     optional, or None: how many ``steps`` yields, and
                                                the successors within the constraint with
                                                their positions among them (one call a state)
    constraint(state) -> bool                   the state constraint (TLC CONSTRAINT)
    fingerprint(state) -> int                   64-bit, of a canonical encoding (symmetry here)
    invariants: dict[str, Callable[[S], bool]]
    step_properties: dict[str, Callable[[S, S], bool]]

Only fingerprints are kept for visited states (``checker.fingerprints``), with, per state, the
index of its parent and the position of its step among the parent's steps (6 bytes), so memory
grows by some 20 bytes per distinct state; a violation is turned into a shortest path by
replaying those positions from the initial state.
"""

from __future__ import annotations

import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any, Protocol

import attrs

from raftspec.checker.fingerprints import FingerprintSet
from raftspec.checker.frontier import Frontier
from raftspec.checker.gcpolicy import level_done, searching

FINGERPRINT_SPACE = 2.0**64


class System(Protocol):
    invariants: dict[str, Callable[[Any], bool]]
    step_properties: dict[str, Callable[[Any, Any], bool]]

    def init_states(self) -> Iterable[Any]: ...
    def steps(self, state: Any) -> Iterable[tuple[Any, Any]]: ...
    def constraint(self, state: Any) -> bool: ...
    def fingerprint(self, state: Any) -> int: ...


@attrs.frozen
class Progress:
    """A snapshot of a running exploration, for progress displays."""

    distinct_states: int
    states_generated: int
    queue: int
    depth: int
    seconds: float


@attrs.frozen
class Result:
    """The outcome of an exploration, with figures counted as TLC counts them.

    ``trace`` is the shortest path from an initial state to the violating state as
    (action, state) pairs, the first action being ``None`` (Init); for a step property the last
    pair is the violating step.
    """

    distinct_states: int
    states_generated: int
    depth: int
    seconds: float
    violated: str | None = None
    trace: list[tuple[Any, Any]] | None = None
    per_action: dict[str, int] | None = None
    complete: bool = True
    stopped: str | None = None   # why an incomplete run stopped (budget, interrupt, max_depth)
    witnesses: dict[str, list[tuple[Any, Any]]] | None = None
    """For each reachability property found true: a shortest path to a state satisfying it
    (None when none was asked for)."""
    unreached: tuple[str, ...] = ()
    """The reachability properties true in no explored state (meaningful as "never reached"
    only when the exploration was complete and found no violation)."""

    @property
    def verdict(self) -> str:
        return "ok" if self.violated is None else "violation"

    @property
    def collision_probability(self) -> float:
        """TLC's optimistic estimate that two distinct states shared a fingerprint."""
        d = self.distinct_states
        return d * max(self.states_generated - d, 0) / FINGERPRINT_SPACE


class _Stop(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


PARALLEL_FROM = 500
"""With several workers, a level of this many states hands the search over to the shards:
such a level takes some 25 ms in one process, against some 20 ms to start two workers. What
runs before it runs on one core: at 2,000, 12.8% of tiny3's generated steps did, which alone
capped two workers at 1.77x (``benchmarks/bench_parallel.py --stats``)."""

SPILL_FROM = 200_000
"""States of a level held as Python objects before the rest spills to disk (some 50-100 MB of
objects; a level this wide belongs to a model of millions of states)."""

STOP_CHECK_INTERVAL = 0.1
"""Seconds between two looks at ``deadline`` and ``should_stop``."""


class _Violation(Exception):
    def __init__(self, name: str, index: int, step: tuple[Any, Any] | None = None) -> None:
        self.name, self.index, self.step = name, index, step


@searching
def explore(
    system: System,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    progress_interval: float = 0.5,
    count_actions: bool = False,
    action_name: Callable[[Any], str] = lambda action: str(action),
    max_depth: int | None = None,
    deadline: float | None = None,
    max_states: int | None = None,
    should_stop: Callable[[], str | None] | None = None,
    reachable: dict[str, Callable[[Any], bool]] | None = None,
    workers: int = 1,
    parallel_from: int | None = None,
    backend: Callable[..., Any] | None = None,
    spill_from: int | None = SPILL_FROM,
) -> Result:
    """Explore every state reachable within the constraint, breadth first, level by level.

    Stops at the first violated invariant or step property; the result then carries a shortest
    counterexample. ``count_actions`` tallies generated states per action name (for comparing
    with TLC action by action; about 10% slower with the system's own ``action_name``, whose
    rows count in generated code, about 30% with another, read off ``steps``). ``max_depth``
    stops after that many levels (the initial states are level 1): states deeper than that are
    neither generated nor checked, and the result says ``complete=False``.

    Budgets, for callers that must always get an answer (the CLI's exit code 3): ``deadline``
    (a ``time.perf_counter()`` value), ``max_states`` (distinct states) and ``should_stop`` (a
    reason to stop, or None; e.g. a memory ceiling) are looked at every
    ``STOP_CHECK_INTERVAL`` seconds, ``max_states`` on every new state. A stop, or a
    KeyboardInterrupt, ends the search with the figures so far, ``complete=False`` and
    ``stopped`` saying why.
    ``reachable``: predicates to find true in some state (Stateright's ``sometimes``); each is
    tested on every distinct state until it holds once, and the result carries a shortest
    witness path for each one found (``witnesses``) and the names of the others
    (``unreached``).

    ``workers`` > 1: once a BFS level holds ``parallel_from`` states (default
    ``PARALLEL_FROM``), the search continues sharded over that many processes
    (``checker.parallel``), with the same figures, counterexample and witnesses; smaller models
    finish in this process and never pay for starting workers. ``backend``: how shards are
    run (default ``parallel.ProcessBackend``; ``parallel.InlineBackend`` runs them in this
    process, for tests).

    ``spill_from``: a BFS level keeps at most this many states as Python objects; the others
    wait pickled in a temporary file (``checker.frontier``); None keeps every level in memory.
    With workers, each shard keeps at most about this many of each of its lists of states
    (``parallel.SpillingStates``).
    """
    started = time.perf_counter()
    seen = FingerprintSet()
    parents = array("i")   # 4 bytes a state: up to 2**31 states (some 60 GiB of seen set)
    moves = array("H")     # the step's position among its parent's steps (widened if need be)
    per_action: Counter[str] = Counter()
    generated = 0
    level = Frontier(spill_from)  # the current BFS level: (state, index into fingerprints)
    invariants = list(system.invariants.items())
    step_properties = list(system.step_properties.items())
    fingerprint, constraint = system.fingerprint, system.constraint
    add = seen.add
    counter = ActionCounter(system, action_name, per_action) if count_actions else None
    expand = counter.expand if counter is not None else expander(system)

    pending = list((reachable or {}).items())  # reachability properties not yet seen true
    reached: dict[str, int] = {}  # ... and the index of the first state where each held

    def check_reachable(state: Any, index: int) -> None:
        for name, holds in list(pending):
            if holds(state):
                reached[name] = index
                pending.remove((name, holds))

    def check(state: Any, index: int) -> None:
        for name, holds in invariants:
            if not holds(state):
                raise _Violation(name, index)
        if pending:
            check_reachable(state, index)

    depth = 0
    complete = True
    stopped = None
    hand_off_at = None
    if workers > 1 or backend is not None:
        hand_off_at = PARALLEL_FROM if parallel_from is None else max(1, parallel_from)
    fingerprints = array("q") if hand_off_at is not None else None   # for the shards only
    handed = False
    watch = deadline is not None or should_stop is not None
    next_check = started + STOP_CHECK_INTERVAL
    try:
        for k, state in enumerate(system.init_states()):
            generated += 1
            if count_actions:
                per_action["Init"] += 1
            if not constraint(state):
                continue
            fp = fingerprint(state)
            if not seen.add(fp):
                continue
            if fingerprints is not None:
                fingerprints.append(fp)
            parents.append(-1)
            moves = _append_move(moves, k)
            check(state, len(parents) - 1)
            level.append(state, len(parents) - 1)
            if max_states is not None and len(parents) >= max_states:
                depth = 1   # the initial states are level 1
                raise _Stop(f"max_states {max_states:,} reached")

        next_report = started + progress_interval
        while level:
            if max_depth is not None and depth + 1 >= max_depth:
                depth += 1  # this level was found and checked; it is not expanded
                complete = False
                break
            depth += 1
            next_level = Frontier(spill_from)
            keep = next_level.append
            for state, index in level:
                count, successors = expand(state)
                try:
                    for k, nxt in successors:
                        if step_properties:
                            for name, holds in step_properties:
                                if not holds(state, nxt):
                                    raise _Violation(name, index, step_at(system, state, k))
                        fp = fingerprint(nxt)
                        if not add(fp):
                            continue
                        if fingerprints is not None:
                            fingerprints.append(fp)
                        parents.append(index)
                        try:
                            moves.append(k)
                        except OverflowError:
                            moves = _append_move(moves, k)
                        for name, holds in invariants:   # check(), inlined: once per new state
                            if not holds(nxt):
                                raise _Violation(name, len(parents) - 1)
                        if pending:
                            check_reachable(nxt, len(parents) - 1)
                        keep(nxt, len(parents) - 1)
                        if max_states is not None and len(parents) >= max_states:
                            raise _Stop(f"max_states {max_states:,} reached")
                except (_Violation, _Stop):
                    generated += k + 1   # as if counted one by one: up to this step
                    if counter is not None:
                        counter.counted(state, k + 1, count)
                    raise
                generated += count
                if counter is not None:
                    counter.counted(state, count, count)
                if watch and (now := time.perf_counter()) >= next_check:
                    next_check = now + STOP_CHECK_INTERVAL
                    if deadline is not None and now >= deadline:
                        raise _Stop("deadline reached")
                    if should_stop is not None and (reason := should_stop()):
                        raise _Stop(reason)
                if on_progress is not None and time.perf_counter() >= next_report:
                    next_report = time.perf_counter() + progress_interval
                    on_progress(Progress(len(seen), generated, len(next_level), depth,
                                         time.perf_counter() - started))
            level.close()
            level = next_level
            level_done()
            if hand_off_at is not None and len(level) >= hand_off_at:
                handed = True
                break
    except (_Stop, KeyboardInterrupt) as stop:
        complete = False
        stopped = stop.reason if isinstance(stop, _Stop) else "interrupted"
    except _Violation as violation:
        if counter is not None:
            counter.fold()
        trace = _shortest_trace(system, parents, moves, violation.index)
        if violation.step is not None:
            trace.append(violation.step)
        return Result(
            distinct_states=len(seen),
            states_generated=generated,
            depth=len(trace),
            seconds=time.perf_counter() - started,
            violated=violation.name,
            trace=trace,
            per_action=dict(per_action) if count_actions else None,
            **_reachability(system, parents, moves, reachable, reached),
        )
    if counter is not None:
        counter.fold()
    distinct = len(seen)
    if handed:
        from raftspec.checker.parallel import ProcessBackend, run_sharded

        del seen
        handed_at = time.perf_counter()
        shards = None
        try:
            shards = (backend or ProcessBackend)(system, workers, count_actions, action_name,
                                                 reachable)
            return run_sharded(
                system, shards,
                {"started": started, "handed_at": handed_at, "fingerprints": fingerprints,
                 "parents": parents,
                 "level": level.states(), "level_index": level.indices(),
                 "generated": generated,
                 "per_action": per_action, "depth": depth,
                 "pending": [name for name, _ in pending], "reached": reached,
                 "spill_from": spill_from},
                count_actions=count_actions, max_depth=max_depth, deadline=deadline,
                max_states=max_states, should_stop=should_stop, on_progress=on_progress,
                progress_interval=progress_interval, reachable=reachable)
        except KeyboardInterrupt:
            # outside the shards' search (starting the workers, dealing out the levels so far,
            # or rebuilding paths at the end): this process's figures, as a search interrupted
            # at the hand-off reports them
            complete, stopped = False, "interrupted"
        finally:
            if shards is not None:
                shards.close()
    return Result(
        distinct_states=distinct,
        states_generated=generated,
        depth=depth,
        seconds=time.perf_counter() - started,
        per_action=dict(per_action) if count_actions else None,
        complete=complete,
        stopped=stopped if stopped is not None or complete else "max_depth reached",
        **_reachability(system, parents, moves, reachable, reached),
    )


def _append_move(moves: array, k: int) -> array:
    """``moves`` with ``k`` appended, widened to 4 bytes an item if ``k`` needs it."""
    if k > 0xFFFF and moves.typecode == "H":
        moves = array("L", moves)
    moves.append(k)
    return moves


def _reachability(system: System, parents: array, moves: array,
                  reachable: dict[str, Any] | None, reached: dict[str, int]) -> dict[str, Any]:
    """The ``witnesses`` and ``unreached`` fields of a result."""
    if reachable is None:
        return {}
    return {"witnesses": {name: _shortest_trace(system, parents, moves, index)
                          for name, index in reached.items()},
            "unreached": tuple(name for name in reachable if name not in reached)}


class ActionCounter:
    """Generated steps per action name, for ``explore`` and the parallel shards: ``expand`` to
    expand with, then ``counted(state, k, count)`` after each state (its first ``k`` of its
    ``count`` steps count: fewer where a violation or a budget stopped inside them), and
    ``fold()`` before reading ``counts``. With the system's own ``action_name`` and a system
    that has one, the rows count in generated code (``ProtocolSystem.counting_expand``) and a
    stop inside a state takes back the rest of its steps; else each state's actions are read
    off ``steps`` (``expander`` with a list of actions) and tallied."""

    def __init__(self, system: System, action_name: Callable[[Any], str],
                 counts: Counter[str]) -> None:
        self.system, self.name_of, self.counts = system, action_name, counts
        make = getattr(system, "counting_expand", None)
        counting = None
        if make is not None and action_name is getattr(system, "action_name", None):
            counting = make()
        self._actions: list[Any] | None = None
        if counting is not None:
            self.expand, self._rows, self._names = counting
        else:
            self._actions = []
            self._rows, self._names = [], ()
            self.expand = expander(system, self._actions)

    def counted(self, state: Any, k: int, count: int) -> None:
        """The state last expanded counts its first ``k`` steps of ``count``."""
        actions = self._actions
        if actions is not None:
            tally(self.counts, actions if k == count else actions[:k], self.name_of)
        elif k < count:   # the rows counted every step: take back the rest
            for action, _ in islice(self.system.steps(state), k, None):
                self.counts[self.name_of(action)] -= 1

    def fold(self) -> None:
        """Move the rows' counts into ``counts`` (dropping names left at zero)."""
        counts, rows = self.counts, self._rows
        for k, name in enumerate(self._names):
            if rows[k]:
                counts[name] += rows[k]
                rows[k] = 0
        for name in [name for name, count in counts.items() if not count]:
            del counts[name]


def expander(system: System, actions: list[Any] | None = None,
             ) -> Callable[[Any], tuple[int, list[tuple[int, Any]]]]:
    """The system's ``expand`` (``(generated, [(position, successor within the constraint)])``)
    or, for a system without one, the same contract read off ``steps`` and ``constraint``; the
    latter also when given ``actions`` (``ActionCounter`` without a counting form, which must
    see every action): the list is then refilled with each expanded state's actions, in order,
    for the caller to ``tally`` as far as it got. Used by ``explore`` and by the parallel
    shards (``checker.parallel``)."""
    expand = getattr(system, "expand", None)
    if actions is None and expand is not None:
        return expand
    steps, constraint = system.steps, system.constraint

    def expand_steps(state: Any) -> tuple[int, list[tuple[int, Any]]]:
        out = []
        n = 0
        if actions is not None:
            actions.clear()
        for n, (action, nxt) in enumerate(steps(state), 1):
            if actions is not None:
                actions.append(action)
            if constraint(nxt):
                out.append((n - 1, nxt))
        return n, out

    return expand_steps


def tally(counts: Counter[str], actions: list[Any], action_name: Callable[[Any], str]) -> None:
    for action in actions:
        counts[action_name(action)] += 1


def step_at(system: System, state: Any, k: int) -> tuple[Any, Any]:
    """The ``k``-th (action, successor) of ``steps(state)`` (for a counterexample's last
    step: ``expand`` gives positions, not actions)."""
    return next(islice(system.steps(state), k, None))


def _shortest_trace(
    system: System, parents: array, moves: array, index: int
) -> list[tuple[Any, Any]]:
    """Rebuild the path to state ``index``: from its initial state (by its position among the
    initial states), each step by its position among its parent's steps."""
    path = []
    while index != -1:
        path.append(moves[index])
        index = parents[index]
    path.reverse()
    state = next(islice(system.init_states(), path[0], None))
    trace: list[tuple[Any, Any]] = [(None, state)]
    for k in path[1:]:
        action, state = next(islice(system.steps(state), k, None))
        trace.append((action, state))
    return trace


def replay(system: System, chain: list[int]) -> list[tuple[Any, Any]]:
    """The path whose states have these fingerprints, from an initial state: at each step the
    first successor (in ``steps`` order) with the next fingerprint, as one worker found it."""
    state = next(s for s in system.init_states() if system.fingerprint(s) == chain[0])
    trace: list[tuple[Any, Any]] = [(None, state)]
    for target in chain[1:]:
        action, state = next(
            (action, nxt)
            for action, nxt in system.steps(state)
            if system.constraint(nxt) and system.fingerprint(nxt) == target
        )
        trace.append((action, state))
    return trace
