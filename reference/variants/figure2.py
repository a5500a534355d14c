"""Raft at the granularity of the paper's Figure 2, for validating real implementations' traces.

raft.tla (the default reference) is finer and odder than real code: a candidate votes for itself
by messaging itself, AppendEntries carries at most one entry, and a conflict deletes one entry
per step. This variant restates Figure 2 literally, over the same ``reference.state.State``:

- Timeout: term + 1, become candidate, **vote for self** (Figure 2, "Candidates (§5.2)").
- AppendEntries carries **any number of entries** (Figure 2: "may send more than one for
  efficiency"); a heartbeat is an AppendEntries with no entries.
- The receiver **truncates at the first conflict and appends** every new entry in one step
  (AppendEntries receiver rules 3-4) and sets ``commitIndex = min(leaderCommit, index of last
  new entry)`` when ``leaderCommit > commitIndex`` (rule 5).
- A candidate that receives an AppendEntries of its own term converts to follower and handles it
  in the same step ("If AppendEntries RPC received from new leader: convert to follower").
- Vote responses are tallied by candidates only; AppendEntries responses are handled by leaders
  only; ``matchIndex`` "increases monotonically".
- A leader commits any ``N > commitIndex`` stored on a majority whose entry has the current term
  (Figure 2, "Leaders", last rule): the choice of N is nondeterministic, as the rule says.
- StepDown: a leader may become a follower of its own term (the dissertation's CheckQuorum, §6.2
  of Ongaro's thesis). Like Restart it only gives up power, so it cannot break safety.

As in raft.tla, a message with a higher term first makes the receiver a follower of that term
(UpdateTerm, "Rules for all servers") without consuming it; the handler runs in a later step.
Restart, UpdateTerm, the RequestVote handler and the network actions are raft.tla's unchanged.

``initial_state`` starts every server in term 0, as Figure 2 says ("initialized to 0 on first
boot"); the checker starts in raft.tla's term 1, which is the same up to renaming terms.
"""

from __future__ import annotations

from collections.abc import Iterator

from raftspec.reference import actions
from raftspec.reference.config import Config
from raftspec.reference.state import (
    APPEND_ENTRIES_REQUEST,
    APPEND_ENTRIES_RESPONSE,
    NIL,
    REQUEST_VOTE_REQUEST,
    REQUEST_VOTE_RESPONSE,
    AppendEntriesRequest,
    AppendEntriesResponse,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
    Role,
    State,
    is_quorum,
    last_term,
)
from raftspec.reference.state import initial_state as tla_initial_state
from raftspec.reference.successors import Action

restart = actions.restart
update_term = actions.update_term
client_request = actions.client_request
duplicate_message = actions.duplicate_message
drop_message = actions.drop_message
drop_stale_response = actions.drop_stale_response
request_vote_log_ok = actions.request_vote_log_ok
append_entries_log_ok = actions.append_entries_log_ok
reply = actions.reply


def initial_state(n: int) -> State:
    """Figure 2's first boot: term 0, no vote, empty log, nothing committed, nothing in flight."""
    server = tla_initial_state(n).servers[0].evolve(current_term=0)
    return State((server,) * n, ())


# --- Actions of a single server -------------------------------------------------------------


def timeout(state: State, i: int) -> State | None:
    """Election timeout: increment currentTerm, vote for self, become candidate (Figure 2,
    "Followers" and "Candidates (§5.2)"). The RequestVote RPCs are sent by ``request_vote``."""
    s = state.server(i)
    if s.role == Role.LEADER:
        return None
    return state.update(i, s.evolve(role=Role.CANDIDATE, current_term=s.current_term + 1,
                                    voted_for=i, votes_responded=frozenset({i}),
                                    votes_granted=frozenset({i})))


def request_vote(state: State, i: int, j: int) -> State | None:
    """Candidate i sends RequestVote to another server j (Figure 2, "Send RequestVote RPCs to
    all other servers")."""
    s = state.server(i)
    if s.role != Role.CANDIDATE or i == j or j in s.votes_responded:
        return None
    return state.send(RequestVoteRequest(REQUEST_VOTE_REQUEST, s.current_term, last_term(s.log),
                                         len(s.log), i, j))


def become_leader(state: State, i: int) -> State | None:
    """Votes from a majority: become leader; nextIndex = last log index + 1, matchIndex = 0
    (Figure 2, "Candidates" and "Volatile state on leaders")."""
    s = state.server(i)
    if s.role != Role.CANDIDATE or not is_quorum(s.votes_granted, len(state.servers)):
        return None
    n = len(state.servers)
    return state.update(i, s.evolve(role=Role.LEADER, next_index=(len(s.log) + 1,) * n,
                                    match_index=(0,) * n))


