"""AdvanceCommitIndex counts replicas of entries from earlier terms (the paper's Figure 8 bug,
§5.4.2).

A copy of raft.tla's ``AdvanceCommitIndex`` without the condition that the entry at the new
commit index be of the leader's current term: an entry replicated on a majority by an earlier
leader can be committed and later overwritten, which breaks StateMachineSafety.
"""

from __future__ import annotations

from raftspec.protocol import Protocol
from raftspec.reference import actions
from raftspec.reference.state import Role, State


def advance_commit_index(state: State, i: int) -> State | None:
    """raft.tla ``AdvanceCommitIndex`` committing the largest quorum-replicated index, of any
    term."""
    s = state.server(i)
    if s.role != Role.LEADER:
        return None
    index = actions.agree_index_quorum(state, i)
    if index > 0:
        return state.update(i, s.evolve(commit_index=index))
    return state


def edit(protocol: Protocol) -> Protocol:
    return protocol.replace(
        "AdvanceCommitIndex", apply=advance_commit_index,
        encoder="raftspec.spec.mutant_encoders:commit_previous_term",
        expect=actions.advance_commit_index, edit="commit_previous_term")
