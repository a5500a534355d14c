"""CheckQuorum and leader stickiness (Ongaro's dissertation §6.2 and §4.2.3).

- §6.2: "a leader steps down if an election timeout elapses without a successful round of
  heartbeats to a majority of its cluster". Each server has ``heard_from``: the servers whose
  AppendEntries responses of its term it received since its last CheckQuorum timer. The action
  ``CheckQuorum(i)`` is a leader's timer firing: with a quorum (itself included) heard from it
  starts a new period (``heard_from`` cleared); otherwise it steps down to follower of its term.
- §4.2.3: "if a server receives a RequestVote request within the minimum election timeout of
  hearing from a current leader, it does not update its term or grant its vote": such a request
  is discarded. With ``prevote`` applied first, such a server also refuses pre-votes (§9.6).

Time is abstract. What the abstraction allows and assumes:

- A leader's CheckQuorum timer may fire at any moment (any interleaving of periods with message
  deliveries), so a leader may step down even when messages are merely slow.
- Heartbeats are timely: a server "has heard from a current leader within the minimum election
  timeout" exactly when a leader of its current term is reachable from it (always, without
  ``partitions``; in the same group, with it). Such a server's election timer does not fire
  (``Timeout`` is disabled for it); every other non-leader may time out at any moment. This is
  the dissertation's assumption broadcastTime << electionTimeout, made absolute: the model
  cannot show disruptions that need a heartbeat to be late while the network is connected.

Composes with ``prevote`` (apply it first) and ``partitions`` (apply it last):
``variant: prevote+checkquorum+partitions``. Reachability property:
``checkquorum_stepdown`` (some leader stepped down by CheckQuorum, recorded in ``stepped_down``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from raftspec.protocol import BOOL, SERVERS, Field, Protocol, Row
from raftspec.reference.config import Config
from raftspec.reference.protocol import SERVER_PARAM, leaders
from raftspec.reference.state import (
    APPEND_ENTRIES_RESPONSE,
    NO_VOTES,
    REQUEST_VOTE_REQUEST,
    Role,
    State,
    is_quorum,
)
from raftspec.reference.variants import partitions, prevote


def in_contact(state: State, i: int) -> bool:
    """i has heard from a current leader within the minimum election timeout (abstractly: a
    leader of i's term is reachable from i; a leader is in contact with itself)."""
    term = state.server(i).current_term
    return any(k.role == Role.LEADER and k.current_term == term
               and partitions.connected(state, j, i) for j, k in enumerate(state.servers, 1))


def check_quorum(state: State, i: int) -> State | None:
    """Leader i's CheckQuorum timer fires: a new period, or step down without a quorum."""
    s = state.server(i)
    if s.role != Role.LEADER:
        return None
    if is_quorum(s.heard_from | {i}, len(state.servers)):
        return state.update(i, s.evolve(heard_from=NO_VOTES))
    return state.update(i, s.evolve(role=Role.FOLLOWER, heard_from=NO_VOTES,
                                    stepped_down=True))


def timeout_guard(apply: Callable[..., Any]) -> Callable[..., Any]:
    """``Timeout`` disabled while the server hears from a current leader."""
    def timeout(state: State, i: int) -> State | None:
        return None if in_contact(state, i) else apply(state, i)
    return timeout


def become_leader_fresh(apply: Callable[..., Any]) -> Callable[..., Any]:
    """``BecomeLeader`` starting a CheckQuorum period with nobody heard from yet."""
    def become_leader(state: State, i: int) -> State | None:
        nxt = apply(state, i)
        if nxt is None:
            return None
        return nxt.update(i, nxt.server(i).evolve(heard_from=NO_VOTES))
    return become_leader


def record_response(apply: Callable[..., Any]) -> Callable[..., Any]:
    """``HandleAppendEntriesResponse`` also recording that the leader heard from the sender."""
    def handle_append_entries_response(state: State, m: Any) -> State | None:
        nxt = apply(state, m)
        if nxt is None or m.mtype != APPEND_ENTRIES_RESPONSE:
            return nxt
        i = m.mdest
        s = nxt.server(i)
        if s.role == Role.LEADER and s.current_term == m.mterm:
            return nxt.update(i, s.evolve(heard_from=s.heard_from | {m.msource}))
        return nxt
    return handle_append_entries_response


def sticky_update_term(apply: Callable[..., Any]) -> Callable[..., Any]:
    """``UpdateTerm`` not for a RequestVote reaching a server in contact with a leader."""
    def update_term(state: State, m: Any) -> State | None:
        if m.mtype == REQUEST_VOTE_REQUEST and in_contact(state, m.mdest):
            return None
        return apply(state, m)
    return update_term


def sticky_request_vote(apply: Callable[..., Any]) -> Callable[..., Any]:
    """``HandleRequestVoteRequest``: a server in contact with a leader discards a request of a
    higher term (neither updates its term nor votes)."""
    def handle_request_vote_request(state: State, m: Any) -> State | None:
        if (m.mtype == REQUEST_VOTE_REQUEST and m.mterm > state.server(m.mdest).current_term
                and in_contact(state, m.mdest)):
            return state.discard(m)
        return apply(state, m)
    return handle_request_vote_request


def sticky_pre_vote_granted(state: State, i: int, m: Any) -> bool:
    """§9.6 with CheckQuorum: no pre-vote while i hears from a current leader."""
    return prevote.pre_vote_granted(state, i, m) and not in_contact(state, i)


def handle_pre_vote_request(state: State, m: Any) -> State | None:
    return prevote.handle_pre_vote_request(state, m, sticky_pre_vote_granted)


def checkquorum_stepdown(state: State, config: Config) -> bool:
    """Reachable: a leader stepped down by CheckQuorum."""
    return any(s.stepped_down for s in state.servers)


def edit(protocol: Protocol) -> Protocol:
    p = protocol.with_server_fields({Field("heard_from", SERVERS): lambda config: NO_VOTES,
                                     Field("stepped_down", BOOL): lambda config: False},
                                    edit="checkquorum")
    wraps = {"Timeout": timeout_guard, "BecomeLeader": become_leader_fresh,
             "HandleAppendEntriesResponse": record_response, "UpdateTerm": sticky_update_term,
             "HandleRequestVoteRequest": sticky_request_vote}
    for name, wrap in wraps.items():
        p = p.replace(name, apply=wrap(p.row(name).apply))
    if any(r.name == "HandlePreVoteRequest" for r in p.rows):
        p = p.replace("HandlePreVoteRequest", apply=handle_pre_vote_request)
    p = p.add(Row("CheckQuorum", SERVER_PARAM, leaders, check_quorum), after="BecomeLeader")
    return p.with_properties(reachable={"checkquorum_stepdown": checkquorum_stepdown})
