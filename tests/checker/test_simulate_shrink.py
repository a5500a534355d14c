"""Shrinking modulo symmetry (renamings of servers), and a shrinking that is interrupted: the
violation is kept, with the shortest trace found so far."""

from __future__ import annotations

import itertools
import json
import random
import time
from collections import deque

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftspec.checker.simulate import (
    Interrupted,
    SimulationResult,
    replay,
    shrink_trace,
    simulate,
    simulate_parallel,
    violates,
)
from raftspec.checker.symmetry import Canonicalizer, renaming_of
from raftspec.checker.system import ProtocolSystem
from raftspec.spec.model import MODELS_DIR, load_model

# --- a toy with two interchangeable servers -----------------------------------------------------


def _other(i: int) -> int:
    return 3 - i


class Handoff:
    """States (phase, owner), owner a server 1 or 2. From ("A", i), owner i either goes on
    itself ("C", i) in one step, or hands off to the other server, which needs four steps to
    reach ("C", other); from ("C", i) three steps of i reach the violation ("V", i). Every step
    is defined for both owners alike: renaming the servers maps steps to steps.

    The trace that hands off (8 states) is a local minimum for deletion, and a search of 4
    states from ("A", 1) reaches ("C", 1), a renaming of the trace's ("C", 2), but not a
    violation: only a shortcut modulo renaming leaves it (5 states)."""

    invariants = {"planted": lambda s: s[0] != "V"}
    step_properties: dict = {}

    def init_states(self):
        return (("A", 1),)

    def steps(self, state):
        phase, i = state
        chain = {"B1": "B2", "B2": "B3", "B3": "C", "C": "E1", "E1": "E2", "E2": "V"}
        if phase == "A":
            return [(("short", i), ("C", i)), (("handoff", i), ("B1", _other(i)))]
        if phase in chain:
            return [(("go", i), (chain[phase], i))]
        return []

    def constraint(self, state):
        return True

    def fingerprint(self, state):
        return hash(state)


class SwapRenaming:
    """The renamings of ``Handoff``'s two servers, as a protocol-free ``Renamings``."""

    def renamings(self):
        return [(0, 1), (1, 0)]

    @staticmethod
    def _id(i: int, renaming) -> int:
        return renaming.index(i - 1) + 1 if i else 0

    def state(self, state, renaming):
        return (state[0], self._id(state[1], renaming))

    def action(self, action, renaming):
        return (action[0], self._id(action[1], renaming))


HANDOFF = [("handoff", 1), ("go", 2), ("go", 2), ("go", 2), ("go", 2), ("go", 2), ("go", 2)]


def test_a_shortcut_to_a_renamed_state_goes_on_with_the_rest_renamed() -> None:
    trace = replay(Handoff(), ("A", 1), HANDOFF)[0]
    assert len(trace) == 8 and trace[-1][1] == ("V", 2)
    plain, _, _ = shrink_trace(Handoff(), trace, shortcut_nodes=4, max_shortcut_nodes=4)
    assert len(plain) == 8  # no run of steps can go, and no search reaches a later state
    shrunk, prop, _ = shrink_trace(Handoff(), trace, shortcut_nodes=4, max_shortcut_nodes=4,
                                   renamings=SwapRenaming())
    assert prop == "planted" and violates(Handoff(), shrunk, "planted")
    assert [a for a, _ in shrunk] == [None, ("short", 1), ("go", 1), ("go", 1), ("go", 1)]
    assert [s for _, s in shrunk] == [("A", 1), ("C", 1), ("E1", 1), ("E2", 1), ("V", 1)]


# --- random symmetric systems -------------------------------------------------------------------


