"""Raft at the granularity of the paper's Figure 2, for validating real implementations' traces.

raft.tla (the default reference) is finer and odder than real code: a candidate votes for itself
by messaging itself, AppendEntries carries at most one entry, and a conflict deletes one entry
per step. This variant restates Figure 2 literally, over the same ``reference.state.State``, as
edits of raft.tla's action table (``edit`` at the end):

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

from raftspec.protocol import NUMBER, Param, Protocol, Row
from raftspec.reference import actions
from raftspec.reference.config import Config
from raftspec.reference.protocol import PAIR_PARAMS, SERVER_PARAM, leaders, leaders_and_peers
from raftspec.reference.state import (
    APPEND_ENTRIES_REQUEST,
    APPEND_ENTRIES_RESPONSE,
    REQUEST_VOTE_REQUEST,
    REQUEST_VOTE_RESPONSE,
    AppendEntriesRequest,
    AppendEntriesResponse,
    Message,
    RequestVoteRequest,
    Role,
    State,
    is_quorum,
    last_term,
)
from raftspec.reference.state import initial_state as tla_initial_state

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


def handle_request_vote_response(state: State, m: Message) -> State | None:
    """A candidate counts a vote of its current term ("Candidates": votes from a majority);
    anyone else just consumes the response."""
    i, j = m.mdest, m.msource
    s = state.server(i)
    if m.mtype != REQUEST_VOTE_RESPONSE or m.mterm != s.current_term:
        return None
    if s.role != Role.CANDIDATE:
        return state.discard(m)
    granted = s.votes_granted | {j} if m.mvote_granted else s.votes_granted
    return state.update(i, s.evolve(votes_responded=s.votes_responded | {j},
                                    votes_granted=granted)).discard(m)


def handle_append_entries_request(state: State, m: Message) -> State | None:
    """AppendEntries receiver, rules 1-5 of Figure 2, in one step:

    1. reply false if term < currentTerm; 2. reply false if the log has no entry at prevLogIndex
    whose term matches prevLogTerm; 3. if an existing entry conflicts with a new one, delete it
    and all that follow; 4. append any new entries not already in the log; 5. if leaderCommit >
    commitIndex, set commitIndex = min(leaderCommit, index of last new entry).
    A candidate of the same term first converts to follower; a leader of the same term has no
    case (unreachable given election safety).
    """
    i, j = m.mdest, m.msource
    s = state.server(i)
    if m.mtype != APPEND_ENTRIES_REQUEST or m.mterm > s.current_term:
        return None

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


def handle_append_entries_response(state: State, m: Message) -> State | None:
    """Leader i handles j's response of its term (Figure 2, "Leaders"): on success update
    nextIndex and matchIndex (which "increases monotonically"); on failure decrement nextIndex.
    Anyone else just consumes it."""
    i, j = m.mdest, m.msource
    s = state.server(i)
    if m.mtype != APPEND_ENTRIES_RESPONSE or m.mterm != s.current_term:
        return None
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


# --- The edits of raft.tla's table ------------------------------------------------------------


def heartbeat(state: State, i: int, j: int) -> State | None:
    """Leader i sends j an AppendEntries with no entries from nextIndex[j] (a row of its own
    only where it differs from ``append_entries``: when j is missing entries)."""
    s = state.server(i)
    if s.role != Role.LEADER or s.next_index[j - 1] > len(s.log):
        return None
    return append_entries(state, i, j, count=0)


def leaders_and_commit_indexes(state: State, config: Config) -> list[tuple[int, int]]:
    """Every leader i with every N in commitIndex+1..len(log)."""
    return [(i, n) for (i,) in leaders(state, config)
            for n in range(state.server(i).commit_index + 1, len(state.server(i).log) + 1)]


def edit(tla: Protocol) -> Protocol:
    """raft.tla's table with Figure 2's actions in place of raft.tla's finer ones. The initial
    state stays raft.tla's (term 1; the same up to renaming terms as ``initial_state``), so that
    checked properties such as ``type_ok`` read the same on both."""
    p = tla
    for name, apply in (
        ("Timeout", timeout),
        ("RequestVote", request_vote),
        ("BecomeLeader", become_leader),
        ("AppendEntries", append_entries),
        ("HandleRequestVoteResponse", handle_request_vote_response),
        ("HandleAppendEntriesRequest", handle_append_entries_request),
        ("HandleAppendEntriesResponse", handle_append_entries_response),
    ):
        p = p.replace(name, apply=apply, expect=getattr(actions, apply.__name__))
    p = p.replace("AdvanceCommitIndex", apply=advance_commit_index,
                  params=(*SERVER_PARAM, Param("index", NUMBER)),
                  enumerate=leaders_and_commit_indexes, expect=actions.advance_commit_index)
    p = p.add(Row("Heartbeat", PAIR_PARAMS, leaders_and_peers, heartbeat), after="AppendEntries")
    return p.add(Row("StepDown", SERVER_PARAM, leaders, step_down), after="Heartbeat")
