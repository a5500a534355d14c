"""One pure function per raft.tla action (SEMANTICS.md, "The step relation").

Each action takes a state and the action's parameters and returns the next state, or ``None``
where the action is not enabled. Nothing here mutates, reads a clock or draws a random number:
the nondeterminism (which action, which parameters) is enumerated by ``successors``.
"""

from __future__ import annotations

from raftspec.reference.state import (
    APPEND_ENTRIES_REQUEST,
    APPEND_ENTRIES_RESPONSE,
    NIL,
    NO_VOTES,
    REQUEST_VOTE_REQUEST,
    REQUEST_VOTE_RESPONSE,
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
    Role,
    State,
    is_quorum,
    last_term,
)

# --- Actions of a single server -----------------------------------------------------------


def restart(state: State, i: int) -> State:
    """Server i restarts from stable storage (raft.tla ``Restart``; always enabled).

    currentTerm, votedFor and log survive; everything volatile is reset, commitIndex included.
    """
    s = state.server(i)
    n = len(state.servers)
    return state.update(
        i,
        s.evolve(
            role=Role.FOLLOWER,
            votes_responded=NO_VOTES,
            votes_granted=NO_VOTES,
            next_index=(1,) * n,
            match_index=(0,) * n,
            commit_index=0,
        ),
    )


def timeout(state: State, i: int) -> State | None:
    """Server i times out and starts an election (paper §5.2; raft.tla ``Timeout``).

    It does not vote for itself here: its own vote arrives through RequestVote(i, i).
    """
    s = state.server(i)
    if s.role not in (Role.FOLLOWER, Role.CANDIDATE):
        return None
    return state.update(
        i,
        s.evolve(
            role=Role.CANDIDATE,
            current_term=s.current_term + 1,
            voted_for=NIL,
            votes_responded=NO_VOTES,
            votes_granted=NO_VOTES,
        ),
    )


def request_vote(state: State, i: int, j: int) -> State | None:
    """Candidate i sends j a RequestVote request (raft.tla ``RequestVote``; j may be i)."""
    s = state.server(i)
    if s.role != Role.CANDIDATE or j in s.votes_responded:
        return None
    return state.send(
        RequestVoteRequest(
            mtype=REQUEST_VOTE_REQUEST,
            mterm=s.current_term,
            mlast_log_term=last_term(s.log),
            mlast_log_index=len(s.log),
            msource=i,
            mdest=j,
        )
    )


def append_entries(state: State, i: int, j: int) -> State | None:
    """Leader i sends j an AppendEntries request with at most one entry (raft.tla
    ``AppendEntries``; also the heartbeat)."""
    s = state.server(i)
    if i == j or s.role != Role.LEADER:
        return None
    next_index = s.next_index[j - 1]
    prev_log_index = next_index - 1
    prev_log_term = s.log[prev_log_index - 1].term if prev_log_index > 0 else 0
    last_entry = min(len(s.log), next_index)
    entries = s.log[next_index - 1 : last_entry]
    return state.send(
        AppendEntriesRequest(
            mtype=APPEND_ENTRIES_REQUEST,
            mterm=s.current_term,
            mprev_log_index=prev_log_index,
            mprev_log_term=prev_log_term,
            mentries=entries,
            mcommit_index=min(s.commit_index, last_entry),
            msource=i,
            mdest=j,
        )
    )


def become_leader(state: State, i: int) -> State | None:
    """Candidate i with votes from a quorum becomes leader (paper §5.2; raft.tla
    ``BecomeLeader``). votesGranted and votesResponded are left as they are."""
    s = state.server(i)
    if s.role != Role.CANDIDATE or not is_quorum(s.votes_granted, len(state.servers)):
        return None
    n = len(state.servers)
    return state.update(
        i,
        s.evolve(
            role=Role.LEADER,
            next_index=(len(s.log) + 1,) * n,
            match_index=(0,) * n,
        ),
    )


