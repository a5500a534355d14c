"""Joint consensus (the Raft paper §6; Ongaro's dissertation §4.3, "Arbitrary configuration
changes using joint consensus").

Configurations are log entries, as in ``membership`` (§4.1), but a change may replace any set
of servers by any other, in two steps:

- ``BeginChange(i, new)``: leader i, whose configuration C_old is a simple one and committed
  (no configuration entry beyond its commit index), appends the joint configuration
  C_old,new. A log entry has the fields of ``membership``'s plus ``old``: a joint entry's
  ``config`` is C_new and its ``old`` is C_old; a simple configuration's ``old`` is all 0.
- While a server uses C_old,new (the latest configuration in its log, committed or not, as in
  §4.1), every decision needs a majority of C_old **and** a majority of C_new: elections
  (``BecomeLeader``) and commitment (``AdvanceCommitIndex``; §4.3: "Agreement (for elections
  and entry commitment) requires separate majorities from both the old and new
  configurations"). Candidates and leaders talk to the members of both.
- ``CompleteChange(i)``: once C_old,new is committed, leader i appends C_new (§4.3: "the
  leader can create a log entry describing C_new and replicate it to the cluster").
- A leader that is not in C_new steps down once C_new is committed, and a server outside its
  configuration does not time out (as in ``membership``).

No rule about committing an entry of the leader's term first: joint consensus does not need
the July 2015 fix (every decision under C_old,new needs a majority of C_old), and the models
check it without.

Properties: raft.tla's; ``type_ok`` for the wider entries; ``config_change_one_at_a_time`` (a
leader's log has at most one configuration entry of its term beyond its commit index);
``new_follows_joint`` (in every log, a simple configuration entry other than the initial one
follows the joint entry with the same C_new: the leader leaves C_old,new only for C_new).
Reachable: ``joint_committed``, ``left_joint_config`` (a committed C_new, which only follows a
C_old,new), ``servers_replaced`` (a committed C_old,new that adds and removes servers) and
``config_committed_after_leader_change``.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import attrs

from raftspec.protocol import (
    BOOL,
    NUMBER,
    SERVER,
    SERVERS,
    VALUE,
    Field,
    Log,
    MessageType,
    Param,
    PerServer,
    Protocol,
    Record,
    Render,
    Row,
    SimulationHints,
)
from raftspec.reference import actions
from raftspec.reference.config import Config
from raftspec.reference.describe import describe_message, describe_server
from raftspec.reference.protocol import SERVER_PARAM, SIMULATION, leaders
from raftspec.reference.state import APPEND_ENTRIES_REQUEST, Role, State
from raftspec.reference.variants import membership

ENTRY = Record("Entry", (("term", NUMBER), ("value", VALUE), ("config", PerServer(BOOL)),
                         ("old", PerServer(BOOL))), module=__name__)
Entry = ENTRY.cls
"""A log entry: term, client value (0 in a configuration entry), C_new (all 0 in a normal
entry) and C_old (all 0 unless the entry is a joint configuration)."""

NEW_PARAMS = (Param("server", SERVER), Param("members", SERVERS))


# --- Configurations ---------------------------------------------------------------------------


def configuration(state: State, i: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(C_new, C_old) of the configuration server i uses: the latest in its log, committed or
    not, else the initial one; C_old is all 0 for a simple configuration."""
    for e in reversed(state.server(i).log):
        if 1 in e.config:
            return e.config, e.old
    return state.initial_config, membership.no_config(len(state.servers))


def is_joint(config: tuple[tuple[int, ...], tuple[int, ...]]) -> bool:
    return 1 in config[1]


def is_member(config: tuple[tuple[int, ...], tuple[int, ...]], k: int) -> bool:
    return bool(config[0][k - 1] or config[1][k - 1])


def is_quorum_of(servers: frozenset[int] | set[int],
                 config: tuple[tuple[int, ...], tuple[int, ...]]) -> bool:
    """A majority of C_new, and of C_old if the configuration is joint."""
    new, old = config
    return membership.is_quorum_of(servers, new) and (
        1 not in old or membership.is_quorum_of(servers, old))


def config_uncommitted(state: State, i: int) -> bool:
    s = state.server(i)
    return any(1 in e.config for e in s.log[s.commit_index:])


# --- Actions ----------------------------------------------------------------------------------


def begin_change(state: State, i: int, new_members: frozenset[int]) -> State | None:
    """Leader i, in a committed simple configuration C_old, appends C_old,new."""
    s = state.server(i)
    if s.role != Role.LEADER or config_uncommitted(state, i):
        return None
    new, old = configuration(state, i)
    wanted = tuple(1 if k in new_members else 0 for k in range(1, len(state.servers) + 1))
    if is_joint((new, old)) or wanted == new or 1 not in wanted:
        return None
    return state.update(i, s.evolve(log=s.log + (Entry(s.current_term, 0, wanted, new),)))


