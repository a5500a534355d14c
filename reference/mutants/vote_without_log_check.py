"""Grant a vote ignoring the up-to-date log rule (paper §5.4.1).

A copy of raft.tla's ``HandleRequestVoteRequest`` without ``logOk``: a server with a longer or
newer log can vote for a candidate that lacks committed entries, which breaks
LeaderCompleteness.
"""

from __future__ import annotations

from raftspec.protocol import Protocol
from raftspec.reference import actions
from raftspec.reference.state import (
    NIL,
    REQUEST_VOTE_REQUEST,
    REQUEST_VOTE_RESPONSE,
    Message,
    RequestVoteResponse,
    State,
)


def handle_request_vote_request(state: State, m: Message) -> State | None:
    """raft.tla ``HandleRequestVoteRequest`` with ``logOk`` taken as TRUE."""
    i, j = m.mdest, m.msource
    s = state.server(i)
    if m.mtype != REQUEST_VOTE_REQUEST or m.mterm > s.current_term:
        return None
    grant = m.mterm == s.current_term and s.voted_for in (NIL, j)
    if grant:
        state = state.update(i, s.evolve(voted_for=j))
    return actions.reply(state, RequestVoteResponse(REQUEST_VOTE_RESPONSE, s.current_term,
                                                    grant, i, j), m)


def edit(protocol: Protocol) -> Protocol:
    return protocol.replace(
        "HandleRequestVoteRequest", apply=handle_request_vote_request,
        encoder="raftspec.spec.mutant_encoders:vote_without_log_check",
        expect=actions.handle_request_vote_request, edit="vote_without_log_check")
