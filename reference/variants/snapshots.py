"""Log compaction and InstallSnapshot (the Raft paper §7, Figure 13; Ongaro's dissertation §5).

A server may replace the committed prefix of its log with a snapshot: "the last included index
... the last included term ... [and] the state machine's state". Here the state machine's state
is the sequence of entries it applied (a server field ``snapshot``: its length is the last
included index, its last entry's term the last included term), so that the properties can be
stated over snapshot + log, as the paper's are over the log. ``log`` holds only the entries
after the snapshot. No action reads an entry inside a snapshot except through the last
included index and term (or by installing it whole, as a state machine would).

Edits of raft.tla's table; each raft.tla action runs on the *full view* of the state (every
server's log as snapshot + log), with these guards, and its result is split back:

- ``TakeSnapshot(i)``: any server compacts its log up to its commit index (§7: "each server
  takes snapshots independently, covering just the committed entries in its log").
- ``AppendEntries(i, j)``: only if the entries j needs are not compacted on leader i
  (nextIndex[j] - 1 >= i's last included index); otherwise ``InstallSnapshot(i, j)`` sends
  j the snapshot (§7: "the leader must occasionally send snapshots to followers that lag
  behind"), in one message (Figure 13 without ``offset``/``done`` chunks).
- ``HandleInstallSnapshotRequest``: Figure 13's receiver, for a request of the receiver's
  term (a newer one goes through ``UpdateTerm``; an older one is answered with a failed
  AppendEntries response that carries the receiver's term; a candidate becomes follower):
  "If existing log entry has same index and term as snapshot's last included entry, retain
  log entries following it"; otherwise discard the entire log; a snapshot older than the
  receiver's own changes nothing. The answer is an AppendEntries response with match index =
  the last included index (the paper's InstallSnapshot reply carries only a term; the leader
  then sends from the last included index + 1, which raft.tla's response handler does).
- ``HandleAppendEntriesRequest``: a request whose previous index lies inside the receiver's
  snapshot (prevLogIndex < last included index) is answered with success: those entries are
  committed, and a leader of the receiver's current term holds every committed entry. Other
  requests are raft.tla's (the previous entry may be the last included one).
- ``AdvanceCommitIndex``: a quorum index inside the leader's snapshot changes nothing (it is
  committed already).
- A server never forgets that its snapshot is committed: ``Restart`` and
  ``HandleAppendEntriesRequest`` keep its commit index at least its last included index.

Properties: raft.tla's over snapshot + log (``type_ok``, ``log_matching``,
``leader_completeness``, ``state_machine_safety``, ``leader_append_only``), and
``snapshot_committed`` (a server's snapshot is within its commit index and agrees with every
other snapshot). Reachable: ``snapshot_taken`` and ``caught_up_by_snapshot`` (a follower that
installed a snapshot holds the log of a current leader).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from raftspec.protocol import (
    BOOL,
    NUMBER,
    SERVER,
    Field,
    Log,
    MessageType,
    Protocol,
    Render,
    Row,
)
from raftspec.protocol.schema import message_class
from raftspec.reference import actions, properties
from raftspec.reference.config import Config
from raftspec.reference.describe import describe_message, describe_server
from raftspec.reference.protocol import (
    MESSAGE_PARAM,
    PAIR_PARAMS,
    SERVER_PARAM,
    leaders_and_peers,
)
from raftspec.reference.state import (
    APPEND_ENTRIES_REQUEST,
    APPEND_ENTRIES_RESPONSE,
    ENTRY,
    AppendEntriesResponse,
    Role,
    State,
)

INSTALL_SNAPSHOT_TYPE = MessageType("InstallSnapshotRequest", "ISQ", (
    Field("mtype", NUMBER), Field("mterm", NUMBER), Field("mlast_index", NUMBER),
    Field("mlast_term", NUMBER), Field("mdata", Log(ENTRY)), Field("msource", SERVER),
    Field("mdest", SERVER)))
InstallSnapshotRequest = message_class(INSTALL_SNAPSHOT_TYPE, __name__)


# --- The full view: snapshot + log --------------------------------------------------------------


def full_view(state: State) -> State:
    """The state with every server's log as snapshot + log (the state itself when nobody has
    a snapshot)."""
    if not any(s.snapshot for s in state.servers):
        return state
    return state.evolve(servers=tuple(s.evolve(log=s.snapshot + s.log) if s.snapshot else s
                                      for s in state.servers))


def split_back(state: State, view: State, nxt: State) -> State:
    """The result of an action on the full view, with each changed log split back after its
    server's snapshot (which an action on the view never changes)."""
    if view is state:
        return nxt
    servers = []
    for s, v, t in zip(state.servers, view.servers, nxt.servers, strict=True):
        if t is v:
            servers.append(s)
            continue
        k = len(t.snapshot)
        if t.log[:k] != t.snapshot:
            raise AssertionError("an action changed a compacted entry")
        servers.append(t.evolve(log=t.log[k:]))
    return nxt.evolve(servers=tuple(servers))