def complete_change(state: State, i: int) -> State | None:
    """Leader i, whose C_old,new is committed, appends C_new."""
    s = state.server(i)
    if s.role != Role.LEADER or config_uncommitted(state, i):
        return None
    config = configuration(state, i)
    if not is_joint(config):
        return None
    plain = membership.no_config(len(state.servers))
    return state.update(i, s.evolve(log=s.log + (Entry(s.current_term, 0, config[0], plain),)))


def timeout(state: State, i: int) -> State | None:
    """raft.tla ``Timeout``, for a member of C_old or C_new of its own configuration."""
    if not is_member(configuration(state, i), i):
        return None
    return actions.timeout(state, i)


def request_vote(state: State, i: int, j: int) -> State | None:
    """raft.tla ``RequestVote``, to a member of C_old or C_new."""
    if not is_member(configuration(state, i), j):
        return None
    return actions.request_vote(state, i, j)


def become_leader(state: State, i: int) -> State | None:
    """raft.tla ``BecomeLeader`` with votes from majorities of C_old and C_new."""
    s = state.server(i)
    if s.role != Role.CANDIDATE or not is_quorum_of(s.votes_granted, configuration(state, i)):
        return None
    n = len(state.servers)
    return state.update(i, s.evolve(role=Role.LEADER, next_index=(len(s.log) + 1,) * n,
                                    match_index=(0,) * n))


def client_request(state: State, i: int, v: int) -> State | None:
    """raft.tla ``ClientRequest`` with a normal entry."""
    s = state.server(i)
    if s.role != Role.LEADER:
        return None
    plain = membership.no_config(len(state.servers))
    return state.update(i, s.evolve(log=s.log + (Entry(s.current_term, v, plain, plain),)))


def advance_commit_index(state: State, i: int) -> State | None:
    """raft.tla ``AdvanceCommitIndex`` with majorities of C_old and C_new (the commit index
    only grows; see ``membership``); a leader outside C_new steps down once C_new is
    committed."""
    s = state.server(i)
    if s.role != Role.LEADER:
        return None
    config = configuration(state, i)
    for index in range(len(s.log), s.commit_index, -1):
        agree = {i} | {k for k in range(1, len(state.servers) + 1)
                       if k != i and s.match_index[k - 1] >= index}
        if is_quorum_of(agree, config):
            if s.log[index - 1].term == s.current_term:
                s = s.evolve(commit_index=index)
            break
    if not is_joint(config) and not config[0][i - 1] and not config_uncommitted_of(s):
        s = s.evolve(role=Role.FOLLOWER, left_config=True)
    return state.update(i, s)


def config_uncommitted_of(s: Any) -> bool:
    return any(1 in e.config for e in s.log[s.commit_index:])


def append_entries(state: State, i: int, j: int) -> State | None:
    """raft.tla ``AppendEntries``, to a member of C_old or C_new."""
    if not is_member(configuration(state, i), j):
        return None
    return actions.append_entries(state, i, j)


# --- Enumerators ------------------------------------------------------------------------------


def _subsets(n: int) -> tuple[frozenset[int], ...]:
    ids = range(1, n + 1)
    return tuple(frozenset(c) for size in range(1, n + 1) for c in combinations(ids, size))


def leaders_and_configurations(state: State, config: Config) -> list[tuple[int, frozenset]]:
    subsets = _subsets(config.servers)
    return [(i, c) for i, s in enumerate(state.servers, 1) if s.role == Role.LEADER
            for c in subsets]


# --- Properties -------------------------------------------------------------------------------


def type_ok(state: State, config: Config) -> bool:
    """raft.tla's ``TypeOK`` with configuration entries: a joint entry's C_old and C_new are
    nonempty, a simple one's C_old is empty, a normal entry has neither."""
    n = config.servers
    for s in state.servers:
        for e in s.log:
            if len(e.old) != n or any(f not in (0, 1) for f in e.old):
                return False
            if 1 in e.old and 1 not in e.config:
                return False
    widened = state.evolve(servers=tuple(
        s.evolve(log=tuple(membership.Entry(e.term, e.value, e.config) for e in s.log))
        for s in state.servers))
    return membership.type_ok(widened, config)


def config_change_one_at_a_time(state: State, config: Config) -> bool:
    """A leader's log has at most one configuration entry of its term beyond its commit index
    (see ``membership``)."""
    return membership.config_change_one_at_a_time(state, config)


