"""Single-server membership change (Ongaro's dissertation §4.1), with the fix of the bug Ongaro
reported on raft-dev in July 2015.

Configurations are log entries. Edits of raft.tla's table:

- A log entry has a third field, ``config``: one flag per server. A normal entry's flags are
  all 0; a configuration entry's are its members (never empty) and its value is 0.
- Each server uses the **latest configuration in its log, committed or not** (§4.1: "each
  server always uses the latest configuration found in its log"); with none in its log, the
  initial configuration (servers ``1..bounds.initial_members``, every server by default; a
  global field, so that renaming servers renames it). Servers outside it exist from the start
  and can be added.
- ``AddServer(i, k)`` / ``RemoveServer(i, k)``: leader i appends its configuration with server
  k added or removed (one server at a time), if its log holds no uncommitted configuration
  entry (§4.1: a leader does not begin a new change "until the previous change's entry has
  committed") and, **the fix**, if it has committed an entry of its current term (raft-dev,
  July 2015: "a leader may not append a new configuration entry until it has committed an
  entry from its current term"). ``reference/mutants/membership_without_term_commit.py``
  drops the fix.
- Quorums are counted in the configuration the counting server uses: ``BecomeLeader`` needs
  votes from a majority of the candidate's configuration, ``AdvanceCommitIndex`` a majority of
  the leader's configuration, where the leader counts itself only if it is a member (§4.2.2).
- A leader that is not in its configuration steps down once that configuration's entry is
  committed (§4.2.2), in the same ``AdvanceCommitIndex`` step.
- Candidates ask for votes, and leaders replicate, to the members of their own configuration
  only (a new server receives entries once the configuration adding it is in the leader's
  log). Servers answer requests without consulting their own configuration (§4.1).
- A server outside its own configuration does not time out (as LogCabin: a server that is not
  a voter in its configuration does not start elections). This leaves out the disruption by
  removed servers of §4.2.3 (a liveness matter) and keeps the state space smaller.

Catching up new servers (§4.2.1) and the no-op entry of a new leader (§6.4) are not modelled:
a leader's first entry of its term is a client request.

Properties: raft.tla's, unchanged (two leaders in a term, a committed entry lost); ``type_ok``
for the wider entries; ``config_change_one_at_a_time`` (§4.1, "at most one configuration change
uncommitted at a time": a leader's log has at most one configuration entry of its term beyond
its commit index). Reachable: ``config_committed_after_leader_change`` (a configuration entry
known committed after an entry of an earlier term), ``server_added`` and ``server_removed`` (a
committed configuration that differs from the initial one by an addition or a removal) and
``removed_leader_stepped_down`` (recorded in the server field ``left_config``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import attrs

from raftspec.protocol import (
    BOOL,
    NUMBER,
    VALUE,
    Field,
    Log,
    MessageType,
    PerServer,
    Protocol,
    Record,
    Render,
    Row,
    SimulationHints,
)
from raftspec.reference import actions, properties
from raftspec.reference.config import Config
from raftspec.reference.describe import describe_message, describe_server
from raftspec.reference.protocol import PAIR_PARAMS, SIMULATION, leaders_and_peers
from raftspec.reference.state import APPEND_ENTRIES_REQUEST, Role, State

ENTRY = Record("Entry", (("term", NUMBER), ("value", VALUE), ("config", PerServer(BOOL))),
               module=__name__)
Entry = ENTRY.cls
"""A log entry: its term, a client value (0 in a configuration entry) and a configuration (one
flag per server; all 0 in a normal entry)."""


# --- Configurations ---------------------------------------------------------------------------


def is_config(e: Any) -> bool:
    return 1 in e.config


def configuration(state: State, i: int) -> tuple[int, ...]:
    """The configuration server i uses: the latest in its log, committed or not, else the
    initial one."""
    for e in reversed(state.server(i).log):
        if 1 in e.config:
            return e.config
    return state.initial_config


@functools.cache
def no_config(n: int) -> tuple[int, ...]:
    """The configuration field of a normal entry: all flags 0."""
    return (0,) * n


def members(config: tuple[int, ...]) -> list[int]:
    return [k for k, flag in enumerate(config, 1) if flag]


def is_quorum_of(servers: frozenset[int] | set[int], config: tuple[int, ...]) -> bool:
    """servers include a majority of config's members."""
    inside = sum(1 for k in servers if config[k - 1])
    return 2 * inside > sum(config)


def committed_own_term(state: State, i: int) -> bool:
    """The fix: leader i has committed an entry of its current term (terms never decrease
    along a log, so its last committed entry is of its term)."""
    s = state.server(i)
    return (0 < s.commit_index <= len(s.log)
            and s.log[s.commit_index - 1].term == s.current_term)


def config_uncommitted(state: State, i: int) -> bool:
    """i's log holds a configuration entry beyond its commit index."""
    s = state.server(i)
    return any(1 in e.config for e in s.log[s.commit_index:])


# --- Actions ----------------------------------------------------------------------------------


