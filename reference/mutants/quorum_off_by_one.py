"""Count half of the servers as a quorum: 2|Q| >= N instead of 2|Q| > N, in elections and in
commitment (paper §5.2).

With an even number of servers two disjoint halves are both "quorums", so two candidates can win
the same term. Copies of raft.tla's ``BecomeLeader`` and ``AdvanceCommitIndex`` with the weaker
quorum.
"""

from __future__ import annotations

from raftspec.protocol import Protocol
from raftspec.reference import actions
from raftspec.reference.state import Role, State


def is_half(members: frozenset[int] | set[int], n: int) -> bool:
    """The buggy ``Quorum``: at least half of the servers."""
    return 2 * len(members) >= n


def become_leader(state: State, i: int) -> State | None:
    """raft.tla ``BecomeLeader`` with votes from half of the servers enough."""
    s = state.server(i)
    if s.role != Role.CANDIDATE or not is_half(s.votes_granted, len(state.servers)):
        return None
    n = len(state.servers)
    return state.update(i, s.evolve(role=Role.LEADER, next_index=(len(s.log) + 1,) * n,
                                    match_index=(0,) * n))


def advance_commit_index(state: State, i: int) -> State | None:
    """raft.tla ``AdvanceCommitIndex`` with entries stored on half of the servers committed."""
    s = state.server(i)
    if s.role != Role.LEADER:
        return None
    n = len(state.servers)
    for index in range(len(s.log), 0, -1):
        agree = {i} | {k for k in range(1, n + 1) if k != i and s.match_index[k - 1] >= index}
        if is_half(agree, n):
            if s.log[index - 1].term == s.current_term:
                return state.update(i, s.evolve(commit_index=index))
            return state
    return state


def edit(protocol: Protocol) -> Protocol:
    encoders = "raftspec.spec.mutant_encoders"
    protocol = protocol.replace(
        "BecomeLeader", apply=become_leader, encoder=f"{encoders}:quorum_off_by_one_election",
        expect=actions.become_leader, edit="quorum_off_by_one")
    return protocol.replace(
        "AdvanceCommitIndex", apply=advance_commit_index,
        encoder=f"{encoders}:quorum_off_by_one_commit", expect=actions.advance_commit_index)
