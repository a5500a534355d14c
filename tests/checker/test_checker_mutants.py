"""Planted bugs are found, with shortest counterexamples; the unmutated protocol is not flagged."""

from __future__ import annotations

import attrs
import pytest

from raftspec.checker.explore import explore
from raftspec.checker.system import ProtocolSystem
from raftspec.reference import actions
from raftspec.reference.config import Config
from raftspec.reference.mutants import commit_previous_term
from raftspec.reference.properties import INVARIANTS
from raftspec.reference.protocol import RAFT_TLA, receive
from raftspec.reference.state import initial_state
from raftspec.reference.successors import steps
from raftspec.spec.model import MODELS_DIR, load_model

# mutant model: (violated property, counterexample length in states, as BFS finds it)
FOUND_BY_BFS = {
    "mutant_vote_without_log_check": ("leader_completeness", 26),
    "mutant_no_term_check_on_append": ("state_machine_safety", 32),
    "mutant_quorum_off_by_one": ("election_safety", 11),
}


def _check_trace(model, result) -> None:
    """The counterexample is a real path from Init through enabled, in-bounds actions, and only
    its last state (or last step) breaks the property."""
    system = ProtocolSystem(model)
    trace = result.trace
    assert trace[0][0] is None
    assert trace[0][1] == next(iter(system.init_states()))
    for (_, before), (action, after) in zip(trace, trace[1:], strict=False):
        assert (action, after) in list(steps(before, model.config))
        assert system.constraint(after)
    holds = INVARIANTS[result.violated]
    assert not holds(trace[-1][1], model.config)
    assert all(holds(state, model.config) for _, state in trace[:-1])


@pytest.mark.parametrize("name", sorted(FOUND_BY_BFS))
def test_mutant_violation_is_found_with_a_shortest_counterexample(name: str, bfs) -> None:
    model = load_model(MODELS_DIR / f"{name}.yaml")
    result = bfs(MODELS_DIR / f"{name}.yaml")
    prop, length = FOUND_BY_BFS[name]
    assert result.violated == prop
    assert len(result.trace) == length
    _check_trace(model, result)


def test_the_same_bounds_without_a_mutant_are_safe_to_the_same_depth() -> None:
    """Each mutant model's bounds, unmutated, explored as deep as the mutant's counterexample
    (models with equal bounds share one run): no violation."""
    depth_by_clean_model = {}
    for name, (_, length) in FOUND_BY_BFS.items():
        model = load_model(MODELS_DIR / f"{name}.yaml")
        clean = attrs.evolve(model, name="clean", path="", protocol=RAFT_TLA,
                             config=attrs.evolve(model.config, mutants=frozenset()))
        depth_by_clean_model[clean] = max(length, depth_by_clean_model.get(clean, 0))
    assert len(depth_by_clean_model) == 2  # the two 3-server mutant models share their bounds
    for clean, depth in depth_by_clean_model.items():
        result = explore(ProtocolSystem(clean), max_depth=depth)
        assert result.violated is None and result.depth == depth


def test_figure_8_commit_of_an_earlier_term_breaks_leader_completeness() -> None:
    """The paper's Figure 8, as a transcript: only the commit_previous_term mutant commits the
    term-2 entry in term 4, and then the term-5 leader lacks a committed entry. (BFS cannot reach
    this five-term scenario within CI time; see mutant_commit_previous_term.yaml.)"""
    config = Config(servers=3, values=1, max_term=5, max_log_length=1, max_messages=1,
                    restart=False, duplicate=False, drop=False,
                    mutants=frozenset({"commit_previous_term"}))

    def deliver_all(state):
        while state.messages:
            (m, _), = state.messages
            _, state = receive(state, m)
        return state

    def campaign(state, candidate, asked):
        """Time out, then ask each server in turn for its vote (one message at a time)."""
        state = actions.timeout(state, candidate)
        for j in asked:
            state = deliver_all(actions.request_vote(state, candidate, j))
        return actions.become_leader(state, candidate)

    state = initial_state(3)
    state = actions.client_request(campaign(state, 1, [1, 2]), 1, 1)  # s1 leads term 2: [e2]
    state = campaign(state, 2, [2, 3, 1])          # s2 leads term 3; s1 steps down, refuses
    state = actions.client_request(state, 2, 1)    # s2: [e3]
    state = campaign(state, 1, [1, 3])             # s1 leads term 4 with s3's vote
    assert [s.current_term for s in state.servers] == [4, 3, 4]
    for _ in range(2):                             # a failed probe, then e2 reaches s3
        state = deliver_all(actions.append_entries(state, 1, 3))
    assert state.server(1).match_index[2] == 1
    assert actions.advance_commit_index(state, 1) == state  # the real rule refuses: e2 is old
    state = commit_previous_term.advance_commit_index(state, 1)
    assert state.server(1).commit_index == 1       # the mutant commits e2 in term 4
    assert INVARIANTS["leader_completeness"](state, config)
    state = deliver_all(actions.append_entries(state, 1, 2))  # s2 learns of term 4, keeps [e3]
    state = campaign(state, 2, [2, 3])             # s2 wins term 5: s3's [e2] is older
    assert state.server(2).current_term == 5 and state.server(2).log[0].term == 3
    assert all(config.max_term >= s.current_term for s in state.servers)
    assert not INVARIANTS["leader_completeness"](state, config)