@attrs.frozen
class Tokens:
    """Three servers, each holding a value 0..3. Rule k lets server i go from value ``a`` to
    ``d`` when at least ``c`` of the others hold ``b``: the same rules for every server, so
    any renaming of the servers maps steps to steps. The violation: the multiset of values is
    ``target`` (a property of the multiset, so renaming-invariant too)."""

    rules: tuple[tuple[int, int, int, int], ...]
    target: tuple[int, ...]

    @property
    def invariants(self):
        return {"target": lambda s: tuple(sorted(s)) != self.target}

    step_properties: dict = {}

    def init_states(self):
        return ((0, 0, 0),)

    def steps(self, state):
        out = []
        for k, (a, b, c, d) in enumerate(self.rules):
            for i in range(3):
                if state[i] == a and sum(state[j] == b for j in range(3) if j != i) >= c:
                    out.append(((k, i + 1), state[:i] + (d,) + state[i + 1:]))
        return out

    def constraint(self, state):
        return True

    def fingerprint(self, state):
        return hash(state)


class TokenRenaming:
    def renamings(self):
        return list(itertools.permutations(range(3)))

    def state(self, state, old_of_new):
        return tuple(state[old] for old in old_of_new)

    def action(self, action, old_of_new):
        return (action[0], old_of_new.index(action[1] - 1) + 1)


def _shortest(system: Tokens) -> int | None:
    """BFS, independently of the shrinker: the number of states of a shortest violation."""
    init = (0, 0, 0)
    depth = {init: 1}
    queue = deque([init])
    while queue:
        state = queue.popleft()
        if tuple(sorted(state)) == system.target:
            return depth[state]
        for _, nxt in system.steps(state):
            if nxt not in depth:
                depth[nxt] = depth[state] + 1
                queue.append(nxt)
    return None


def _check_real(system: Tokens, trace) -> None:
    """The trace's steps are the system's steps, and only its last state is the target."""
    assert trace[0] == (None, (0, 0, 0))
    for (_, before), step in zip(trace, trace[1:], strict=False):
        assert tuple(sorted(before)) != system.target
        assert step in system.steps(before)
    assert tuple(sorted(trace[-1][1])) == system.target


rules = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 2),
                           st.integers(0, 3)), min_size=2, max_size=6)


@settings(max_examples=150, deadline=None)
@given(rules, st.lists(st.integers(0, 3), min_size=3, max_size=3), st.integers(0, 2**16),
       st.integers(0, 30))
def test_shrinking_modulo_renaming_gives_a_real_violating_trace(
    rule_list, target, walk_seed: int, nodes: int
) -> None:
    system = Tokens(tuple(rule_list), tuple(sorted(target)))
    shortest = _shortest(system)
    if shortest is None:
        return
    rng = random.Random(walk_seed)  # a random walk to the violation, detours included
    trace = [(None, (0, 0, 0))]
    for _ in range(200):
        if tuple(sorted(trace[-1][1])) == system.target:
            break
        trace.append(rng.choice(system.steps(trace[-1][1]) or [(None, None)]))
        if trace[-1][0] is None:
            return
    else:
        return
    if len(trace) == 1:
        return
    shrunk, prop, _ = shrink_trace(system, trace, shortcut_nodes=nodes, max_shortcut_nodes=nodes,
                                   renamings=TokenRenaming())
    assert prop == "target"
    _check_real(system, shrunk)
    assert shortest <= len(shrunk) <= len(trace)
    again, _, _ = shrink_trace(system, trace, shortcut_nodes=nodes, max_shortcut_nodes=nodes,
                               renamings=TokenRenaming())
    assert again == shrunk  # deterministic
    # searches that grow (x4) when a round gains nothing: the same rounds first, then more
    grown, prop, _ = shrink_trace(system, trace, shortcut_nodes=nodes,
                                  max_shortcut_nodes=nodes * 64, renamings=TokenRenaming())
    assert prop == "target"
    _check_real(system, grown)
    assert shortest <= len(grown) <= len(shrunk)


# --- the schema-derived renaming of Raft states -------------------------------------------------