def change_config(state: State, i: int, k: int, add: bool,
                  may_change: Callable[[State, int], bool]) -> State | None:
    """Leader i appends its configuration with k added (``add``) or removed."""
    s = state.server(i)
    if s.role != Role.LEADER or config_uncommitted(state, i) or not may_change(state, i):
        return None
    config = configuration(state, i)
    if bool(config[k - 1]) == add or (not add and sum(config) == 1):
        return None
    new = config[:k - 1] + ((1 if add else 0),) + config[k:]
    return state.update(i, s.evolve(log=s.log + (Entry(s.current_term, 0, new),)))


def add_server(state: State, i: int, k: int) -> State | None:
    """Leader i appends its configuration plus server k (§4.1, with the July 2015 fix)."""
    return change_config(state, i, k, True, committed_own_term)


def remove_server(state: State, i: int, k: int) -> State | None:
    """Leader i appends its configuration minus server k, maybe itself (§4.1, with the July
    2015 fix)."""
    return change_config(state, i, k, False, committed_own_term)


def timeout(state: State, i: int) -> State | None:
    """raft.tla ``Timeout``, for a member of its own configuration only."""
    if not configuration(state, i)[i - 1]:
        return None
    return actions.timeout(state, i)


def request_vote(state: State, i: int, j: int) -> State | None:
    """raft.tla ``RequestVote``, to a member of i's configuration."""
    if not configuration(state, i)[j - 1]:
        return None
    return actions.request_vote(state, i, j)


def become_leader(state: State, i: int) -> State | None:
    """raft.tla ``BecomeLeader`` with votes from a majority of i's configuration."""
    s = state.server(i)
    if s.role != Role.CANDIDATE or not is_quorum_of(s.votes_granted, configuration(state, i)):
        return None
    n = len(state.servers)
    return state.update(i, s.evolve(role=Role.LEADER, next_index=(len(s.log) + 1,) * n,
                                    match_index=(0,) * n))


def client_request(state: State, i: int, v: int) -> State | None:
    """raft.tla ``ClientRequest`` with a normal (not configuration) entry."""
    s = state.server(i)
    if s.role != Role.LEADER:
        return None
    return state.update(i, s.evolve(log=s.log + (Entry(s.current_term, v,
                                                       no_config(len(state.servers))),)))


def agree_index_quorum(state: State, i: int) -> int:
    """The largest index of leader i's log stored on a majority of i's configuration (i counts
    itself only if it is a member), or 0."""
    s = state.server(i)
    config = configuration(state, i)
    for index in range(len(s.log), 0, -1):
        agree = {k for k in members(config) if k == i or s.match_index[k - 1] >= index}
        if is_quorum_of(agree, config):
            return index
    return 0


def advance_commit_index(state: State, i: int) -> State | None:
    """raft.tla ``AdvanceCommitIndex`` counting i's configuration; a leader outside its
    configuration steps down once that configuration's entry is committed (§4.2.2).

    The commit index only grows: raft.tla sets it to the largest index a quorum stores, which
    with a fixed configuration never goes down, but after the leader appends a configuration
    with one more server it can (found by ``config_change_one_at_a_time``)."""
    s = state.server(i)
    if s.role != Role.LEADER:
        return None
    index = agree_index_quorum(state, i)
    if index > s.commit_index and s.log[index - 1].term == s.current_term:
        s = s.evolve(commit_index=index)
    if not configuration(state, i)[i - 1] and not any(1 in e.config
                                                      for e in s.log[s.commit_index:]):
        s = s.evolve(role=Role.FOLLOWER, left_config=True)
    return state.update(i, s)


def append_entries(state: State, i: int, j: int) -> State | None:
    """raft.tla ``AppendEntries``, to a member of i's configuration."""
    if not configuration(state, i)[j - 1]:
        return None
    return actions.append_entries(state, i, j)


# --- Enumerators ------------------------------------------------------------------------------


def leaders_and_servers(state: State, config: Config) -> list[tuple[int, int]]:
    ids = range(1, config.servers + 1)
    return [(i, j) for i, s in enumerate(state.servers, 1) if s.role == Role.LEADER
            for j in ids]


# --- Properties -------------------------------------------------------------------------------


def type_ok(state: State, config: Config) -> bool:
    """raft.tla's ``TypeOK`` with configuration entries (value 0, a nonempty set of servers)
    and the initial configuration."""
    n = config.servers
    for s in state.servers:
        for e in s.log:
            if len(e.config) != n or any(f not in (0, 1) for f in e.config):
                return False
            if (e.value == 0) != (1 in e.config):
                return False
    if len(state.initial_config) != n or 1 not in state.initial_config:
        return False
    as_tla = state.evolve(servers=tuple(
        s.evolve(log=tuple(e._replace(value=1) for e in s.log)) for s in state.servers))
    return properties.type_ok(as_tla, config)


def config_change_one_at_a_time(state: State, config: Config) -> bool:
    """§4.1: at most one configuration change uncommitted at a time, as a leader knows it: a
    leader's log holds at most one configuration entry of the leader's term beyond its commit
    index. (Stated over the leader's own entries: raft.tla's commit indexes go down on
    followers that hear from a leader knowing less, so a new leader may hold two inherited
    configuration entries beyond its commit index until it commits an entry of its term.)"""
    for s in state.servers:
        if s.role == Role.LEADER and sum(
                1 for e in s.log[s.commit_index:]
                if e.term == s.current_term and 1 in e.config) > 1:
            return False
    return True