def client_request(state: State, i: int, v: int) -> State | None:
    """Leader i appends client value v to its log (raft.tla ``ClientRequest``)."""
    s = state.server(i)
    if s.role != Role.LEADER:
        return None
    return state.update(i, s.evolve(log=s.log + (Entry(s.current_term, v),)))


def agree_index_quorum(state: State, i: int) -> int:
    """The largest index n of leader i's log stored on a quorum, or 0 if there is none.

    Agreement on n is {i} plus every k with matchIndex[i][k] >= n (matchIndex[i][i] is never
    maintained, so i counts itself).
    """
    s = state.server(i)
    n_servers = len(state.servers)
    for index in range(len(s.log), 0, -1):
        agree = {i} | {
            k for k in range(1, n_servers + 1) if k != i and s.match_index[k - 1] >= index
        }
        if is_quorum(agree, n_servers):
            return index
    return 0


def advance_commit_index(state: State, i: int) -> State | None:
    """Leader i commits the largest quorum-replicated index if its entry is of the current
    term (paper §5.3-5.4.2; raft.tla ``AdvanceCommitIndex``; often a self-loop)."""
    s = state.server(i)
    if s.role != Role.LEADER:
        return None
    index = agree_index_quorum(state, i)
    if index > 0 and s.log[index - 1].term == s.current_term:
        return state.update(i, s.evolve(commit_index=index))
    return state


# --- Receiving a message (raft.tla ``Receive``: one case per handler) ----------------------
#
# raft.tla's Receive(m) lets server i = m.mdest handle a message from j = m.msource by the one
# case below whose condition holds; the cases are mutually exclusive (SEMANTICS.md,
# Disjointness). Each handler here carries its case's whole condition, so the action table can
# list them as rows of their own (TLC counts them under these names).


def update_term(state: State, m: Message) -> State | None:
    """Any message with a newer term makes i a follower of that term (paper §5.1; raft.tla
    ``UpdateTerm``). The message stays in the bag and is handled by a later step."""
    i = m.mdest
    s = state.server(i)
    if m.mterm <= s.current_term:
        return None
    return state.update(i, s.evolve(current_term=m.mterm, role=Role.FOLLOWER, voted_for=NIL))


def request_vote_log_ok(state: State, i: int, m: RequestVoteRequest) -> bool:
    """The candidate's log is at least as up-to-date as i's (paper §5.4.1)."""
    log = state.server(i).log
    return m.mlast_log_term > last_term(log) or (
        m.mlast_log_term == last_term(log) and m.mlast_log_index >= len(log)
    )


def handle_request_vote_request(state: State, m: Message) -> State | None:
    """i answers j's vote request of a term <= its own (paper §5.2, §5.4.1; raft.tla
    ``HandleRequestVoteRequest``). The role is not checked."""
    i, j = m.mdest, m.msource
    s = state.server(i)
    if m.mtype != REQUEST_VOTE_REQUEST or m.mterm > s.current_term:
        return None
    log_ok = request_vote_log_ok(state, i, m)
    grant = m.mterm == s.current_term and log_ok and s.voted_for in (NIL, j)
    if grant:
        state = state.update(i, s.evolve(voted_for=j))
    return reply(
        state,
        RequestVoteResponse(
            mtype=REQUEST_VOTE_RESPONSE,
            mterm=s.current_term,
            mvote_granted=grant,
            msource=i,
            mdest=j,
        ),
        m,
    )


def drop_stale_response(state: State, m: Message) -> State | None:
    """A response of an older term is discarded (raft.tla ``DropStaleResponse``)."""
    if m.mtype not in (REQUEST_VOTE_RESPONSE, APPEND_ENTRIES_RESPONSE):
        return None
    if m.mterm >= state.server(m.mdest).current_term:
        return None
    return state.discard(m)


def handle_request_vote_response(state: State, m: Message) -> State | None:
    """i tallies j's vote response of its current term, whatever its role (raft.tla
    ``HandleRequestVoteResponse``)."""
    i, j = m.mdest, m.msource
    s = state.server(i)
    if m.mtype != REQUEST_VOTE_RESPONSE or m.mterm != s.current_term:
        return None
    granted = s.votes_granted | {j} if m.mvote_granted else s.votes_granted
    return state.update(
        i, s.evolve(votes_responded=s.votes_responded | {j}, votes_granted=granted)
    ).discard(m)


