"""PreVote (Ongaro's dissertation §9.6): a server whose election timer fires first asks whether
it *could* win, without changing any term, and starts a real election only after a majority
said yes.

Edits of raft.tla's table:

- ``Timeout``: a server that is not a leader becomes a **pre-candidate** (a fourth role) of its
  *current* term, its pre-vote tally holding its own pre-vote. Its term and vote are
  untouched, so a server cut off from the cluster no longer inflates its term.
- ``RequestPreVote(i, j)``: pre-candidate i sends another server j a PreVote request for term
  ``currentTerm+1`` with its last log term and index.
- ``HandlePreVoteRequest``: j answers yes iff the proposed term is above its own and i's log is
  at least as up-to-date as j's (§9.6: "the same criteria as RequestVote"). j changes nothing:
  not its term, not its vote.
- ``HandlePreVoteResponse``: a pre-candidate tallies an answer for ``currentTerm+1``; any other
  answer (stale, or to a server no longer pre-candidate) is discarded. The answer that
  completes a quorum starts the real election in the same step, as raft.tla's ``Timeout``
  does: term + 1, candidate, no vote yet, tallies cleared (raft.tla's candidate then votes for
  itself through a RequestVote to itself).

- ``UpdateTerm`` ignores PreVote messages (they carry a *proposed* term, which must not make
  anyone adopt it); a pre-candidate receiving an AppendEntries of its term becomes a follower
  (as a candidate does); a vote response reaching a pre-candidate is discarded (it answered an
  earlier candidacy and must not count as a pre-vote).

Time: a pre-candidate's own pre-vote is no message and the election starts as soon as a quorum
has answered (as etcd's raft does). An earlier version of this variant sent the pre-candidate's
pre-vote to itself and made starting the election an action of its own; both could then wait
arbitrarily long, so a server holding a winning tally from before a network split could start
its election during the split, which no implementation does.

What this variant does not model (it is CheckQuorum's, ``checkquorum.py``): §9.6's second
condition, that a server refuses pre-votes while it hears from a current leader. Without it a
pre-vote only protects against candidates whose log is behind or whose term is stale.
Reachability properties: ``prevote_lost`` (a pre-vote round a quorum refused),
``election_after_prevote`` (a candidate exists, which here only a won pre-vote makes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from raftspec.protocol import (
    BOOL,
    NUMBER,
    SERVER,
    Enum,
    Field,
    MessageType,
    Protocol,
    Render,
    Row,
)
from raftspec.protocol.schema import message_class
from raftspec.reference import actions, properties
from raftspec.reference.config import Config
from raftspec.reference.describe import describe_message, describe_server
from raftspec.reference.protocol import MESSAGE_PARAM, PAIR_PARAMS
from raftspec.reference.state import (
    APPEND_ENTRIES_REQUEST,
    NO_VOTES,
    Role,
    State,
    is_quorum,
    last_term,
)

PRE_CANDIDATE = 3
"""The pre-candidate role, after raft.tla's Follower (0), Candidate (1) and Leader (2)."""
ROLE_NAMES = (*Role.NAMES, "PreCandidate")

# Message types 4 and 5, after raft.tla's four.
PRE_VOTE_REQUEST = 4
PRE_VOTE_RESPONSE = 5
_ENDS = (Field("msource", SERVER), Field("mdest", SERVER))
PRE_VOTE_TYPES = (
    MessageType("PreVoteRequest", "PVQ", (
        Field("mtype", NUMBER), Field("mterm", NUMBER), Field("mlast_log_term", NUMBER),
        Field("mlast_log_index", NUMBER), *_ENDS)),
    MessageType("PreVoteResponse", "PVP", (
        Field("mtype", NUMBER), Field("mterm", NUMBER), Field("mvote_granted", BOOL), *_ENDS)),
)
PreVoteRequest, PreVoteResponse = (message_class(t, __name__) for t in PRE_VOTE_TYPES)


# --- Actions ----------------------------------------------------------------------------------