@pytest.fixture(scope="module")
def figure8():
    model = load_model(MODELS_DIR / "mutant_commit_previous_term.yaml")
    # every successor built (none left unbuilt as OUT_OF_BOUNDS), so that each can be renamed
    return model, ProtocolSystem(model, symmetry=False, beyond="off")


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 40))
def test_renaming_maps_raft_steps_to_steps(figure8, seed: int, length: int) -> None:
    """On random Raft states: each renaming of a state has the same canonical encoding, and
    the renamed actions are enabled there and lead to the renamed successors."""
    model, system = figure8
    renaming = renaming_of(model.protocol, model.config.servers)
    canonical = Canonicalizer(model.protocol.schema, model.config.servers)
    rng = random.Random(seed)
    state = next(iter(system.init_states()))
    for _ in range(length):
        successors = [(a, s) for a, s in system.steps(state) if system.constraint(s)]
        if not successors:
            break
        state = rng.choice(successors)[1]
    successors = list(system.steps(state))
    assert renaming.state(state, (0, 1, 2)) == state
    for old_of_new in renaming.renamings():
        renamed = renaming.state(state, old_of_new)
        assert type(renamed) is type(state)
        assert canonical.encode(renamed) == canonical.encode(state)
        theirs = dict(system.steps(renamed))
        assert len(theirs) == len(successors)
        for action, nxt in successors:
            assert theirs[renaming.action(action, old_of_new)] == renaming.state(nxt, old_of_new)


# --- interrupted while shrinking ----------------------------------------------------------------