def append_entries(state: State, i: int, j: int, next_index: int | None = None,
                   count: int | None = None) -> State | None:
    """Leader i sends j the entries from ``next_index`` on (Figure 2, "Leaders"): ``count`` of
    them (default: all; 0 is a heartbeat), with prevLogIndex/prevLogTerm of the entry before
    and leaderCommit capped at the last entry sent.

    ``next_index`` defaults to nextIndex[j]. Giving another value models §5.3's optimisation
    ("the leader can decrement nextIndex to bypass all of the conflicting entries"): nextIndex
    is only a guess of the leader's and never affects what the message says about its log.
    """
    s = state.server(i)
    if i == j or s.role != Role.LEADER:
        return None
    nxt = s.next_index[j - 1] if next_index is None else next_index
    if not 1 <= nxt <= len(s.log) + 1:
        return None
    available = len(s.log) - nxt + 1
    count = available if count is None else count
    if not 0 <= count <= available:
        return None
    prev = nxt - 1
    entries = s.log[prev : prev + count]
    return state.send(AppendEntriesRequest(
        APPEND_ENTRIES_REQUEST, s.current_term, prev, s.log[prev - 1].term if prev else 0,
        entries, min(s.commit_index, prev + count), i, j))


def advance_commit_index(state: State, i: int, n: int) -> State | None:
    """Leader i sets commitIndex = N for an N > commitIndex such that a majority of matchIndex
    >= N and log[N].term == currentTerm (Figure 2, "Leaders", last rule; §5.3, §5.4)."""
    s = state.server(i)
    if s.role != Role.LEADER or not s.commit_index < n <= len(s.log):
        return None
    if s.log[n - 1].term != s.current_term:
        return None
    agree = 1 + sum(1 for k, m in enumerate(s.match_index, 1) if k != i and m >= n)
    if 2 * agree <= len(state.servers):
        return None
    return state.update(i, s.evolve(commit_index=n))


def step_down(state: State, i: int) -> State | None:
    """A leader gives up leadership in its own term (CheckQuorum, Ongaro's thesis §6.2)."""
    s = state.server(i)
    if s.role != Role.LEADER:
        return None
    return state.update(i, s.evolve(role=Role.FOLLOWER))


# --- Receiving a message ---------------------------------------------------------------------


def handle_request_vote_request(state: State, i: int, j: int, m: RequestVoteRequest, *,
                                check_log: bool = True) -> State:
    """RequestVote receiver (Figure 2): reply false if term < currentTerm; grant if votedFor is
    null or j and j's log is at least as up-to-date (§5.2, §5.4). raft.tla's handler exactly."""
    return actions.handle_request_vote_request(state, i, j, m, check_log=check_log)


def handle_request_vote_response(state: State, i: int, j: int,
                                 m: RequestVoteResponse) -> State:
    """A candidate counts a vote of its current term ("Candidates": votes from a majority);
    anyone else just consumes the response."""
    s = state.server(i)
    if s.role != Role.CANDIDATE:
        return state.discard(m)
    granted = s.votes_granted | {j} if m.mvote_granted else s.votes_granted
    return state.update(i, s.evolve(votes_responded=s.votes_responded | {j},
                                    votes_granted=granted)).discard(m)


def handle_append_entries_request(state: State, i: int, j: int,
                                  m: AppendEntriesRequest) -> State | None:
    """AppendEntries receiver, rules 1-5 of Figure 2, in one step:

    1. reply false if term < currentTerm; 2. reply false if the log has no entry at prevLogIndex
    whose term matches prevLogTerm; 3. if an existing entry conflicts with a new one, delete it
    and all that follow; 4. append any new entries not already in the log; 5. if leaderCommit >
    commitIndex, set commitIndex = min(leaderCommit, index of last new entry).
    A candidate of the same term first converts to follower; a leader of the same term has no
    case (unreachable given election safety).
    """
    s = state.server(i)

    def answer(st: State, success: bool, match: int) -> State:
        return reply(st, AppendEntriesResponse(APPEND_ENTRIES_RESPONSE, s.current_term, success,
                                               match, i, j), m)

    if m.mterm < s.current_term:
        return answer(state, False, 0)
    if s.role == Role.LEADER:
        return None
    if s.role == Role.CANDIDATE:
        s = s.evolve(role=Role.FOLLOWER)
        state = state.update(i, s)
    if not append_entries_log_ok(state, i, m):
        return answer(state, False, 0)
    log = s.log
    prev = m.mprev_log_index
    for k, entry in enumerate(m.mentries):
        index = prev + k + 1
        if index > len(log) or log[index - 1].term != entry.term:
            log = log[: index - 1] + m.mentries[k:]
            break
    last_new = prev + len(m.mentries)
    commit = s.commit_index
    if m.mcommit_index > commit:
        commit = min(m.mcommit_index, last_new)
    return answer(state.update(i, s.evolve(log=log, commit_index=commit)), True, last_new)