def timeout(state: State, i: int) -> State | None:
    """Election timeout: become a pre-candidate of the current term, counting its own pre-vote
    at once (§9.6); with that a quorum (one server), start the election."""
    s = state.server(i)
    if s.role == Role.LEADER:
        return None
    me = frozenset({i})
    state = state.update(i, s.evolve(role=PRE_CANDIDATE, votes_responded=me, votes_granted=me))
    return start_election(state, i) or state


def request_pre_vote(state: State, i: int, j: int) -> State | None:
    """Pre-candidate i asks another server j for a pre-vote for term currentTerm+1 (once per
    round)."""
    s = state.server(i)
    if s.role != PRE_CANDIDATE or j in s.votes_responded:
        return None
    return state.send(PreVoteRequest(PRE_VOTE_REQUEST, s.current_term + 1, last_term(s.log),
                                     len(s.log), i, j))


def pre_vote_granted(state: State, i: int, m: Any) -> bool:
    """§9.6: the proposed term is above i's and the sender's log is at least as up-to-date."""
    return m.mterm > state.server(i).current_term and actions.request_vote_log_ok(state, i, m)


def handle_pre_vote_request(state: State, m: Any,
                            granted: Callable[[State, int, Any], bool] = pre_vote_granted
                            ) -> State | None:
    """i answers a pre-vote request; nothing of i's changes (no term, no vote)."""
    if m.mtype != PRE_VOTE_REQUEST:
        return None
    i, j = m.mdest, m.msource
    return actions.reply(state, PreVoteResponse(PRE_VOTE_RESPONSE, m.mterm,
                                                granted(state, i, m), i, j), m)


def handle_pre_vote_response(state: State, m: Any) -> State | None:
    """A pre-candidate tallies an answer for currentTerm+1, and starts the election in the same
    step if the answer completes a quorum; other answers are discarded."""
    if m.mtype != PRE_VOTE_RESPONSE:
        return None
    i, j = m.mdest, m.msource
    s = state.server(i)
    if s.role != PRE_CANDIDATE or m.mterm != s.current_term + 1:
        return state.discard(m)
    granted = s.votes_granted | {j} if m.mvote_granted else s.votes_granted
    state = state.update(i, s.evolve(votes_responded=s.votes_responded | {j},
                                     votes_granted=granted)).discard(m)
    return start_election(state, i) or state


def start_election(state: State, i: int) -> State | None:
    """A pre-candidate with pre-votes from a quorum starts a real election (raft.tla's
    ``Timeout``: term + 1, candidate, no vote yet, tallies cleared)."""
    s = state.server(i)
    if s.role != PRE_CANDIDATE or not is_quorum(s.votes_granted, len(state.servers)):
        return None
    return state.update(i, s.evolve(role=Role.CANDIDATE, current_term=s.current_term + 1,
                                    voted_for=0, votes_responded=NO_VOTES,
                                    votes_granted=NO_VOTES))


def update_term(state: State, m: Any) -> State | None:
    """raft.tla ``UpdateTerm`` for every message but PreVote ones (a proposed term is not a
    term anyone is in)."""
    if m.mtype in (PRE_VOTE_REQUEST, PRE_VOTE_RESPONSE):
        return None
    return actions.update_term(state, m)


def handle_append_entries_request(state: State, m: Any) -> State | None:
    """raft.tla's handler; a pre-candidate that hears from a leader of its term follows it."""
    s = state.server(m.mdest)
    if (s.role == PRE_CANDIDATE and m.mtype == APPEND_ENTRIES_REQUEST
            and m.mterm == s.current_term):
        return state.update(m.mdest, s.evolve(role=Role.FOLLOWER))
    return actions.handle_append_entries_request(state, m)


def handle_request_vote_response(state: State, m: Any) -> State | None:
    """raft.tla's handler; a pre-candidate discards vote responses (they are for an earlier
    candidacy and must not count as pre-votes)."""
    nxt = actions.handle_request_vote_response(state, m)
    if nxt is not None and state.server(m.mdest).role == PRE_CANDIDATE:
        return state.discard(m)
    return nxt


# --- Enumerators ------------------------------------------------------------------------------