def new_follows_joint(state: State, config: Config) -> bool:
    """In every log, a simple configuration entry follows the joint entry of the same C_new
    (the previous configuration entry)."""
    for s in state.servers:
        previous = None
        for e in s.log:
            if 1 not in e.config:
                continue
            if 1 not in e.old and (previous is None or 1 not in previous.old
                                   or previous.config != e.config):
                return False
            previous = e
    return True


def _committed_configs(state: State) -> list[tuple[int, Any]]:
    return [(k, e) for s in state.servers for k, e in enumerate(s.log[:s.commit_index])
            if 1 in e.config]


def joint_committed(state: State, config: Config) -> bool:
    """Reachable: a server knows a joint configuration C_old,new committed."""
    return any(1 in e.old for _, e in _committed_configs(state))


def left_joint_config(state: State, config: Config) -> bool:
    """Reachable: a server knows committed a C_new that follows a C_old,new."""
    return any(1 not in e.old for _, e in _committed_configs(state))


def servers_replaced(state: State, config: Config) -> bool:
    """Reachable: a committed C_old,new both adds and removes servers (an arbitrary change, in
    one step of the cluster)."""
    return any(1 in e.old and any(a and not b for a, b in zip(e.config, e.old, strict=True))
               and any(b and not a for a, b in zip(e.config, e.old, strict=True))
               for _, e in _committed_configs(state))


def config_committed_after_leader_change(state: State, config: Config) -> bool:
    """Reachable: a configuration entry known committed after an entry of an earlier term."""
    return membership.config_committed_after_leader_change(state, config)


# --- Printing ---------------------------------------------------------------------------------


def describe_entry(e: Any) -> str:
    if 1 in e.old:
        return (f"t{e.term}:C{{{','.join(map(str, membership.members(e.old)))}}}"
                f"+{{{','.join(map(str, membership.members(e.config)))}}}")
    return membership.describe_entry(e)


def describe_joint_message(m: Any) -> str:
    if m.mtype != APPEND_ENTRIES_REQUEST:
        return describe_message(m)
    text = describe_message(m._replace(mentries=()))
    return text.replace("[]", "[" + ",".join(describe_entry(e) for e in m.mentries) + "]")


def describe_joint_server(i: int, s: Any) -> str:
    text = describe_server(i, s.evolve(log=()))
    return text.replace("log []", "log [" + ", ".join(describe_entry(e) for e in s.log) + "]")


def cell(state: State) -> tuple:
    return tuple((s.current_term, s.role, tuple((e.term, e.config, e.old) for e in s.log),
                  s.commit_index) for s in state.servers)


# --- The edit ---------------------------------------------------------------------------------


def _widen_entries(protocol: Protocol) -> Protocol:
    log = Log(ENTRY)
    types = tuple(
        MessageType(t.name, t.short, tuple(Field(f.name, log) if f.name == "mentries" else f
                                           for f in t.fields), t.source, t.dest)
        for t in protocol.schema.message_types)
    protocol = attrs.evolve(protocol, schema=attrs.evolve(protocol.schema,
                                                          message_types=types))
    return protocol.with_field_kind("log", log)


def edit(protocol: Protocol) -> Protocol:
    p = _widen_entries(protocol)
    p = p.with_global_fields({Field("initial_config", PerServer(BOOL)):
                              membership.initial_config}, edit="joint")
    p = p.with_server_fields({Field("left_config", BOOL): lambda config: False})
    p = p.replace("Timeout", apply=timeout)
    p = p.replace("RequestVote", apply=request_vote)
    p = p.replace("BecomeLeader", apply=become_leader)
    p = p.replace("ClientRequest", apply=client_request)
    p = p.replace("AdvanceCommitIndex", apply=advance_commit_index)
    p = p.replace("AppendEntries", apply=append_entries)
    p = p.add(Row("BeginChange", NEW_PARAMS, leaders_and_configurations, begin_change),
              after="ClientRequest")
    p = p.add(Row("CompleteChange", SERVER_PARAM, leaders, complete_change),
              after="BeginChange")
    p = p.with_properties(
        invariants={"type_ok": type_ok,
                    "config_change_one_at_a_time": config_change_one_at_a_time,
                    "new_follows_joint": new_follows_joint},
        reachable={"joint_committed": joint_committed, "left_joint_config": left_joint_config,
                   "servers_replaced": servers_replaced,
                   "config_committed_after_leader_change":
                       config_committed_after_leader_change})
    return attrs.evolve(p, render=Render(message=describe_joint_message,
                                         server=describe_joint_server),
                        simulation=SimulationHints(rare=SIMULATION.rare, cell=cell))
