"""The generic engine on small systems whose state graphs are known by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftspec.checker.explore import explore
from raftspec.checker.system import ProtocolSystem
from raftspec.spec.model import MODELS_DIR, load_model


class Counter:
    """x' = x + 1 or x' = x + 2 under the constraint x <= limit (SEMANTICS.md's example)."""

    def __init__(self, limit: int, bad: int | None = None) -> None:
        self.limit = limit
        self.invariants = {} if bad is None else {"not_bad": lambda x: x != bad}
        self.step_properties = {}

    def init_states(self):
        return (0,)

    def steps(self, x):
        return (("inc1", x + 1), ("inc2", x + 2))

    def constraint(self, x):
        return x <= self.limit

    def fingerprint(self, x):
        return hash((x,))


def test_constraint_pruned_successors_count_as_generated_only() -> None:
    result = explore(Counter(3))
    assert (result.states_generated, result.distinct_states, result.depth) == (9, 4, 3)
    assert result.verdict == "ok"


def test_violation_gives_a_shortest_path() -> None:
    result = explore(Counter(20, bad=7))
    assert result.violated == "not_bad"
    xs = [x for _, x in result.trace]
    assert len(xs) == 5  # e.g. 0 -> 2 -> 4 -> 6 -> 7: four steps, five states
    assert result.trace[0][0] is None and xs[0] == 0 and xs[-1] == 7
    assert all(b - a in (1, 2) for a, b in zip(xs, xs[1:], strict=False))


class Graph:
    """An arbitrary finite directed graph; node ``bad`` violates the invariant."""

    def __init__(self, edges: dict[int, list[int]], bad: int) -> None:
        self.edges = edges
        self.invariants = {"not_bad": lambda n: n != bad}
        self.step_properties = {}

    def init_states(self):
        return (0,)

    def steps(self, n):
        return [((n, m), m) for m in self.edges.get(n, [])]

    def constraint(self, n):
        return True

    def fingerprint(self, n):
        return hash((n,))


def test_a_step_past_position_65535_is_replayed_exactly() -> None:
    """The engine stores each state's position among its parent's steps in 2 bytes until one
    needs more: a state with 70,000 successors, the bad one among the last."""
    edges = {0: [1], 1: list(range(2, 70_002))}
    result = explore(Graph(edges, bad=70_001))
    assert [n for _, n in result.trace] == [0, 1, 70_001]
    assert result.trace[-1][0] == (1, 70_001)
    result = explore(Graph({**edges, 70_001: [70_002]}, bad=70_002))
    assert [n for _, n in result.trace] == [0, 1, 70_001, 70_002]


def _bfs_distance(edges: dict[int, list[int]], target: int) -> int | None:
    dist = {0: 0}
    queue = deque([0])
    while queue:
        n = queue.popleft()
        for m in edges.get(n, []):
            if m not in dist:
                dist[m] = dist[n] + 1
                queue.append(m)
    return dist.get(target)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.integers(0, 12), st.lists(st.integers(0, 12), max_size=4), max_size=13),
    st.integers(1, 12),
)
def test_counterexample_is_a_shortest_real_path(edges, bad) -> None:
    result = explore(Graph(edges, bad))
    distance = _bfs_distance(edges, bad)
    if distance is None:
        assert result.verdict == "ok"
        return
    assert result.violated == "not_bad"
    assert len(result.trace) == distance + 1
    nodes = [n for _, n in result.trace]
    assert nodes[0] == 0 and nodes[-1] == bad
    for a, b in zip(nodes, nodes[1:], strict=False):
        assert b in edges[a]


def test_step_property_violation_ends_with_the_bad_step() -> None:
    system = Counter(10)
    system.step_properties = {"small_steps": lambda x, y: y - x == 1 or x < 4}
    result = explore(system)
    assert result.violated == "small_steps"
    xs = [x for _, x in result.trace]
    assert xs[-1] - xs[-2] == 2 and xs[-2] >= 4
    assert xs == [0, 2, 4, 6]  # the first BFS level with a +2 step from x >= 4 is level 3


