"""The etcd-raft variant (reference/variants/etcd.py) as a bounded model for the checker.

The validation variant's functions are the steps between two trace points; here each etcd code
path a node runs to completion is one action built from those same functions, so the model
checks the semantics the traces are validated against:

- ``Hup(i)``: ``raft.hup`` (the guard of etcd-io/raft #456 unless ``guard=False``) and
  ``campaign``: ``becomeCandidate``, its own vote, a MsgVote to every other voter;
- ``BecomeLeader(i)``: a won (joint) vote; ``becomeLeader`` and the empty entry, self-acked;
- ``Propose(i, change)``: a leader appends a configuration change of the model (etcd refuses
  one while an earlier one may be unapplied: ``pendingConfIndex > applied``) and self-acks;
- ``SendAppend(i, j)``: MsgApp of everything after ``Progress[j].Match`` (a subset of what
  etcd may send, enough to replicate); ``Heartbeat(i, j)``;
- ``Step(m)``: ``raft.Step`` of a message in flight: term handling (``becomeFollower``), then
  ``handleAppendEntries`` / ``handleHeartbeat`` / the MsgVote case (every answer etcd may give)
  / ``poll`` / ``MaybeUpdate`` + ``maybeCommit``, the answer put in flight;
- ``CheckQuorum(i)``: a leader steps down within its term (``stepLeader`` MsgCheckQuorum
  without an active quorum; time is abstract, so at any moment, as if messages were slow);
- ``Ready(i)``: the application applies what is committed, configuration entries included
  (``applyConfChange``, simple changes as ConfChange v1), and ``Advance``;
- ``Drop(m)``: the network loses a message.

Servers 1..N all start from one storage snapshot at index 0 whose configuration is
``voters``; the others are not voters until a change adds them. States hold strings (roles,
message types), so fingerprints are Python hashes: valid within one process, which is how
``explore`` runs here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from raftspec.reference.variants import etcd
from raftspec.reference.variants.etcd import Entry, Message, Server


@attrs.frozen
class EtcdBounds:
    """The model: servers, initial voters, the configuration changes a leader may propose (in
    any order, each at most once per log), and the bounds."""

    servers: int = 3
    voters: frozenset[int] = frozenset({1, 2, 3})
    changes: tuple[tuple[str, int], ...] = ((etcd.REMOVE, 3), (etcd.REMOVE, 2))
    max_term: int = 2
    max_log: int = 4
    max_messages: int = 2
    guard: bool = True
    leader_elected: bool = True     # start where node 1 leads term 1, its entry committed
    heartbeats: bool = False
    drops: bool = False


@attrs.frozen(cache_hash=True)
class ModelState:
    servers: tuple[Server, ...]
    messages: frozenset[Message]     # at most one copy of a message (etcd never duplicates)

    def server(self, i: int) -> Server:
        return self.servers[i - 1]

    def update(self, i: int, s: Server) -> ModelState:
        return ModelState(self.servers[: i - 1] + (s,) + self.servers[i:], self.messages)

    def send(self, *ms: Message) -> ModelState:
        return ModelState(self.servers, self.messages | frozenset(ms))

    def discard(self, m: Message) -> ModelState:
        return ModelState(self.servers, self.messages - {m})


def initial(b: EtcdBounds) -> ModelState:
    """Every node at the snapshot; with ``leader_elected``, the state a run reaches once node 1
    has won term 1 and every node has committed and applied its empty entry (a reachable
    state, to leave the bounds to what follows)."""
    s = Server(voters=b.voters)
    st = ModelState((s,) * b.servers, frozenset())
    if not b.leader_elected:
        return st
    entry = (Entry(1),)
    follower = s.evolve(term=1, vote=1, lead=1, log=entry, commit=1, applied=1)
    leader = follower.evolve(role=etcd.LEADER, match=tuple(
        (j, 1) for j in range(1, b.servers + 1)))
    return ModelState((leader,) + tuple(
        follower if j in b.voters else s for j in range(2, b.servers + 1)), frozenset())


# --- actions ----------------------------------------------------------------------------------

def hup(st: ModelState, i: int, b: EtcdBounds) -> ModelState | None:
    s = st.server(i)
    if s.term >= b.max_term or etcd.campaign_allowed(s, i, b.guard):
        return None
    s = etcd.record_vote(etcd.become_candidate(s, i), Message(etcd.MSG_VOTE_RESP, 0, i, i))
    votes = [Message(etcd.MSG_VOTE, s.term, i, j, index=s.last_index, log_term=s.last_term)
             for j in sorted(s.members) if j != i]
    return st.update(i, s).send(*votes)


def self_ack(s: Server, i: int) -> Server:
    """``appendEntry``'s MsgAppResp to itself, stepped once persisted: Match, then commit."""
    return etcd.maybe_commit(etcd.maybe_update(s, i, s.last_index))


def become_leader(st: ModelState, i: int, b: EtcdBounds) -> ModelState | None:
    s = st.server(i)
    if s.role != etcd.CANDIDATE or not etcd.vote_won(s) or s.last_index >= b.max_log:
        return None
    s = etcd.become_leader(s, i)
    s = etcd.append_entry(etcd.propose(s, Entry(s.term)), leave_joint=False)
    return st.update(i, self_ack(s, i))