def append_entries_log_ok(state: State, i: int, m: AppendEntriesRequest) -> bool:
    """i's log contains an entry at prevLogIndex with term prevLogTerm (paper §5.3)."""
    log = state.server(i).log
    return m.mprev_log_index == 0 or (
        0 < m.mprev_log_index <= len(log) and log[m.mprev_log_index - 1].term == m.mprev_log_term
    )


def handle_append_entries_request(state: State, m: Message) -> State | None:
    """i handles leader j's AppendEntries of a term <= its own (paper §5.3; raft.tla
    ``HandleAppendEntriesRequest``): reject, step down, or accept one step of it.

    Accepting takes several steps for one request: delete one conflicting entry from the tail
    per step, then append, then reply; only the reply consumes the message.
    """
    i, j = m.mdest, m.msource
    s = state.server(i)
    if m.mtype != APPEND_ENTRIES_REQUEST or m.mterm > s.current_term:
        return None
    log_ok = append_entries_log_ok(state, i, m)
    if m.mterm < s.current_term or (s.role == Role.FOLLOWER and not log_ok):
        return reply(
            state,
            AppendEntriesResponse(
                mtype=APPEND_ENTRIES_RESPONSE,
                mterm=s.current_term,
                msuccess=False,
                mmatch_index=0,
                msource=i,
                mdest=j,
            ),
            m,
        )
    if s.role == Role.CANDIDATE:
        return state.update(i, s.evolve(role=Role.FOLLOWER))
    if s.role != Role.FOLLOWER:
        return None  # a leader receiving an AEQ of its own term: no case applies
    index = m.mprev_log_index + 1
    if not m.mentries or (len(s.log) >= index and s.log[index - 1].term == m.mentries[0].term):
        # Already done with this request: reply.
        state = state.update(i, s.evolve(commit_index=m.mcommit_index))
        return reply(
            state,
            AppendEntriesResponse(
                mtype=APPEND_ENTRIES_RESPONSE,
                mterm=s.current_term,
                msuccess=True,
                mmatch_index=m.mprev_log_index + len(m.mentries),
                msource=i,
                mdest=j,
            ),
            m,
        )
    if len(s.log) >= index:
        # Conflict: remove one entry, from the tail.
        return state.update(i, s.evolve(log=s.log[:-1]))
    # No conflict and len(log) == prevLogIndex: append the entry.
    return state.update(i, s.evolve(log=s.log + (m.mentries[0],)))


def handle_append_entries_response(state: State, m: Message) -> State | None:
    """i processes j's AppendEntries response of its current term, whatever its role (raft.tla
    ``HandleAppendEntriesResponse``); matchIndex may go down with reordered responses."""
    i, j = m.mdest, m.msource
    s = state.server(i)
    if m.mtype != APPEND_ENTRIES_RESPONSE or m.mterm != s.current_term:
        return None
    next_index = list(s.next_index)
    if m.msuccess:
        next_index[j - 1] = m.mmatch_index + 1
        match_index = list(s.match_index)
        match_index[j - 1] = m.mmatch_index
        server = s.evolve(next_index=tuple(next_index), match_index=tuple(match_index))
    else:
        next_index[j - 1] = max(s.next_index[j - 1] - 1, 1)
        server = s.evolve(next_index=tuple(next_index))
    return state.update(i, server).discard(m)


def reply(state: State, response: Message, request: Message) -> State:
    """raft.tla ``Reply``: send the response and consume the request."""
    return state.send(response).discard(request)


# --- The network ----------------------------------------------------------------------------


def duplicate_message(state: State, m: Message) -> State:
    """The network delivers a message twice (raft.tla ``DuplicateMessage``)."""
    return state.send(m)


def drop_message(state: State, m: Message) -> State:
    """The network loses a message (raft.tla ``DropMessage``)."""
    return state.discard(m)