def on_full_view(apply: Callable[..., Any]) -> Callable[..., Any]:
    """raft.tla's action run on the full view."""
    def lifted(state: State, *args: Any) -> State | None:
        view = full_view(state)
        nxt = apply(view, *args)
        return None if nxt is None else split_back(state, view, nxt)
    lifted.__name__ = apply.__name__
    lifted.__doc__ = f"{apply.__doc__}\n\nOn snapshot + log."
    return lifted


def last_included(s: Any) -> tuple[int, int]:
    """(last included index, last included term) of server s's snapshot."""
    return len(s.snapshot), (s.snapshot[-1].term if s.snapshot else 0)


# --- Actions ----------------------------------------------------------------------------------


def take_snapshot(state: State, i: int) -> State | None:
    """Server i compacts its log up to its commit index."""
    s = state.server(i)
    index, _ = last_included(s)
    if s.commit_index <= index:
        return None
    full = s.snapshot + s.log
    return state.update(i, s.evolve(snapshot=full[:s.commit_index],
                                    log=full[s.commit_index:]))


def append_entries(state: State, i: int, j: int) -> State | None:
    """raft.tla ``AppendEntries``, when the entries j needs are not compacted."""
    s = state.server(i)
    if i == j or s.role != Role.LEADER or s.next_index[j - 1] - 1 < len(s.snapshot):
        return None
    return on_full_view(actions.append_entries)(state, i, j)


def install_snapshot(state: State, i: int, j: int, mtype: int) -> State | None:
    """Leader i sends j its snapshot: j needs entries that i has compacted (``mtype``: the
    install request's type number in this protocol)."""
    s = state.server(i)
    if i == j or s.role != Role.LEADER or s.next_index[j - 1] - 1 >= len(s.snapshot):
        return None
    index, term = last_included(s)
    return state.send(InstallSnapshotRequest(mtype, s.current_term, index, term,
                                             s.snapshot, i, j))


def handle_install_snapshot_request(state: State, m: Any, mtype: int) -> State | None:
    """Figure 13's receiver (for a request of a term <= the receiver's)."""
    if m.mtype != mtype:
        return None
    i, j = m.mdest, m.msource
    s = state.server(i)
    if m.mterm > s.current_term:
        return None
    if m.mterm < s.current_term:
        return actions.reply(state, AppendEntriesResponse(
            APPEND_ENTRIES_RESPONSE, s.current_term, False, 0, i, j), m)
    if s.role == Role.CANDIDATE:
        return state.update(i, s.evolve(role=Role.FOLLOWER))
    if s.role != Role.FOLLOWER:
        return None
    index, _ = last_included(s)
    if m.mlast_index > index:
        k = m.mlast_index - index  # the position of the last included entry in i's log
        log = s.log[k:] if len(s.log) >= k and s.log[k - 1].term == m.mlast_term else ()
        s = s.evolve(snapshot=m.mdata, log=log, installed=True,
                     commit_index=max(s.commit_index, m.mlast_index))
    return actions.reply(state.update(i, s), AppendEntriesResponse(
        APPEND_ENTRIES_RESPONSE, s.current_term, True, m.mlast_index, i, j), m)