def propose(st: ModelState, i: int, change: tuple[str, int], b: EtcdBounds
            ) -> ModelState | None:
    s = st.server(i)
    if (s.role != etcd.LEADER or s.last_index >= b.max_log or s.applied < s.last_index
            or any(e.conf == (change,) for e in s.log)):
        return None                  # etcd: no second change while one may be unapplied
    s = etcd.append_entry(etcd.propose(s, Entry(s.term, (change,))), leave_joint=False)
    return st.update(i, self_ack(s, i))


def send_append(st: ModelState, i: int, j: int, b: EtcdBounds) -> ModelState | None:
    s = st.server(i)
    if s.role != etcd.LEADER or len(st.messages) >= b.max_messages:
        return None
    prev = s.match_of(j)
    m = etcd.app_message(s, i, j, prev, s.last_index - prev)
    if m is None or m in st.messages:
        return None
    return st.send(m)


def heartbeat(st: ModelState, i: int, j: int, b: EtcdBounds) -> ModelState | None:
    s = st.server(i)
    if s.role != etcd.LEADER or len(st.messages) >= b.max_messages:
        return None
    m = Message(etcd.MSG_HEARTBEAT, s.term, i, j, commit=etcd.heartbeat_commit(s, j))
    return None if m in st.messages else st.send(m)


def step(st: ModelState, m: Message, b: EtcdBounds) -> list[ModelState]:
    """``raft.Step(m)`` at m.to: every state etcd may reach (a vote may be refused or granted
    when the receiver may have forgotten a leader)."""
    i = m.to
    st = st.discard(m)
    s = st.server(i)
    if m.term > s.term:
        lead = m.frm if m.type in etcd.LEADER_MESSAGES else 0
        s = etcd.become_follower(s, m.term, lead)
    elif m.term < s.term:
        return [st]                                     # ignored
    if m.type == etcd.MSG_VOTE:
        return [st.update(i, s.evolve(vote=m.frm) if granted else s).send(resp)
                for resp, granted in etcd.vote_responses(s, i, m)]
    if m.type == etcd.MSG_VOTE_RESP:
        if s.role == etcd.CANDIDATE:
            s = etcd.record_vote(s, m)
        return [st.update(i, s)]
    if m.type in (etcd.MSG_APP, etcd.MSG_HEARTBEAT):
        if s.role == etcd.LEADER:
            return [st]                                 # cannot happen within a term
        if s.role != etcd.FOLLOWER:
            s = etcd.become_follower(s, m.term, m.frm)
        handler = etcd.handle_append_entries if m.type == etcd.MSG_APP else \
            etcd.handle_heartbeat
        s, resp = handler(s.evolve(lead=m.frm), i, m)
        return [st.update(i, s).send(resp)]
    if m.type == etcd.MSG_APP_RESP and s.role == etcd.LEADER and not m.reject:
        return [st.update(i, etcd.maybe_commit(etcd.maybe_update(s, m.frm, m.index)))]
    return [st.update(i, s)]


def check_quorum(st: ModelState, i: int, b: EtcdBounds) -> ModelState | None:
    s = st.server(i)
    if s.role != etcd.LEADER:
        return None
    return st.update(i, etcd.become_follower(s, s.term, 0))


def ready(st: ModelState, i: int, b: EtcdBounds) -> ModelState | None:
    """The application applies the committed entries, configuration changes as v1 (simple)."""
    s = st.server(i)
    if s.applied >= s.commit:
        return None
    while (found := etcd.next_conf_entry(s)) is not None:
        voters, _ = etcd.apply_changes(s, found[1].conf)
        options = dict(etcd.apply_conf_change(s, i, voters))
        s = options["Simple"]
    return st.update(i, etcd.ready(s))


# --- properties (raft.tla's, over etcd's state) -----------------------------------------------

def _committed(s: Server) -> tuple[Entry, ...]:
    return s.log[: s.commit]


def election_safety(st: ModelState) -> bool:
    """At most one leader per term."""
    terms = [s.term for s in st.servers if s.role == etcd.LEADER]
    return len(terms) == len(set(terms))


def log_matching(st: ModelState) -> bool:
    """Two logs with an entry of the same index and term agree up to it."""
    for a in st.servers:
        for c in st.servers:
            for k in range(min(len(a.log), len(c.log)), 0, -1):
                if a.log[k - 1].term == c.log[k - 1].term:
                    if a.log[:k] != c.log[:k]:
                        return False
                    break
    return True


def state_machine_safety(st: ModelState) -> bool:
    """Committed entries agree: one committed prefix is a prefix of the other."""
    for a in st.servers:
        for c in st.servers:
            n = min(a.commit, c.commit)
            if a.log[:n] != c.log[:n]:
                return False
    return True


