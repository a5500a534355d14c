"""Accept AppendEntries from a stale term (paper §5.1: "If a server receives a request with a
stale term number, it rejects the request").

A copy of raft.tla's ``HandleAppendEntriesRequest`` that handles a request of an older term as if
it were of the receiver's own: a deposed leader can still overwrite and commit entries on
followers, which breaks StateMachineSafety.
"""

from __future__ import annotations

from raftspec.protocol import Protocol
from raftspec.reference import actions
from raftspec.reference.state import (
    APPEND_ENTRIES_REQUEST,
    APPEND_ENTRIES_RESPONSE,
    AppendEntriesResponse,
    Message,
    Role,
    State,
)


def handle_append_entries_request(state: State, m: Message) -> State | None:
    """raft.tla ``HandleAppendEntriesRequest`` without the rejection of stale terms."""
    i, j = m.mdest, m.msource
    s = state.server(i)
    if m.mtype != APPEND_ENTRIES_REQUEST or m.mterm > s.current_term:
        return None

    def answer(st: State, success: bool, match: int) -> State:
        return actions.reply(st, AppendEntriesResponse(APPEND_ENTRIES_RESPONSE, s.current_term,
                                                       success, match, i, j), m)

    if s.role == Role.FOLLOWER and not actions.append_entries_log_ok(state, i, m):
        return answer(state, False, 0)
    if s.role == Role.CANDIDATE:
        return state.update(i, s.evolve(role=Role.FOLLOWER))
    if s.role != Role.FOLLOWER:
        return None
    index = m.mprev_log_index + 1
    if not m.mentries or (len(s.log) >= index and s.log[index - 1].term == m.mentries[0].term):
        state = state.update(i, s.evolve(commit_index=m.mcommit_index))
        return answer(state, True, m.mprev_log_index + len(m.mentries))
    if len(s.log) >= index:
        return state.update(i, s.evolve(log=s.log[:-1]))
    return state.update(i, s.evolve(log=s.log + (m.mentries[0],)))


def edit(protocol: Protocol) -> Protocol:
    return protocol.replace(
        "HandleAppendEntriesRequest", apply=handle_append_entries_request,
        encoder="raftspec.spec.mutant_encoders:no_term_check_on_append",
        expect=actions.handle_append_entries_request, edit="no_term_check_on_append")