def handle_append_entries_request(state: State, m: Any) -> State | None:
    """raft.tla ``HandleAppendEntriesRequest``; a request of the current term whose previous
    index is inside the receiver's snapshot is answered with success; the commit index stays
    at least the last included index."""
    if m.mtype != APPEND_ENTRIES_REQUEST:
        return None
    i, j = m.mdest, m.msource
    s = state.server(i)
    index, _ = last_included(s)
    if (m.mprev_log_index < index and m.mterm == s.current_term
            and s.role == Role.FOLLOWER):
        s = s.evolve(commit_index=max(m.mcommit_index, index))
        return actions.reply(state.update(i, s), AppendEntriesResponse(
            APPEND_ENTRIES_RESPONSE, s.current_term, True,
            m.mprev_log_index + len(m.mentries), i, j), m)
    nxt = on_full_view(actions.handle_append_entries_request)(state, m)
    if nxt is None or not index:
        return nxt
    t = nxt.server(i)
    if t.commit_index < index:
        nxt = nxt.update(i, t.evolve(commit_index=index))
    return nxt


def advance_commit_index(state: State, i: int) -> State | None:
    """raft.tla ``AdvanceCommitIndex``; a quorum index inside i's snapshot changes nothing."""
    s = state.server(i)
    if s.role != Role.LEADER:
        return None
    view = full_view(state)
    if actions.agree_index_quorum(view, i) <= len(s.snapshot):
        return state
    return split_back(state, view, actions.advance_commit_index(view, i))


def restart(state: State, i: int) -> State:
    """raft.tla ``Restart``; the commit index restarts at the last included index."""
    nxt = actions.restart(state, i)
    s = nxt.server(i)
    return nxt.update(i, s.evolve(commit_index=len(s.snapshot)))


# --- Enumerators ------------------------------------------------------------------------------


def snapshot_candidates(state: State, config: Config) -> list[tuple[int]]:
    return [(i,) for i, s in enumerate(state.servers, 1) if s.commit_index > len(s.snapshot)]


def messages_of_type(mtype: int) -> Callable[[State, Config], list[tuple[Any]]]:
    def install_messages(state: State, config: Config) -> list[tuple[Any]]:
        return [(m,) for m, _ in state.messages if m.mtype == mtype]
    return install_messages


# --- Properties (over snapshot + log) ---------------------------------------------------------


def _over_full_view(prop: Callable[..., bool]) -> Callable[..., bool]:
    def holds(state: State, config: Config) -> bool:
        return prop(full_view(state), config)
    holds.__name__ = prop.__name__
    holds.__doc__ = f"{prop.__doc__} (over snapshot + log)"
    return holds


def type_ok(state: State, config: Config) -> bool:
    """raft.tla's ``TypeOK`` over snapshot + log, the install requests left out (their fields
    are checked here)."""
    view = full_view(state)
    others = tuple((m, c) for m, c in view.messages if not isinstance(m, InstallSnapshotRequest))
    for m, _ in view.messages:
        if isinstance(m, InstallSnapshotRequest) and (
                m.mlast_index != len(m.mdata)
                or m.mlast_term != (m.mdata[-1].term if m.mdata else 0)):
            return False
    return properties.type_ok(view.evolve(messages=others), config)


def leader_append_only(state: State, nxt: State, config: Config) -> bool:
    """raft.tla's ``LeaderAppendOnly`` over snapshot + log."""
    return properties.leader_append_only(full_view(state), full_view(nxt), config)