class Interrupting(Handoff):
    """``Handoff`` whose steps raise KeyboardInterrupt (Ctrl-C) once ``armed`` calls have passed
    after the violation was first seen."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.seen = False

    @property
    def invariants(self):
        def planted(s) -> bool:
            if s[0] == "V":
                self.seen = True
            return s[0] != "V"
        return {"planted": planted}

    def steps(self, state):
        if self.seen:
            self.after -= 1
            if self.after < 0:
                raise KeyboardInterrupt
        return Handoff.steps(self, state)


@pytest.mark.parametrize("after", [0, 2])
def test_interrupted_while_shrinking_reports_the_violation(after: int) -> None:
    system = Interrupting(after)
    result = simulate(system, seed=1, depth=20, time_limit=None, max_walks=50)
    assert result.violated == "planted" and result.shrink_stopped == "interrupted"
    assert violates(Handoff(), result.trace, "planted")  # a real trace, whatever was cut short
    assert len(result.trace) <= result.original_length


def test_not_interrupted_shrinks_to_the_end() -> None:
    result = simulate(Interrupting(10**6), seed=1, depth=20, time_limit=None, max_walks=50)
    assert result.shrink_stopped is None and len(result.trace) == 5


class Stalling(Handoff):
    """``Handoff`` whose steps stall once the violation was seen (a long shrinking)."""

    def __init__(self) -> None:
        self.seen = False

    invariants = Interrupting.invariants

    def steps(self, state):
        if self.seen:
            time.sleep(0.5)
        return Handoff.steps(self, state)


def test_parallel_interrupted_while_a_worker_shrinks_reports_its_violation() -> None:
    def interrupt(progress) -> None:
        if progress.seconds > 2.0:
            raise KeyboardInterrupt

    started = time.perf_counter()
    result = simulate_parallel(Stalling, 2, seed=1, depth=20, time_limit=None,
                               on_progress=interrupt, progress_interval=0.2)
    assert isinstance(result, SimulationResult)
    assert result.violated == "planted" and result.shrink_stopped == "interrupted"
    assert violates(Handoff(), result.trace, "planted")
    assert time.perf_counter() - started < 30


def test_parallel_budget_while_a_worker_shrinks_keeps_its_violation() -> None:
    """The caller's budget (``should_stop``: --max-memory) running out while a worker shrinks
    a violation ends the run as Ctrl-C does: the violation is kept with the shortest trace the
    worker had, and says what stopped its shrinking. (Before, the budget's exception left
    through the progress callback and the run reported no violation at all.)"""
    started = time.perf_counter()

    def budget() -> str | None:
        return "memory limit" if time.perf_counter() - started > 2.0 else None

    result = simulate_parallel(Stalling, 2, seed=1, depth=20, time_limit=None,
                               should_stop=budget, progress_interval=0.2)
    assert result.violated == "planted" and result.shrink_stopped == "memory limit"
    assert violates(Handoff(), result.trace, "planted")
    assert time.perf_counter() - started < 30


def test_the_command_interrupted_while_shrinking_prints_the_violation_and_exits_1(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C while shrinking (here: after the shrinker's first gain, a loop cut): the command
    reports the violation with that trace, says shrinking was interrupted, and exits 1."""
    from raftspec.checker import simulate as engine
    from raftspec.cli import main

    gains = []

    def interrupted(system, trace, *, progress, **options):
        shorter = replay(system, trace[0][1], [a for a, _ in trace[2:]])  # one step fewer
        if shorter is not None and len(shorter[0]) < len(trace):
            gains.append(shorter[0])
            progress(*shorter)
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "shrink_trace", interrupted)
    code = main(["simulate", str(MODELS_DIR / "mutant_quorum_off_by_one.yaml"), "--seed", "1",
                 "--json", "--quiet"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["verdict"] == "violation" and report["violated"] == "election_safety"
    assert report["shrink_stopped"] == "interrupted"
    expected = len(gains[-1]) if gains else report["walk_length"]
    assert report["counterexample_length"] == len(report["counterexample"]) == expected


# --- interrupted while walking: the exact figures -------------------------------------------------


class Chain:
    """An endless counter: a walk takes one step per call of ``steps``; the calls, and the
    walks begun (calls on the initial state), are counted in arrays shared with forked worker
    processes, one slot per process.

    The slots take no lock: a worker is stopped by a signal at any point, and one that died
    holding a shared lock would leave the other worker, or the test reading the counts,
    waiting for ever. Each process writes only its own slot (taken when it builds the system,
    before any signal is sent)."""

    invariants: dict = {}
    step_properties: dict = {}

    def __init__(self, calls, begun, slots) -> None:
        with slots.get_lock():
            self.slot = slots.value
            slots.value += 1
        self.calls, self.begun = calls, begun

    def init_states(self):
        return (0,)

    def steps(self, state):
        self.calls[self.slot] += 1
        if state == 0:
            self.begun[self.slot] += 1
        return [("inc", state + 1)]

    def constraint(self, state):
        return True

    def fingerprint(self, state):
        return hash(state)


@pytest.mark.parametrize("how", ["ctrl-c", "budget"])
@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_walks_report_exactly_the_walks_completed(workers: int, how: str) -> None:
    """Ctrl-C during the walks, or the caller's budget (``should_stop``, as --max-memory): the
    figures are those of the walks completed when it came (each worker asked for its own), not
    the last progress report's, which lag by up to a second of walking (thousands of walks
    here). Checked against the walks begun and the steps taken."""
    import multiprocessing
    import os
    import signal
    import threading

    depth = 20
    fork = multiprocessing.get_context("fork")
    calls, begun = fork.RawArray("q", workers), fork.RawArray("q", workers)
    slots = fork.Value("i", 0)
    # Ctrl-C's own handler, whatever this process inherited (a background job ignores SIGINT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    stop_at = time.perf_counter() + 1.5

    def budget() -> str | None:
        return "over budget" if time.perf_counter() >= stop_at else None

    if how == "ctrl-c":
        timer.start()
    try:
        with pytest.raises(Interrupted) as stopped:
            simulate_parallel(lambda: Chain(calls, begun, slots), workers, depth=depth,
                              time_limit=30, shrink=False, progress_interval=0.5,
                              should_stop=budget if how == "budget" else None)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert stopped.value.reason == (None if how == "ctrl-c" else "over budget")
    progress = stopped.value.progress
    # every walk completed, plus at most one unfinished walk per worker
    assert progress.walks > 100
    assert progress.walks <= sum(begun) <= progress.walks + workers, (progress, list(begun))
    assert progress.steps <= sum(calls) < progress.steps + workers * depth, (progress, list(calls))