def leader_completeness(st: ModelState) -> bool:
    """A leader's log holds every entry committed (anywhere) in an earlier term."""
    for leader in st.servers:
        if leader.role != etcd.LEADER:
            continue
        for s in st.servers:
            for k, e in enumerate(_committed(s)):
                if e.term < leader.term and (len(leader.log) <= k or leader.log[k] != e):
                    return False
    return True


def commit_within_log(st: ModelState) -> bool:
    return all(s.commit <= s.last_index for s in st.servers)


def leader_append_only(st: ModelState, nxt: ModelState) -> bool:
    """A leader that stays leader of its term only appends."""
    for a, c in zip(st.servers, nxt.servers, strict=True):
        if a.role == c.role == etcd.LEADER and a.term == c.term and c.log[: len(a.log)] != a.log:
            return False
    return True


def commit_never_decreases(st: ModelState, nxt: ModelState) -> bool:
    return all(c.commit >= a.commit for a, c in zip(st.servers, nxt.servers, strict=True))


INVARIANTS = {"election_safety": election_safety, "log_matching": log_matching,
              "state_machine_safety": state_machine_safety,
              "leader_completeness": leader_completeness, "commit_within_log": commit_within_log}
STEP_PROPERTIES = {"leader_append_only": leader_append_only,
                   "commit_never_decreases": commit_never_decreases}


class EtcdSystem:
    """The bounded model as a system for ``checker.explore`` (no symmetry: servers differ in
    the initial configuration and in the changes)."""

    def __init__(self, bounds: EtcdBounds, start: ModelState | None = None) -> None:
        self.bounds = bounds
        self.start = start
        self.invariants = dict(INVARIANTS)
        self.step_properties = dict(STEP_PROPERTIES)

    def init_states(self) -> Iterable[ModelState]:
        return [self.start if self.start is not None else initial(self.bounds)]

    def constraint(self, state: ModelState) -> bool:
        return True

    def fingerprint(self, state: ModelState) -> int:
        return hash(state)

    def steps(self, st: ModelState) -> Iterator[tuple[tuple, ModelState]]:
        b = self.bounds
        ids = range(1, b.servers + 1)
        for i in ids:
            for name, act in (("Hup", hup), ("BecomeLeader", become_leader), ("Ready", ready),
                              ("CheckQuorum", check_quorum)):
                nxt = act(st, i, b)
                if nxt is not None:
                    yield (name, i), nxt
            for change in b.changes:
                nxt = propose(st, i, change, b)
                if nxt is not None:
                    yield ("Propose", i, change), nxt
            for j in ids:
                if j != i:
                    for name, act in (("SendAppend", send_append), ("Heartbeat", heartbeat)):
                        if name == "Heartbeat" and not b.heartbeats:
                            continue
                        nxt = act(st, i, j, b)
                        if nxt is not None:
                            yield (name, i, j), nxt
        for m in st.messages:
            for nxt in step(st, m, b):
                yield ("Step", describe(m)), nxt
            if b.drops:
                yield ("Drop", describe(m)), st.discard(m)


def describe(m: Message) -> str:
    from raftspec.traces.etcd.adapter import describe_message

    return describe_message(m)


ISSUE_456_PREFIX = (
    ("Propose", 1, (etcd.REMOVE, 3)), ("SendAppend", 1, 2),
    ("Step", "MsgApp 1→2 t1 prev 1/1 +1 commit 1"), ("Step", "MsgAppResp 2→1 t1 index 2"),
    ("Ready", 1), ("Propose", 1, (etcd.REMOVE, 2)), ("SendAppend", 1, 2),
    ("Step", "MsgApp 1→2 t1 prev 2/1 +1 commit 2"), ("Step", "MsgAppResp 2→1 t1 index 3"))
"""From ``initial``: leader 1 removes 3 (committed and applied on 1 with 2's ack), then
removes 2 (committed on 1). Node 2 has committed "remove 3" without applying it: its
configuration is still {1, 2, 3}, while node 1's is about to become {1}."""


def replay(bounds: EtcdBounds, actions: Iterable[tuple]) -> ModelState:
    """The state reached from the initial one by these actions of the model, each of which
    must be enabled (a way to start a check from a state the model reaches)."""
    system = EtcdSystem(bounds)
    state = initial(bounds)
    for action in actions:
        nxt = [s for a, s in system.steps(state) if a == tuple(action)]
        if not nxt:
            raise ValueError(f"{action} is not enabled")
        state = nxt[0]
    return state


def check(bounds: EtcdBounds, start: ModelState | None = None, **kw: Any):
    """``checker.explore`` of the model with every property (from ``start`` if given)."""
    from raftspec.checker.explore import explore

    return explore(EtcdSystem(bounds, start), **kw)


def edit(protocol):  # noqa: ANN001, ANN201 (the variant-loading interface)
    """Not a table edit: the model is explored by ``check`` (docs/etcd.md)."""
    from raftspec.protocol.errors import RaftspecError

    raise RaftspecError("'etcd_model' is not an edit of raft.tla's action table: explore it "
                        "with raftspec.reference.variants.etcd_model.check "
                        "(benchmarks/bench_etcd_model.py, docs/etcd.md)")
