"""``check --workers``: the sharded search reports exactly what one worker reports.

The reference for every comparison is ``explore`` in one process (itself held to TLC's counts
by test_checker_conformance.py); the published TLC figures are used where a model has them.
Random transition systems (hypothesis) exercise every way a search ends inside a level
(invariant, step property, max_states, reachability witnesses, max_depth) with 1-5 shards run in
this process; real worker processes run on Raft models, with and without symmetry.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from array import array
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftspec.checker import explore as explore_module
from raftspec.checker import parallel
from raftspec.checker.explore import Result, explore
from raftspec.checker.parallel import InlineBackend, owner
from raftspec.checker.system import ProtocolSystem
from raftspec.cli import main
from raftspec.spec.model import load_model, parse_model

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "spec" / "models"
TINY2 = MODELS / "conformance" / "tiny2.yaml"
TINY3 = MODELS / "conformance" / "tiny3.yaml"
QUORUM = MODELS / "mutant_quorum_off_by_one.yaml"
ELECT3M2 = ROOT / "benchmarks" / "models" / "elect3m2.yaml"


def _mix(n: int) -> int:
    """A 64-bit signed fingerprint of n spread over all bits (shards use the high ones)."""
    x = (n * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & (2**64 - 1)
    x ^= x >> 29
    x = (x * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    x ^= x >> 32
    return x - 2**64 if x >= 2**63 else x or 1


class Graph:
    """A finite transition system drawn by hypothesis: states are ints, steps are labelled
    edges (duplicates and self-loops included), some states are bad, some edges are bad, some
    states are outside the constraint, some are targets of reachability properties."""

    def __init__(self, edges: dict[int, list[int]], inits: list[int], bad: set[int],
                 bad_edges: set[tuple[int, int]], pruned: set[int], targets: list[set[int]],
                 symmetric: bool) -> None:
        self.edges, self.inits = edges, inits
        self.pruned = pruned
        self.symmetric = symmetric
        # every predicate looks at states modulo 1000, so that it holds on whole orbits
        self.invariants = {"good": lambda s: s % 1000 not in bad} if bad else {}
        self.step_properties = (
            {"good_step": lambda s, t: (s % 1000, t % 1000) not in bad_edges}
            if bad_edges else {})
        self.reachable = {f"r{k}": (lambda targets: lambda s: s % 1000 in targets)(t)
                          for k, t in enumerate(targets)}

    def init_states(self) -> list[int]:
        return self.inits

    def steps(self, state: int) -> list[tuple[str, int]]:
        return [(f"a{k % 3}", t) for k, t in enumerate(self.edges.get(state, []))]

    def constraint(self, state: int) -> bool:
        return state % 1000 not in self.pruned

    def fingerprint(self, state: int) -> int:
        # "symmetry": states n and n + 1000 are one orbit (two representatives, one count)
        return _mix(state % 1000 if self.symmetric else state)


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    n = draw(st.integers(2, 16))
    node = st.integers(0, n - 1)
    symmetric = draw(st.booleans())
    target = st.integers(0, n - 1).map(lambda v: v + 1000) if symmetric else node
    edges = {s: draw(st.lists(st.one_of(node, target) if symmetric else node, max_size=8))
             for s in range(n)}
    if symmetric:
        edges.update({s + 1000: list(reversed(edges[s])) for s in range(n)})
    return Graph(
        edges, draw(st.lists(node, min_size=1, max_size=3)),
        set(draw(st.lists(node, max_size=2))),
        {(s, t % 1000) for s in range(n) for t in edges[s] if draw(st.integers(0, 30)) == 0},
        set(draw(st.lists(node, max_size=3))) - {0},
        [set(draw(st.lists(node, max_size=3))) for _ in range(draw(st.integers(0, 2)))],
        symmetric)


def _figures(result) -> tuple:
    return (result.distinct_states, result.states_generated, result.depth, result.violated,
            result.trace, result.per_action, result.complete, result.stopped,
            result.witnesses, result.unreached)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), st.integers(1, 5), st.integers(1, 4), st.none() | st.integers(1, 30),
       st.none() | st.integers(1, 12), st.booleans(), st.integers(1, 5), st.booleans())
def test_shards_report_what_one_worker_reports(graph: Graph, shards: int, hand_off: int,
                                               max_states: int | None, max_depth: int | None,
                                               count: bool, spill_from: int,
                                               stressed: bool) -> None:
    common = {"count_actions": count, "max_states": max_states, "max_depth": max_depth,
              "reachable": graph.reachable or None}
    one, many = _one_and_sharded(graph, shards, hand_off, stressed, common)
    assert _figures(many) == _figures(one)
    spilled = explore(graph, spill_from=spill_from, **common)   # levels pickled to disk
    assert _figures(spilled) == _figures(one)
    _, many_spilled = _one_and_sharded(graph, shards, hand_off, stressed, common, spill_from)
    assert _figures(many_spilled) == _figures(one)   # the shards' lists pickled too


@st.composite
def layered_graphs(draw: st.DrawFn) -> Graph:
    """Graphs of many BFS levels (state ``30 * layer + i``): edges mostly to the next layer,
    also two layers on (a state reached at two depths), within a layer and back, so that
    a state of one BFS level is often generated again one level later; bad states and steps,
    targets and "symmetry" as in ``graphs``."""
    import random

    layers, width = draw(st.integers(4, 30)), draw(st.integers(2, 12))
    symmetric = draw(st.booleans())
    rng = random.Random(draw(st.integers(0, 2**32)))
    edges: dict[int, list[int]] = {}
    for layer in range(layers):
        for i in range(width):
            out = []
            for _ in range(rng.randint(1, 5)):
                to = min(max(layer + rng.choice((1, 1, 1, 2, 0, -1)), 0), layers - 1)
                out.append(30 * to + rng.randrange(width) + (1000 if symmetric and
                                                              rng.random() < 0.5 else 0))
            edges[30 * layer + i] = out
    if symmetric:
        edges.update({s + 1000: list(reversed(edges[s])) for s in list(edges)})
    states = sorted(s for s in edges if s < 1000)
    pick = st.sampled_from(states)
    return Graph(edges, draw(st.lists(st.sampled_from(states[:width]), min_size=1, max_size=2)),
                 set(draw(st.lists(pick, max_size=2))),
                 {(s, t % 1000) for s in states for t in edges[s] if rng.randrange(200) == 0},
                 set(draw(st.lists(pick, max_size=2))) - set(states[:width]),
                 [set(draw(st.lists(pick, max_size=2))) for _ in range(draw(st.integers(0, 2)))],
                 symmetric)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layered_graphs(), st.integers(2, 4), st.integers(1, 6), st.none() | st.integers(1, 200),
       st.none() | st.integers(1, 25), st.booleans(), st.booleans(),
       st.none() | st.integers(1, 8))
def test_many_levels_report_what_one_worker_reports(
        graph: Graph, shards: int, hand_off: int, max_states: int | None,
        max_depth: int | None, count: bool, stressed: bool, spill_from: int | None) -> None:
    """Searches of many levels: violations at any depth, states reached at two depths (one
    worker keeps the shallower; a shard must not take a claim of the next level for this
    one), states given away to even out every level (stressed), budgets inside a level, the
    shards' lists of states pickled to disk (spill_from): exactly one worker's figures."""
    common = {"count_actions": count, "max_states": max_states, "max_depth": max_depth,
              "reachable": graph.reachable or None}
    one, many = _one_and_sharded(graph, shards, hand_off, stressed, common, spill_from)
    assert _figures(many) == _figures(one)


def _one_and_sharded(graph: Graph, shards: int, hand_off: int, stressed: bool, common: dict,
                     spill_from: int | None = None) -> tuple[Result, Result]:
    """One worker's search of ``graph`` and the same in ``shards`` in-process shards;
    stressed: every level's states are evened out between the shards (moved, pickled);
    spill_from: the shards keep that many states of a list as objects, the rest on disk."""
    one = explore(graph, spill_from=None, **common)
    with patch.object(parallel, "BALANCE_FROM", 1 if stressed else parallel.BALANCE_FROM), \
            patch.object(parallel, "BALANCE_SLACK", 0 if stressed else parallel.BALANCE_SLACK):
        many = explore(graph, workers=shards, parallel_from=hand_off, backend=InlineBackend,
                       spill_from=spill_from, **common)
    return one, many


@given(st.sets(st.integers(0, 2**62), max_size=300), st.integers(1, 5), st.randoms())
def test_a_key_ranks_by_the_keys_of_every_shard_below_it(keys: set[int], shards: int,
                                                         rng) -> None:
    """Each shard's keys ranked by ``global_ranks`` against the rank in the sorted union,
    counted here by sorting."""
    parts: list[list[int]] = [[] for _ in range(shards)]
    for key in keys:
        parts[rng.randrange(shards)].append(key)
    packed = [parallel.pack(sorted(part)) for part in parts]
    union = sorted(keys)
    for part in parts:
        mine = sorted(part)
        assert parallel.global_ranks(packed, mine) == [union.index(k) for k in mine]


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=6))
def test_balance_moves_excess_to_the_shards_below_their_share(sizes: list[int]) -> None:
    moves = parallel.balance(sizes)
    after = list(sizes)
    for src, dst, count in moves:
        assert count > 0 and sizes[src] > sizes[dst]
        after[src] -= count
        after[dst] += count
    total = sum(sizes)
    assert sum(after) == total and min(after) >= 0
    if total >= parallel.BALANCE_FROM:   # no share above the slack, up to integer division
        assert max(after) <= total // len(sizes) + max(parallel.BALANCE_SLACK * total,
                                                        len(sizes))
    else:
        assert moves == []


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_one_state_ends_the_search_three_ways(shards: int) -> None:
    """State 2 is the 4th distinct state (max_states), violates the invariant and satisfies a
    reachability property: one worker raises the violation first, before it records the
    witness or counts max_states, and so must the shards (which take over after level 2)."""
    graph = Graph({0: [3], 3: [1, 2], 1: [0], 2: [0]}, [0], {2}, set(), set(), [{2}], False)
    common = {"max_states": 4, "reachable": graph.reachable}
    one = explore(graph, **common)
    assert (one.violated, one.distinct_states, one.witnesses, one.stopped) == (
        "good", 4, {}, None)
    many = explore(graph, workers=shards, parallel_from=1, backend=InlineBackend, **common)
    assert _figures(many) == _figures(one)


@pytest.mark.parametrize("count", [False, True])
def test_release_frees_only_a_level_already_expanded(count: bool) -> None:
    """A worker frees the level it expanded while it waits (``Shard.release``): never the
    states it was given to expand (after ``load`` or ``advance``), never when per-action
    counting may expand them again (``prefix``); in chunks, then nothing is left to free."""
    graph = Graph({k: [k + 1, k + 2] for k in range(40)}, [0], set(), set(), set(), [], False)
    shard = parallel.Shard(graph, 0, 1, count, lambda action: action)
    shard.load(array("q", [_mix(k) for k in range(5)]), array("q", [0] * 5),
               [(rank, _mix(k), k) for rank, k in enumerate(range(5))])
    assert not shard.release(2) and len(shard.frontier.states) == 5   # not expanded yet
    shard.expand(lambda dest, claims: None, lambda: None)
    assert shard.generated == 10
    freed = 0
    while shard.release(2):
        freed += 1
    assert (freed, list(shard.frontier.states)) == ((0, [0, 1, 2, 3, 4]) if count else (3, []))
    assert len(shard.frontier) == 5   # its keys stay (prefix, progress)
    shard.arbitrate()
    shard.finish([])
    shard.advance([parallel.pack(shard.next.keys)])
    assert not shard.release(2) and list(shard.frontier.states) == [5, 6]


def test_spilled_frontier_same_search_on_raft() -> None:
    system = _system(TINY2)
    one = explore(system, count_actions=True, action_name=system.action_name, spill_from=None)
    spilled = explore(system, count_actions=True, action_name=system.action_name, spill_from=7)
    assert _figures(spilled) == _figures(one)
    assert (one.distinct_states, one.states_generated, one.depth) == (1_645, 12_861, 28)


@pytest.mark.parametrize("path", [TINY2, QUORUM], ids=lambda p: p.stem)
def test_worker_processes_spilling_their_levels_match_one_worker(path: Path) -> None:
    """Worker processes that keep at most 7 states of each list as objects (the rest pickled
    to their temporary files), per-action counts on: one worker's figures, counterexample
    included."""
    system = _system(path)
    common = {"count_actions": True, "action_name": system.action_name}
    one = explore(system, spill_from=None, **common)
    many = explore(system, workers=2, parallel_from=1, spill_from=7, **common)
    assert _figures(many) == _figures(one)
    assert not multiprocessing.active_children()


def test_owner_spreads_fingerprints_evenly() -> None:
    counts = [0, 0, 0]
    for n in range(30_000):
        counts[owner(_mix(n), 3)] += 1
    assert min(counts) > 9_000


def _system(path: Path, symmetry: bool | None = None) -> ProtocolSystem:
    return ProtocolSystem(load_model(path), symmetry=symmetry)


@pytest.mark.parametrize(("path", "symmetry", "tlc"), [
    (TINY2, False, (1_645, 12_861, 28)),
    (TINY2, True, (831, 6_475, 28)),
    (QUORUM, False, None),
    (QUORUM, True, None),
])
@pytest.mark.parametrize("stressed", [False, True])
def test_worker_processes_match_one_worker(path: Path, symmetry: bool, tlc: tuple | None,
                                           stressed: bool) -> None:
    system = _system(path, symmetry)
    kw = {"count_actions": True, "action_name": system.action_name}
    one = explore(system, **kw)
    # stressed: every level is evened out (states pickled from worker to worker)
    with patch.object(parallel, "BALANCE_FROM", 1 if stressed else parallel.BALANCE_FROM), \
            patch.object(parallel, "BALANCE_SLACK", 0 if stressed else parallel.BALANCE_SLACK):
        two = explore(system, workers=3 if stressed else 2, parallel_from=20, **kw)
    assert _figures(two) == _figures(one)
    if tlc is not None:
        assert (two.distinct_states, two.states_generated, two.depth) == tlc
    else:   # the planted quorum bug: the same shortest counterexample, 11 states (README)
        assert two.violated == "election_safety" and len(two.trace) == 11
    assert not multiprocessing.active_children()


def _check_json(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, dict]:
    code = main(["check", *argv, "--json", "--quiet"])
    return code, json.loads(capsys.readouterr().out)


def test_cli_workers_same_report_as_one(capsys: pytest.CaptureFixture,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explore_module, "PARALLEL_FROM", 20)
    code1, one = _check_json(capsys, str(QUORUM), "--workers", "1", "--per-action")
    code2, two = _check_json(capsys, str(QUORUM), "--workers", "2", "--per-action")
    assert code1 == code2 == 1
    assert (one["workers"], two["workers"]) == (1, 2)
    for key in ("verdict", "distinct_states", "states_generated", "depth", "violated",
                "counterexample", "per_action", "complete", "stopped"):
        assert two[key] == one[key], key


def test_cli_max_states_with_workers_is_exact(capsys: pytest.CaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explore_module, "PARALLEL_FROM", 20)
    code1, one = _check_json(capsys, str(TINY2), "--workers", "1", "--max-states", "1000")
    code2, two = _check_json(capsys, str(TINY2), "--workers", "2", "--max-states", "1000")
    assert code1 == code2 == 3
    assert two["distinct_states"] == one["distinct_states"] == 1000
    assert two["states_generated"] == one["states_generated"]
    assert two["stopped"] == one["stopped"] == "max_states 1,000 reached"


def test_time_limit_with_workers_stops_them(capsys: pytest.CaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explore_module, "PARALLEL_FROM", 20)
    started = time.perf_counter()
    code, report = _check_json(capsys, str(ELECT3M2), "--workers", "2", "--time-limit", "1.5")
    assert code == 3
    assert time.perf_counter() - started < 10
    assert report["complete"] is False and report["stopped"].startswith("time limit")
    assert 0 < report["distinct_states"] < 1_138_625
    assert not multiprocessing.active_children()


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to find the workers")
def test_ctrl_c_with_workers_exits_3_and_leaves_no_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "raftspec", "check", str(ELECT3M2), "--workers", "2", "--json",
         "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        children: list[int] = []
        deadline = time.monotonic() + 20
        while len(children) < 2 and time.monotonic() < deadline:   # the hand-off happened
            time.sleep(0.2)
            children = _children(proc.pid)
        assert len(children) == 2, "the workers never started"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err
    report = json.loads(out)
    assert report["complete"] is False and report["stopped"] == "interrupted"
    assert report["distinct_states"] > 0
    time.sleep(0.2)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def test_stats_account_for_every_level_and_step(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """RAFTSPEC_PARALLEL_STATS: one record per sharded level and worker, whose generated steps
    add up, with the one-process part, to the search's; the figures are unchanged."""
    path = tmp_path / "stats.json"
    monkeypatch.setenv(parallel.STATS_ENV, str(path))
    system = _system(TINY2)
    result = explore(system, workers=2, parallel_from=20)
    assert (result.distinct_states, result.states_generated, result.depth) == (1_645, 12_861, 28)
    data = json.loads(path.read_text())
    coordinator, workers = data["coordinator"], data["workers"]
    assert data["shards"] == len(workers) == 2
    levels = len(coordinator["levels"])
    assert levels > 0 and all(len(w["levels"]) == levels for w in workers)
    generated = sum(level["generated"] for w in workers for level in w["levels"])
    assert coordinator["one_process_generated"] + generated == result.states_generated
    for w in workers:
        totals = w["totals"]
        assert totals["process_cpu"] >= totals["thread_cpu"] > 0
        assert totals["expand_wall"] > 0 and totals["claims_sent"] > 0
        assert totals["bytes_sent"] >= 24 * totals["claims_sent"]
    assert not multiprocessing.active_children()