def snapshot_committed(state: State, config: Config) -> bool:
    """A server's snapshot is within its commit index, and any two snapshots agree (one is a
    prefix of the other)."""
    snaps = [s.snapshot for s in state.servers if s.snapshot]
    for s in state.servers:
        if len(s.snapshot) > s.commit_index:
            return False
    for a in snaps:
        for b in snaps:
            n = min(len(a), len(b))
            if a[:n] != b[:n]:
                return False
    return True


def snapshot_taken(state: State, config: Config) -> bool:
    """Reachable: some server has compacted its log."""
    return any(s.snapshot for s in state.servers)


def caught_up_by_snapshot(state: State, config: Config) -> bool:
    """Reachable: a follower that installed a snapshot holds the full log of a leader of its
    term."""
    view = full_view(state)
    return any(f.installed and f.role == Role.FOLLOWER and any(
        k.role == Role.LEADER and k.current_term == f.current_term and k.log == f.log
        for k in view.servers) for f in view.servers)


# --- Printing ---------------------------------------------------------------------------------


def describe_snapshot_message(m: Any) -> str:
    if isinstance(m, InstallSnapshotRequest):
        return (f"ISQ s{m.msource}→s{m.mdest} t{m.mterm} "
                f"last={m.mlast_index}/{m.mlast_term}")
    return describe_message(m)


def describe_snapshot_server(i: int, s: Any) -> str:
    text = describe_server(i, s)
    if s.snapshot:
        index, term = last_included(s)
        text += f", snapshot {index}/{term}"
    return text


# --- The edit ---------------------------------------------------------------------------------


def edit(protocol: Protocol) -> Protocol:
    p = protocol.with_message_types(INSTALL_SNAPSHOT_TYPE, edit="snapshots")
    mtype = p.message_type_number(INSTALL_SNAPSHOT_TYPE.name)
    p.messages.update(InstallSnapshotRequest=InstallSnapshotRequest)
    p = p.with_server_fields({Field("snapshot", Log(ENTRY)): lambda config: (),
                              Field("installed", BOOL): lambda config: False})
    for name in ("RequestVote", "BecomeLeader", "ClientRequest", "HandleRequestVoteRequest"):
        p = p.replace(name, apply=on_full_view(p.row(name).apply))
    p = p.replace("Restart", apply=restart)
    p = p.replace("AppendEntries", apply=append_entries)
    p = p.replace("AdvanceCommitIndex", apply=advance_commit_index)
    p = p.replace("HandleAppendEntriesRequest", apply=handle_append_entries_request)
    p = p.add(Row("TakeSnapshot", SERVER_PARAM, snapshot_candidates, take_snapshot),
              after="AdvanceCommitIndex")

    def install(state: State, i: int, j: int) -> State | None:
        return install_snapshot(state, i, j, mtype)

    def handle_install(state: State, m: Any) -> State | None:
        return handle_install_snapshot_request(state, m, mtype)

    p = p.add(Row("InstallSnapshot", PAIR_PARAMS, leaders_and_peers, install),
              after="AppendEntries")
    p = p.add(Row("HandleInstallSnapshotRequest", MESSAGE_PARAM, messages_of_type(mtype),
                  handle_install, receives=True),
              after="HandleAppendEntriesResponse")
    invariants = {name: _over_full_view(p.invariants[name])
                  for name in ("log_matching", "leader_completeness", "state_machine_safety")}
    p = p.with_properties(
        invariants={**invariants, "type_ok": type_ok, "snapshot_committed": snapshot_committed},
        step_properties={"leader_append_only": leader_append_only},
        reachable={"snapshot_taken": snapshot_taken,
                   "caught_up_by_snapshot": caught_up_by_snapshot})
    return attrs.evolve(p, render=Render(message=describe_snapshot_message,
                                         server=describe_snapshot_server))
