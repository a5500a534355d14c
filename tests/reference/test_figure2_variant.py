"""The Figure 2 variant: its actions do what Figure 2 says, the checker finds it safe on its
models, random schedules keep every property, and a planted bug is caught (so these can fail)."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from walks import assert_safe, random_walk

from raftspec.checker.explore import explore
from raftspec.checker.system import ProtocolSystem
from raftspec.reference import Config, successors
from raftspec.reference.properties import INVARIANTS, STEP_PROPERTIES
from raftspec.reference.protocol import protocol_for
from raftspec.reference.state import (
    APPEND_ENTRIES_REQUEST,
    NIL,
    AppendEntriesRequest,
    Entry,
    Role,
    State,
    initial_state,
)
from raftspec.reference.variants import figure2
from raftspec.spec.model import MODELS_DIR, load_model

SAFE_MODELS = ["figure2_tiny3", "figure2_faults2"]
FIGURE2 = protocol_for("figure2", frozenset())


def _with(state: State, i: int, **changes) -> State:
    return state.update(i, state.server(i).evolve(**changes))


def test_timeout_votes_for_self_in_one_step() -> None:
    state = figure2.timeout(figure2.initial_state(3), 2)
    s = state.server(2)
    assert (s.current_term, s.role, s.voted_for) == (1, Role.CANDIDATE, 2)
    assert s.votes_granted == frozenset({2})
    assert state.messages == ()


def test_initial_term_is_zero_as_in_figure2() -> None:
    assert all(s.current_term == 0 for s in figure2.initial_state(3).servers)


def test_append_entries_carries_every_entry_from_next_index() -> None:
    state = _with(initial_state(3), 1, role=Role.LEADER, current_term=2,
                  log=(Entry(1, 1), Entry(2, 1), Entry(2, 1)), next_index=(2, 2, 2),
                  commit_index=3)
    m = figure2.append_entries(state, 1, 2).messages[0][0]
    assert (m.mprev_log_index, m.mprev_log_term, m.mentries) == (1, 1, (Entry(2, 1),) * 2)
    assert m.mcommit_index == 3
    heartbeat = figure2.append_entries(state, 1, 2, count=0).messages[0][0]
    assert heartbeat.mentries == () and heartbeat.mcommit_index == 1


def test_receiver_truncates_at_the_first_conflict_and_appends_in_one_step() -> None:
    state = _with(initial_state(2), 2, log=(Entry(1, 1), Entry(1, 1), Entry(1, 1)))
    state = _with(state, 2, current_term=3)
    m = AppendEntriesRequest(APPEND_ENTRIES_REQUEST, 3, 1, 1, (Entry(3, 1),), 5, 1, 2)
    state = state.send(m)
    name, nxt = FIGURE2.receive(state, m)
    assert name == "HandleAppendEntriesRequest"
    s = nxt.server(2)
    assert s.log == (Entry(1, 1), Entry(3, 1))
    assert s.commit_index == 2  # min(leaderCommit 5, index of last new entry 2)
    (reply, _), = nxt.messages
    assert reply.msuccess and reply.mmatch_index == 2


def test_stale_shorter_append_does_not_truncate_matching_entries() -> None:
    state = _with(initial_state(2), 2, current_term=1, log=(Entry(1, 1), Entry(1, 1)))
    m = AppendEntriesRequest(APPEND_ENTRIES_REQUEST, 1, 0, 0, (Entry(1, 1),), 0, 1, 2)
    _, nxt = FIGURE2.receive(state.send(m), m)
    assert nxt.server(2).log == (Entry(1, 1), Entry(1, 1))


def test_candidate_converts_to_follower_on_append_of_its_term() -> None:
    state = figure2.timeout(figure2.initial_state(2), 2)
    m = AppendEntriesRequest(APPEND_ENTRIES_REQUEST, 1, 0, 0, (), 0, 1, 2)
    _, nxt = FIGURE2.receive(state.send(m), m)
    assert nxt.server(2).role == Role.FOLLOWER
    assert nxt.server(2).voted_for == 2


def test_commit_needs_a_majority_and_an_entry_of_the_current_term() -> None:
    state = _with(initial_state(3), 1, role=Role.LEADER, current_term=2,
                  log=(Entry(1, 1), Entry(2, 1)), match_index=(0, 2, 0))
    assert figure2.advance_commit_index(state, 1, 1) is None  # entry of term 1
    assert figure2.advance_commit_index(state, 1, 2).server(1).commit_index == 2
    lonely = _with(state, 1, match_index=(0, 0, 0))
    assert figure2.advance_commit_index(lonely, 1, 2) is None


def test_vote_needs_an_up_to_date_log_unless_mutated() -> None:
    state = figure2.timeout(figure2.initial_state(2), 1)
    state = _with(state, 2, current_term=1, log=(Entry(1, 1),))
    state = figure2.request_vote(state, 1, 2)
    m = state.messages[0][0]
    _, denied = FIGURE2.receive(state, m)
    assert denied.server(2).voted_for == NIL
    _, granted = protocol_for("figure2", frozenset({"vote_without_log_check"})).receive(state, m)
    assert granted.server(2).voted_for == 1


@pytest.mark.parametrize("name", SAFE_MODELS)
def test_checker_finds_every_property_holding_on_figure2_models(name: str) -> None:
    model = load_model(MODELS_DIR / f"{name}.yaml")
    assert model.config.variant == "figure2"
    assert set(model.invariants) == set(INVARIANTS) | set(STEP_PROPERTIES)
    result = explore(ProtocolSystem(model))
    assert result.violated is None
    assert result.distinct_states > 1000


def test_checker_catches_a_planted_bug_in_the_figure2_variant() -> None:
    model = load_model(MODELS_DIR / "figure2_mutant_vote_without_log_check.yaml")
    result = explore(ProtocolSystem(model))
    assert result.violated == "leader_completeness"
    final = result.trace[-1][1]
    assert not INVARIANTS["leader_completeness"](final, model.config)


CONFIGS = [
    Config(servers=3, values=2, max_term=4, max_log_length=4, max_messages=3, variant="figure2"),
    Config(servers=2, values=1, max_term=5, max_log_length=3, max_messages=2, variant="figure2"),
    Config(servers=5, values=1, max_term=3, max_log_length=3, max_messages=3, drop=False,
           variant="figure2"),
]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(CONFIGS), st.lists(st.integers(0, 10_000), min_size=1, max_size=100))
def test_random_figure2_schedules_keep_every_safety_property(config, choices) -> None:
    assert_safe(random_walk(config, choices), config)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=100))
def test_random_schedules_with_the_planted_bug_are_not_all_safe_but_each_step_is_legal(
        choices) -> None:
    """Every successor the mutated variant yields is either a correct step or a vote granted
    against the up-to-date rule: the mutant changes exactly one condition."""
    config = attrs.evolve(CONFIGS[0], mutants=frozenset({"vote_without_log_check"}))
    correct = CONFIGS[0]
    state = initial_state(config.servers)
    for choice in choices:
        mutated = list(successors(state, config))
        good = set(successors(state, correct))
        extra = [(a, s) for a, s in mutated if (a, s) not in good]
        assert all(a.name == "HandleRequestVoteRequest" for a, _ in extra)
        if not mutated:
            break
        state = mutated[choice % len(mutated)][1]