FINGERPRINT_SCRIPT = """
import json
from raftspec.checker.system import ProtocolSystem
from raftspec.checker.explore import explore
from raftspec.spec.model import MODELS_DIR, load_model
from raftspec.reference import initial_state, successors
model = load_model(MODELS_DIR / "conformance" / "tiny2.yaml")
out = []
for symmetry in (False, True):
    system = ProtocolSystem(model, symmetry=symmetry)
    frontier = [initial_state(2)]
    for _ in range(6):
        frontier = [s for f in frontier for _, s in successors(f, model.config)]
    out.append(sorted({system.fingerprint(s) for s in frontier}))
print(json.dumps(out))
"""


def test_fingerprints_do_not_depend_on_the_hash_seed() -> None:
    outputs = []
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-c", FINGERPRINT_SCRIPT], env=env,
                              capture_output=True, text=True, check=True)
        outputs.append(json.loads(proc.stdout))
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0][0]) > 10


def test_max_depth_checks_exactly_the_first_levels() -> None:
    assert explore(Counter(20, bad=7), max_depth=4).verdict == "ok"  # 7 is first at level 5
    result = explore(Counter(20, bad=7), max_depth=5)
    assert result.violated == "not_bad" and len(result.trace) == 5
    bounded = explore(Counter(3), max_depth=2)
    assert (bounded.depth, bounded.distinct_states, bounded.complete) == (2, 3, False)
    assert explore(Counter(3)).complete


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3000), st.integers(0, 4))
def test_fingerprint_set_behaves_like_a_set(fps, extra_zeros) -> None:
    from raftspec.checker.fingerprints import FingerprintSet

    table, reference = FingerprintSet(capacity=4), set()
    for fp in fps + [0] * extra_zeros:
        assert table.add(fp) == ((fp or 1) not in reference)
        reference.add(fp or 1)
        assert not table.add(fp)  # now present
    assert len(table) == len(reference)
    for fp in range(-50, 50):
        if fp:
            assert table.add(fp) == (fp not in reference)


class _StartInterrupted:
    """A shard backend hit by Ctrl-C while its workers start."""

    def __init__(self, *args) -> None:
        raise KeyboardInterrupt


class _DealInterrupted:
    """A shard backend built, then hit by Ctrl-C as the search first looks at it (dealing out
    the levels searched so far, before the shards' search begins); ``closed`` when closed."""

    closed = False

    def __init__(self, *args) -> None:   # as a backend is built
        pass

    @property
    def shards(self) -> int:
        raise KeyboardInterrupt

    def close(self) -> None:
        _DealInterrupted.closed = True


@pytest.mark.parametrize("backend", [_StartInterrupted, _DealInterrupted])
def test_ctrl_c_at_the_hand_off_ends_with_the_figures_of_the_levels_searched(backend) -> None:
    """A Ctrl-C landing while the workers start or the search is handed to them still ends
    with a result (the JSON `check` prints), incomplete, "interrupted", with the figures of the
    levels searched in this process: its depth is the levels expanded, as for any interrupted
    search, and its states those of the same search bounded to one level more (the level
    found, checked and handed over)."""
    system = ProtocolSystem(load_model(MODELS_DIR / "conformance" / "tiny2.yaml"),
                            symmetry=False)
    _DealInterrupted.closed = False
    try:
        result = explore(system, workers=2, parallel_from=50, backend=backend)
    except KeyboardInterrupt:   # let pytest report a failure, not a user's interrupt
        pytest.fail("the Ctrl-C escaped explore: `check --json` would print no JSON")
    assert not result.complete and result.stopped == "interrupted"
    bounded = explore(system, max_depth=result.depth + 1)
    assert result.distinct_states > 50
    assert (result.distinct_states, result.states_generated) == (
        bounded.distinct_states, bounded.states_generated)
    assert _DealInterrupted.closed == (backend is _DealInterrupted)  # a built one is closed