def _committed_configs(state: State) -> list[tuple[tuple[int, ...], int]]:
    return [(e.config, e.term) for s in state.servers for e in s.log[:s.commit_index]
            if 1 in e.config]


def config_committed_after_leader_change(state: State, config: Config) -> bool:
    """Reachable: a server knows committed a configuration entry that follows an entry of an
    earlier term in its log (a leader changed the configuration after an earlier leader had
    created entries)."""
    for s in state.servers:
        committed = s.log[:s.commit_index]
        for k, e in enumerate(committed):
            if 1 in e.config and any(d.term < e.term for d in committed[:k]):
                return True
    return False


def removed_leader_stepped_down(state: State, config: Config) -> bool:
    """Reachable: a leader outside its configuration stepped down once it was committed."""
    return any(s.left_config for s in state.servers)


def server_added(state: State, config: Config) -> bool:
    """Reachable: a committed configuration has a server the initial one lacks."""
    return any(any(c and not o for c, o in zip(cfg, state.initial_config, strict=True))
               for cfg, _ in _committed_configs(state))


def server_removed(state: State, config: Config) -> bool:
    """Reachable: a committed configuration lacks a server of the initial one."""
    return any(any(o and not c for c, o in zip(cfg, state.initial_config, strict=True))
               for cfg, _ in _committed_configs(state))


# --- Printing ---------------------------------------------------------------------------------


def describe_entry(e: Any) -> str:
    if 1 in e.config:
        return f"t{e.term}:C{{{','.join(map(str, members(e.config)))}}}"
    return f"t{e.term}:v{e.value}"


def describe_membership_message(m: Any) -> str:
    text = describe_message(m._replace(mentries=())) if m.mtype == APPEND_ENTRIES_REQUEST \
        else describe_message(m)
    if m.mtype == APPEND_ENTRIES_REQUEST:
        text = text.replace("[]", "[" + ",".join(describe_entry(e) for e in m.mentries) + "]")
    return text


def describe_membership_server(i: int, s: Any) -> str:
    text = describe_server(i, s.evolve(log=()))
    return text.replace("log []", "log [" + ", ".join(describe_entry(e) for e in s.log) + "]")


def cell(state: State) -> tuple:
    """raft.tla's simulation cell with each entry's configuration: walks restart from every
    combination of terms, roles, logs (configurations included) and commit indexes met."""
    return tuple((s.current_term, s.role, tuple((e.term, e.config) for e in s.log),
                  s.commit_index) for s in state.servers)


# --- The edit ---------------------------------------------------------------------------------


def initial_config(config: Config) -> tuple[int, ...]:
    """Servers 1..initial_members (every server when 0)."""
    m = getattr(config, "initial_members", 0) or config.servers
    return tuple(1 if k <= m else 0 for k in range(1, config.servers + 1))


def _widen_entries(protocol: Protocol) -> Protocol:
    """The log field and AppendEntries' entries hold the wider entry (so that renaming servers
    renames configurations too)."""
    schema = protocol.schema
    log = Log(ENTRY)
    types = tuple(
        MessageType(t.name, t.short, tuple(Field(f.name, log) if f.name == "mentries" else f
                                           for f in t.fields), t.source, t.dest)
        for t in schema.message_types)
    schema = attrs.evolve(schema, message_types=types)
    protocol = attrs.evolve(protocol, schema=schema)
    return protocol.with_field_kind("log", log)


def edit(protocol: Protocol) -> Protocol:
    p = _widen_entries(protocol)
    p = p.with_global_fields({Field("initial_config", PerServer(BOOL)): initial_config},
                             edit="membership")
    p = p.with_server_fields({Field("left_config", BOOL): lambda config: False})
    p = p.replace("Timeout", apply=timeout)
    p = p.replace("RequestVote", apply=request_vote)
    p = p.replace("BecomeLeader", apply=become_leader)
    p = p.replace("ClientRequest", apply=client_request)
    p = p.replace("AdvanceCommitIndex", apply=advance_commit_index)
    p = p.replace("AppendEntries", apply=append_entries)
    p = p.add(Row("AddServer", PAIR_PARAMS, leaders_and_peers, add_server),
              after="ClientRequest")
    p = p.add(Row("RemoveServer", PAIR_PARAMS, leaders_and_servers, remove_server),
              after="AddServer")
    p = p.with_properties(
        invariants={"type_ok": type_ok,
                    "config_change_one_at_a_time": config_change_one_at_a_time},
        reachable={"config_committed_after_leader_change": config_committed_after_leader_change,
                   "server_added": server_added, "server_removed": server_removed,
                   "removed_leader_stepped_down": removed_leader_stepped_down})
    return attrs.evolve(p, render=Render(message=describe_membership_message,
                                         server=describe_membership_server),
                        simulation=SimulationHints(rare=SIMULATION.rare, cell=cell))