class _LevelCountingBackend(parallel.ProcessBackend):
    """Worker processes; ``at_level(args)`` is called before each level is sent (counted in
    ``levels``)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.levels = 0

    def at_level(self, args: list) -> None:
        pass

    def call_all(self, command: str, args: list, watch=None) -> list:   # noqa: ANN001
        if command == "level":
            self.levels += 1
            self.at_level(args)
        return super().call_all(command, args, watch)


class _KillingBackend(_LevelCountingBackend):
    """Worker processes, one of which is killed (SIGKILL, as the OOM killer does) at the third
    level: once every worker has been sent it (``mid_level``: the others then expand it and
    wait for the dead one's claims), or just before it is sent."""

    mid_level = True

    def at_level(self, args: list) -> None:
        if self.levels == 3 and not self.mid_level:
            self._kill()

    def _send(self, shard: int, message: tuple) -> None:
        super()._send(shard, message)
        if (self.mid_level and self.levels == 3 and message[0] == "level"
                and shard == self.shards - 1):
            self._kill()

    def _kill(self) -> None:
        os.kill(self.processes[1].pid, signal.SIGKILL)
        self.processes[1].join(5)


@pytest.mark.parametrize("mid_level", [True, False])
def test_a_killed_worker_ends_the_search_without_a_verdict(mid_level: bool) -> None:
    """The others may be waiting for its claims: the search must not wait with them. It ends
    as a budget does: incomplete, saying which worker died, the figures so far, no process
    left. (Before: the coordinator took the dead worker's closed pipe for an answer and waited
    for ever for the survivor, itself waiting for the dead worker's claims.)"""
    backend = type("Killing", (_KillingBackend,), {"mid_level": mid_level})
    system = ProtocolSystem(load_model(TINY3))
    started = time.perf_counter()
    result = explore(system, workers=2, parallel_from=1, backend=backend,
                     deadline=time.perf_counter() + 60)   # a safety net: a hang fails, slowly
    assert time.perf_counter() - started < 30
    assert result.complete is False
    assert result.stopped == "worker 1 died (exit code -9)"
    assert result.violated is None
    assert 0 < result.distinct_states < 61_805
    assert not multiprocessing.active_children()


class _StoppingBackend(_LevelCountingBackend):
    """Worker processes, stopped as a budget or Ctrl-C stops them (``stop_with``) once the 14th
    level has been sent to every worker: they are in the middle of it."""

    stop_with: BaseException = parallel._Stop("time limit of 1 s reached")

    def at_level(self, args: list) -> None:
        if self.levels == 14:
            for s, arg in enumerate(args):
                self._send(s, ("level", arg))
            raise self.stop_with


@pytest.mark.parametrize("stop", [parallel._Stop("time limit of 1 s reached"),
                                  KeyboardInterrupt()])
def test_a_stop_mid_level_keeps_the_witnesses_of_the_levels_done(stop: BaseException) -> None:
    """What one worker reports after a stop: the shortest witness of a property reached in an
    earlier level, the others undetermined (before: with workers, every one was undetermined,
    the shards that hold the parents gone). Each worker leaves the level it is in, answers for
    the parents, then ends."""
    text = TINY3.read_text() + "reachable: [leader_elected, leader_changed]\n"
    system = ProtocolSystem(parse_model(text, "tiny3.yaml"))
    whole = explore(system, reachable=system.reachable)
    assert len(whole.witnesses["leader_elected"]) == 10 and whole.depth == 40
    backend = type("Stopping", (_StoppingBackend,), {"stop_with": stop})
    started = time.perf_counter()
    result = explore(system, workers=2, parallel_from=1, backend=backend,
                     reachable=system.reachable)
    assert time.perf_counter() - started < 30
    assert result.complete is False
    assert result.stopped == ("interrupted" if isinstance(stop, KeyboardInterrupt)
                              else "time limit of 1 s reached")
    assert result.witnesses == {"leader_elected": whole.witnesses["leader_elected"]}
    assert result.unreached == ("leader_changed",)
    assert not multiprocessing.active_children()


def test_a_killed_worker_is_exit_3_with_the_json_report(capsys: pytest.CaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explore_module, "PARALLEL_FROM", 1)
    monkeypatch.setattr(parallel, "ProcessBackend", _KillingBackend)
    code, report = _check_json(capsys, str(TINY2), "--workers", "2", "--time-limit", "60")
    assert code == 3
    assert report["complete"] is False
    assert report["stopped"] == "worker 1 died (exit code -9)"
    assert 0 < report["distinct_states"] < 1_645