def handle_append_entries_response(state: State, i: int, j: int,
                                   m: AppendEntriesResponse) -> State:
    """Leader i handles j's response of its term (Figure 2, "Leaders"): on success update
    nextIndex and matchIndex (which "increases monotonically"); on failure decrement nextIndex.
    Anyone else just consumes it."""
    s = state.server(i)
    if s.role != Role.LEADER:
        return state.discard(m)
    next_index, match_index = list(s.next_index), list(s.match_index)
    if m.msuccess:
        match_index[j - 1] = max(match_index[j - 1], m.mmatch_index)
        next_index[j - 1] = match_index[j - 1] + 1
    else:
        next_index[j - 1] = max(next_index[j - 1] - 1, 1)
    return state.update(i, s.evolve(next_index=tuple(next_index),
                                    match_index=tuple(match_index))).discard(m)


def receive(state: State, m: Message, *, check_log: bool = True) -> tuple[str, State] | None:
    """Server m.mdest receives m: the one case that applies, as (name, next state), or None.

    ``check_log=False`` is the ``vote_without_log_check`` mutant (votes ignore §5.4.1).
    """
    i, j = m.mdest, m.msource
    term = state.server(i).current_term
    if m.mterm > term:
        return "UpdateTerm", update_term(state, i, m)
    if m.mtype == REQUEST_VOTE_REQUEST:
        return "HandleRequestVoteRequest", handle_request_vote_request(
            state, i, j, m, check_log=check_log)
    if m.mtype == APPEND_ENTRIES_REQUEST:
        nxt = handle_append_entries_request(state, i, j, m)
        return None if nxt is None else ("HandleAppendEntriesRequest", nxt)
    if m.mterm < term:
        return "DropStaleResponse", drop_stale_response(state, m)
    if m.mtype == REQUEST_VOTE_RESPONSE:
        return "HandleRequestVoteResponse", handle_request_vote_response(state, i, j, m)
    return "HandleAppendEntriesResponse", handle_append_entries_response(state, i, j, m)


# --- The step relation -----------------------------------------------------------------------


SUPPORTED_MUTANTS = frozenset({"vote_without_log_check"})
"""The mutants this variant implements; a model asking for others is rejected when loaded."""


def steps(state: State, config: Config) -> Iterator[tuple[Action, State]]:
    """Every enabled action instance of ``state`` (like ``reference.successors.steps``).

    AppendEntries is enumerated from nextIndex with all remaining entries, plus the heartbeat
    (no entries) when that differs; AdvanceCommitIndex once per admissible N (``value`` = N).
    """
    servers = range(1, config.servers + 1)
    if config.restart:
        for i in servers:
            yield Action("Restart", i), restart(state, i)
    for i in servers:
        s = state.server(i)
        if s.role != Role.LEADER:
            yield Action("Timeout", i), timeout(state, i)
        if s.role == Role.CANDIDATE:
            for j in servers:
                nxt = request_vote(state, i, j)
                if nxt is not None:
                    yield Action("RequestVote", i, j), nxt
            nxt = become_leader(state, i)
            if nxt is not None:
                yield Action("BecomeLeader", i), nxt
        if s.role == Role.LEADER:
            for v in range(1, config.values + 1):
                yield Action("ClientRequest", i, value=v), client_request(state, i, v)
            for n in range(s.commit_index + 1, len(s.log) + 1):
                nxt = advance_commit_index(state, i, n)
                if nxt is not None:
                    yield Action("AdvanceCommitIndex", i, value=n), nxt
            for j in servers:
                if j == i:
                    continue
                nxt = append_entries(state, i, j)
                if nxt is not None:
                    yield Action("AppendEntries", i, j), nxt
                if s.next_index[j - 1] <= len(s.log):
                    yield Action("Heartbeat", i, j), append_entries(state, i, j, count=0)
            yield Action("StepDown", i), step_down(state, i)
    check_log = "vote_without_log_check" not in config.mutants
    for m, _ in state.messages:
        received = receive(state, m, check_log=check_log)
        if received is not None:
            name, nxt = received
            yield Action(name, m.mdest, m.msource, message=m), nxt
    if config.duplicate:
        for m, _ in state.messages:
            yield Action("DuplicateMessage", message=m), duplicate_message(state, m)
    if config.drop:
        for m, _ in state.messages:
            yield Action("DropMessage", message=m), drop_message(state, m)


__all__ = [
    "NIL", "advance_commit_index", "append_entries", "become_leader", "client_request",
    "handle_append_entries_request", "handle_append_entries_response",
    "handle_request_vote_request", "handle_request_vote_response", "initial_state", "receive",
    "request_vote", "restart", "step_down", "steps", "timeout", "update_term",
]
