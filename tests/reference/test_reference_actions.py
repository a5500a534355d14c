"""Transcripts of the raft.tla subtleties that change state counts (SEMANTICS.md checklist)."""

from __future__ import annotations

from raftspec.protocol.bag import bag_discard, bag_send
from raftspec.reference import actions
from raftspec.reference.config import Config
from raftspec.reference.mutants import commit_previous_term, no_term_check_on_append
from raftspec.reference.protocol import receive
from raftspec.reference.state import (
    APPEND_ENTRIES_REQUEST,
    NIL,
    AppendEntriesRequest,
    Entry,
    Role,
    Server,
    State,
    initial_state,
)
from raftspec.reference.successors import steps, successors


def only_message(state: State):
    (m, count), = state.messages
    assert count == 1
    return m


def elect(state: State, leader: int, voters: list[int]) -> State:
    """Timeout, then a vote request and its answer for each voter (the leader included)."""
    state = actions.timeout(state, leader)
    for j in voters:
        state = actions.request_vote(state, leader, j)
        request = only_message(state)
        for _ in range(2):  # UpdateTerm first where the voter is behind, then the vote
            _, state = receive(state, request)
            if not any(m == request for m, _ in state.messages):
                break
        _, state = receive(state, only_message(state))
    return actions.become_leader(state, leader)


def test_candidate_votes_for_itself_only_through_a_message() -> None:
    state = actions.timeout(initial_state(3), 1)
    assert state.server(1).voted_for == NIL and state.server(1).role == Role.CANDIDATE
    state = actions.request_vote(state, 1, 1)
    name, state = receive(state, only_message(state))
    assert name == "HandleRequestVoteRequest" and state.server(1).voted_for == 1
    name, state = receive(state, only_message(state))
    assert name == "HandleRequestVoteResponse"
    assert state.server(1).votes_granted == {1} and state.messages == ()


def test_a_candidate_can_give_its_vote_to_a_rival_of_the_same_term() -> None:
    state = actions.timeout(actions.timeout(initial_state(3), 1), 2)
    state = actions.request_vote(state, 2, 1)
    _, state = receive(state, only_message(state))
    assert state.server(1).voted_for == 2 and state.server(1).role == Role.CANDIDATE


def test_update_term_leaves_the_message_in_the_bag() -> None:
    state = actions.request_vote(actions.timeout(initial_state(2), 1), 1, 2)
    request = only_message(state)
    name, state = receive(state, request)
    assert name == "UpdateTerm"
    assert state.server(2).current_term == 2 and state.messages == ((request, 1),)


def test_timeout_is_not_enabled_for_a_leader() -> None:
    state = elect(initial_state(3), 1, [1, 2])
    assert state.server(1).role == Role.LEADER
    assert actions.timeout(state, 1) is None


def test_restart_keeps_term_vote_and_log_and_resets_commit_index() -> None:
    state = elect(initial_state(3), 1, [1, 2])
    state = actions.client_request(state, 1, 1)
    s = state.server(1)
    state = state.update(1, s.evolve(commit_index=1))
    after = actions.restart(state, 1).server(1)
    assert (after.current_term, after.voted_for, after.log) == (s.current_term, s.voted_for, s.log)
    assert after.role == Role.FOLLOWER and after.commit_index == 0
    assert after.next_index == (1, 1, 1) and after.match_index == (0, 0, 0)


def test_conflicting_entries_are_deleted_one_per_step_from_the_tail() -> None:
    old = (Entry(1, 1), Entry(1, 1), Entry(1, 1))
    follower = initial_state(2).server(2).evolve(current_term=2, log=old)
    state = initial_state(2).update(2, follower)
    request = AppendEntriesRequest(APPEND_ENTRIES_REQUEST, 2, 0, 0, (Entry(2, 1),), 0, 1, 2)
    state = state.send(request)
    logs = []
    for _ in range(5):
        name, state = receive(state, request)
        logs.append(len(state.server(2).log))
    assert name == "HandleAppendEntriesRequest"
    # delete, delete, delete, append, then "already done" replies and consumes the request
    assert logs == [2, 1, 0, 1, 1]
    assert state.server(2).log == (Entry(2, 1),)
    assert all(m.mtype != APPEND_ENTRIES_REQUEST for m, _ in state.messages)


def test_already_done_overwrites_commit_index_even_downwards() -> None:
    follower = initial_state(2).server(2).evolve(current_term=2,
                            log=(Entry(2, 1),), commit_index=1)
    state = initial_state(2).update(2, follower)
    stale = AppendEntriesRequest(APPEND_ENTRIES_REQUEST, 2, 0, 0, (Entry(2, 1),), 0, 1, 2)
    _, state = receive(state.send(stale), stale)
    assert state.server(2).commit_index == 0


def test_advance_commit_index_only_commits_an_entry_of_the_current_term() -> None:
    leader = Server(3, Role.LEADER, 1, (Entry(2, 1),), 0, frozenset(), frozenset(),
                    (2, 2, 2), (0, 1, 0))
    state = initial_state(3).update(1, leader)
    assert actions.advance_commit_index(state, 1) == state  # a self-loop: term 2 entry, term 3
    mutant = commit_previous_term.advance_commit_index(state, 1)
    assert mutant.server(1).commit_index == 1


def test_bag_key_leaves_when_its_count_reaches_zero() -> None:
    m = AppendEntriesRequest(APPEND_ENTRIES_REQUEST, 1, 0, 0, (), 0, 1, 2)
    bag = bag_send(bag_send((), m), m)
    assert bag == ((m, 2),)
    assert bag_discard(bag, m) == ((m, 1),)
    assert bag_discard(bag_discard(bag, m), m) == ()
    assert bag_discard((), m) == ()


def test_leader_receiving_an_append_of_its_own_term_has_no_step() -> None:
    state = elect(initial_state(3), 1, [1, 2])
    own = AppendEntriesRequest(APPEND_ENTRIES_REQUEST, 2, 0, 0, (), 0, 2, 1)
    assert receive(state.send(own), own) is None


def test_stale_append_is_rejected_unless_the_term_check_is_mutated() -> None:
    follower = initial_state(2).server(2).evolve(current_term=3)
    state = initial_state(2).update(2, follower)
    stale = AppendEntriesRequest(APPEND_ENTRIES_REQUEST, 2, 0, 0, (Entry(2, 1),), 0, 1, 2)
    state = state.send(stale)
    _, rejected = receive(state, stale)
    assert rejected.server(2).log == () and not only_message(rejected).msuccess
    accepted = no_term_check_on_append.handle_append_entries_request(state, stale)
    assert accepted.server(2).log == (Entry(2, 1),)


def test_evolve_covers_every_server_field() -> None:
    s = initial_state(2).server(1)
    names = list(Server._fields)
    for k, name in enumerate(names):
        value = (k + 100,)
        assert getattr(s.evolve(**{name: value}), name) == value
    assert s.evolve() == s


def test_successors_drop_exactly_the_out_of_bounds_steps() -> None:
    config = Config(servers=2, values=1, max_term=1, max_log_length=1, max_messages=1)
    state = initial_state(2)
    every = list(steps(state, config))
    kept = list(successors(state, config))
    assert [a.name for a, _ in every] == ["Restart", "Restart", "Timeout", "Timeout"]
    assert [a.name for a, _ in kept] == ["Restart", "Restart"]  # Timeout reaches term 2
