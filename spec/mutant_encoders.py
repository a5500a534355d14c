"""The Z3 encoders of the planted bugs' rows (``reference/mutants/``): each encodes the buggy
copy of its action, as ``spec.smt``'s encoder of the original action encodes raft.tla's."""

from __future__ import annotations

import z3

from raftspec.spec.smt import (
    Branch,
    Effect,
    Encoding,
    Num,
    Receipt,
    StateVars,
    advance_commit_index_to,
    become_leader_when,
    handle_append_entries_request_given,
    handle_request_vote_request_given,
    receive_encoder,
    server_encoder,
)


@receive_encoder
def vote_without_log_check(enc: Encoding, r: Receipt) -> list[Branch]:
    """``HandleRequestVoteRequest`` with logOk taken as TRUE."""
    return handle_request_vote_request_given(enc, r, z3.BoolVal(True))


@server_encoder
def commit_previous_term(enc: Encoding, pre: StateVars, post: StateVars, e: Effect,
                         i: int) -> list[Branch]:
    """``AdvanceCommitIndex`` committing the largest quorum-replicated index, of any term."""
    p = pre.server(i)
    agreed = enc.agree_index(i, p)
    return advance_commit_index_to(enc, pre, post, e, i, z3.If(agreed > 0, agreed,
                                                                p.commit_index))


@receive_encoder
def no_term_check_on_append(enc: Encoding, r: Receipt) -> list[Branch]:
    """``HandleAppendEntriesRequest`` handling a stale request as one of the current term."""
    return handle_append_entries_request_given(enc, r, z3.BoolVal(True))


def _half(enc: Encoding) -> object:
    def at_least_half(size: Num) -> z3.BoolRef:
        return 2 * size >= enc.n
    return at_least_half


@server_encoder
def quorum_off_by_one_election(enc: Encoding, pre: StateVars, post: StateVars, e: Effect,
                               i: int) -> list[Branch]:
    """``BecomeLeader`` with votes from half of the servers enough."""
    return become_leader_when(enc, pre, post, e, i, _half(enc))


@server_encoder
def quorum_off_by_one_commit(enc: Encoding, pre: StateVars, post: StateVars, e: Effect,
                             i: int) -> list[Branch]:
    """``AdvanceCommitIndex`` with entries stored on half of the servers committed."""
    p = pre.server(i)
    agreed = enc.agree_index(i, p, _half(enc))
    ok = z3.And(agreed > 0, enc.term_at(p, agreed) == p.term)
    return advance_commit_index_to(enc, pre, post, e, i, z3.If(ok, agreed, p.commit_index))