def pre_candidates_and_servers(state: State, config: Config) -> list[tuple[int, int]]:
    ids = range(1, config.servers + 1)
    return [(i, j) for i, s in enumerate(state.servers, 1) if s.role == PRE_CANDIDATE
            for j in ids if j != i]


def pre_vote_messages(mtype: int) -> Callable[[State, Config], list[tuple[Any]]]:
    def enumerate_messages(state: State, config: Config) -> list[tuple[Any]]:
        return [(m,) for m, _ in state.messages if m.mtype == mtype]
    return enumerate_messages


# --- Properties -------------------------------------------------------------------------------


def _as_tla(state: State) -> State:
    """The state with pre-candidates shown as followers (for raft.tla's ``type_ok``)."""
    servers = tuple(s.evolve(role=Role.FOLLOWER) if s.role == PRE_CANDIDATE else s
                    for s in state.servers)
    return state.evolve(servers=servers)


def type_ok(state: State, config: Config) -> bool:
    """raft.tla's ``TypeOK`` with the fourth role."""
    return properties.type_ok(_as_tla(state), config)


def prevote_lost(state: State, config: Config) -> bool:
    """Reachable: a pre-vote round that does not win: every server answered a pre-candidate
    and the yes answers are not a quorum."""
    n = config.servers
    return any(s.role == PRE_CANDIDATE and len(s.votes_responded) == n
               and not is_quorum(s.votes_granted, n) for s in state.servers)


def election_after_prevote(state: State, config: Config) -> bool:
    """Reachable: a candidate (in this variant, only a won pre-vote round makes one)."""
    return any(s.role == Role.CANDIDATE for s in state.servers)


def describe_prevote_message(m: Any) -> str:
    if m.mtype == PRE_VOTE_REQUEST:
        return (f"PVQ s{m.msource}→s{m.mdest} t{m.mterm} "
                f"last={m.mlast_log_index}/{m.mlast_log_term}")
    if m.mtype == PRE_VOTE_RESPONSE:
        return (f"PVP s{m.msource}→s{m.mdest} t{m.mterm} "
                f"{'granted' if m.mvote_granted else 'denied'}")
    return describe_message(m)


def describe_prevote_server(i: int, s: Any) -> str:
    if s.role == PRE_CANDIDATE:
        return describe_server(i, s.evolve(role=Role.FOLLOWER)).replace("Follower",
                                                                        "PreCandidate")
    return describe_server(i, s)


def edit(protocol: Protocol) -> Protocol:
    p = protocol.with_field_kind("role", Enum(ROLE_NAMES), edit="prevote")
    p = p.with_message_types(*PRE_VOTE_TYPES)
    if [p.message_type_number(t.name) for t in PRE_VOTE_TYPES] != [PRE_VOTE_REQUEST,
                                                                  PRE_VOTE_RESPONSE]:
        raise ValueError("prevote applies to raft.tla's four message types only")
    p.messages.update(PreVoteRequest=PreVoteRequest, PreVoteResponse=PreVoteResponse)
    p = p.replace("Timeout", apply=timeout)
    p = p.replace("UpdateTerm", apply=update_term)
    p = p.replace("HandleAppendEntriesRequest", apply=handle_append_entries_request)
    p = p.replace("HandleRequestVoteResponse", apply=handle_request_vote_response)
    p = p.add(Row("RequestPreVote", PAIR_PARAMS, pre_candidates_and_servers, request_pre_vote),
              after="Timeout")
    p = p.add(Row("HandlePreVoteRequest", MESSAGE_PARAM, pre_vote_messages(PRE_VOTE_REQUEST),
                  handle_pre_vote_request, receives=True), after="HandleRequestVoteResponse")
    p = p.add(Row("HandlePreVoteResponse", MESSAGE_PARAM, pre_vote_messages(PRE_VOTE_RESPONSE),
                  handle_pre_vote_response, receives=True), after="HandlePreVoteRequest")
    p = p.with_properties(invariants={"type_ok": type_ok},
                          reachable={"prevote_lost": prevote_lost,
                                     "election_after_prevote": election_after_prevote})
    return attrs.evolve(p, render=Render(message=describe_prevote_message,
                                         server=describe_prevote_server))
