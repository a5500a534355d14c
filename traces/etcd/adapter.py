"""The etcd-raft adapter: each trace event as the etcd code path of reference/variants/etcd.py.

One file holds every node's events in emission order (the logger is shared), so the file
order is the order of the search; sends and receives are matched by content, never by
timestamp: a receive takes a message in flight whose type, term, from, to, index, logTerm,
commit, entries, reject and rejectHint are the logged ones, and when several carried different
entries, each is kept as a candidate.

Each event is one etcd code path of the variant (the table "Event → etcd code path" in
docs/etcd.md): the bootstrap run of InitState/BecomeFollower/ApplyConfChange sets a node's
initial state; a later InitState is a restart from durable state; Receive* is ``Step`` (the
message leaves the network); Send* must be the message etcd would send; a response must be the
handler's answer to the message being stepped; Replicate/ChangeConf are proposals appended when
the leader's self-MsgAppResp is sent. After each event the node's logged state (HardState,
role, lastIndex, voters) must equal the variant's, read before or after the step as etcd's
trace point does (``OBSERVED_BEFORE``).

An event logged with role StatePreCandidate is preceded by an untraced ``becomePreCandidate``.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from raftspec.protocol.errors import RaftspecError
from raftspec.reference.variants import etcd
from raftspec.reference.variants.etcd import Entry, Message, Server, Snapshot
from raftspec.traces.etcd.read import read_lines
from raftspec.traces.validate.adapter import Attempt, Event

UNSUPPORTED_EVENTS = {"SendSnapshot": "SendSnapshot events (never emitted by etcd-raft v3)",
                      "ReceiveSnapshot": "ReceiveSnapshot events (never emitted by etcd-raft v3)"}

BOOT_TERM = 1
"""The term of a bootstrap log's entries: StartNode writes its configuration entries at term 1
(etcd-io/raft bootstrap.go), and etcd's test harness bootstraps a node from a storage snapshot
of term 1 (rafttest/interaction_env_handler_add_nodes.go); upstream's Traceetcdraft.tla assumes
the same. No line of the trace states it: InitState is traced in newRaft before loadState, so
its HardState is zero (term 0) in every etcd trace."""

OBSERVED_BEFORE = frozenset((
    "Replicate", "ChangeConf", "ApplyConfChange", "SendRequestVoteResponse",
    "ReceiveAppendEntriesRequest", "ReceiveAppendEntriesResponse", "ReceiveRequestVoteRequest",
    "ReceiveRequestVoteResponse"))


@attrs.frozen(cache_hash=True)
class Cluster:
    """A candidate: every node (by position in ``ids``) and the messages in flight."""

    servers: tuple[Server, ...]
    bag: tuple[tuple[Message, int], ...] = ()

    def server(self, pos: int) -> Server:
        return self.servers[pos]

    def update(self, pos: int, s: Server) -> Cluster:
        return attrs.evolve(self, servers=self.servers[:pos] + (s,) + self.servers[pos + 1:])

    def send(self, m: Message) -> Cluster:
        bag = list(self.bag)
        for k, (msg, c) in enumerate(bag):
            if msg == m:
                bag[k] = (msg, c + 1)
                return attrs.evolve(self, bag=tuple(bag))
        return attrs.evolve(self, bag=self.bag + ((m, 1),))

    def take(self, k: int) -> Cluster:
        m, c = self.bag[k]
        bag = self.bag[:k] + (((m, c - 1),) if c > 1 else ()) + self.bag[k + 1:]
        return attrs.evolve(self, bag=bag)

    def purge(self, key: tuple) -> Cluster:
        return attrs.evolve(self, bag=tuple((m, c) for m, c in self.bag if visible(m) != key))


@functools.lru_cache(maxsize=1 << 16)
def visible(m: Message) -> tuple:
    """What a trace line shows of a message: the key sends and receives are matched by."""
    return (m.type, m.term, m.frm, m.to, m.n_entries, m.log_term if m.snapshot is None else 0,
            m.index if m.snapshot is None else 0, m.commit, m.reject, m.reject_hint)


def logged_key(msg: dict[str, Any]) -> tuple:
    return (msg["type"], msg["term"], int(msg["from"]), int(msg["to"]), msg["entries"],
            msg["logTerm"], msg["index"], msg["commit"], msg["reject"], msg["rejectHint"])


def _ids(conf: list[str]) -> frozenset[int]:
    return frozenset(int(x) for x in conf)


class EtcdAdapter:
    """etcd-raft traces against reference/variants/etcd.py."""

    name = "etcd"

    def __init__(self, campaign_guard: bool = True) -> None:
        self.campaign_guard = campaign_guard
        self.pos: dict[int, int] = {}

    # ------------------------------------------------------------------ reading
    def read(self, path: str) -> list[Event]:
        events = []
        booting: dict[int, str] = {}
        started: set[int] = set()
        start_node: dict[int, bool] = {}
        sent: set[tuple] = set()
        for n, ev in read_lines(path):
            if ev["name"] in UNSUPPORTED_EVENTS:
                raise RaftspecError(f"unsupported: {UNSUPPORTED_EVENTS[ev['name']]} at line {n}",
                                    path=path, line=n)
            node = int(ev["nid"])
            e = Event(path, n, node, ev)
            name = ev["name"]
            if name == "InitState":
                booting[node] = "bootstrap" if node not in started else "restart"
                if node not in started:
                    start_node[node] = ev["log"] == 0
                e.data = {**ev, "_boot": booting[node] + "-init"}
                started.add(node)
            elif node not in started:
                raise RaftspecError(f"node {node}'s first event is {name}, not InitState "
                                    "(the trace does not start at the beginning of its run)",
                                    path=path, line=n, field="event.name")
            elif node in booting and name in ("BecomeFollower", "ApplyConfChange"):
                e.data = {**ev, "_boot": booting[node]}
            else:
                booting.pop(node, None)
            if node in start_node:
                e.data["_start_node"] = start_node[node]
            if "msg" in ev and name in _MESSAGE_EVENTS:
                key = e.data["_key"] = logged_key(ev["msg"])
                if name.startswith("Send"):
                    sent.add(key)
                elif key not in sent and key[0] == "MsgSnap":
                    e.data["_unsupported"] = (
                        f"unsupported: a MsgSnap that no node of the trace sent (a snapshot "
                        f"injected by the application or test harness) at line {n}")
            events.append(e)
        if not events:
            raise RaftspecError("no etcd-raft event: no line is tagged \"trace\" (is this an "
                                "etcd-raft trace? see --format)", path=path)
        _mark_deliveries(events)
        return events

    # ------------------------------------------------------------------ search hooks
    def initial(self, events: Sequence[Event]) -> Iterable[Cluster]:
        """One candidate: every id named, each node empty until its bootstrap events set the
        logged state (the bootstrap log's term is ``BOOT_TERM``), nothing in flight."""
        ids: set[int] = set()
        for e in events:
            ids.add(e.node)
            if "_key" in e.data:
                ids.update(e.data["_key"][2:4])
        self.pos = {i: k for k, i in enumerate(sorted(ids))}
        return [Cluster(tuple(Server() for _ in self.pos))]

    def silent(self, candidate: Cluster) -> Iterable[tuple[Cluster, int]]:
        return ()

    def describe(self, candidate: Cluster) -> tuple[list[str], dict[str, Any]]:
        lines, js = [], {"servers": [], "in_flight": []}
        for i, k in self.pos.items():
            s = candidate.server(k)
            line = (f"n{i}: {s.role} term {s.term} vote {s.vote} commit {s.commit} "
                    f"log {s.last_index} {_terms(s)} conf {sorted(s.voters)}"
                    + (f"&{sorted(s.outgoing)}" if s.outgoing else ""))
            if s.role == etcd.LEADER:
                line += f" Progress.Match {dict(s.match)}"
            if s.role == etcd.CANDIDATE:
                line += f" votes +{sorted(s.granted)} -{sorted(s.rejected)}"
            if s.stepping is not None:
                line += f" stepping {describe_message(s.stepping)}"
            lines.append(line)
            js["servers"].append({"id": i, "role": s.role, "term": s.term, "vote": s.vote,
                                  "commit": s.commit, "last_index": s.last_index,
                                  "voters": sorted(s.voters), "outgoing": sorted(s.outgoing),
                                  "match": dict(s.match)})
        for m, c in candidate.bag:
            lines.append("in flight: " + describe_message(m) + (f" ×{c}" if c > 1 else ""))
            js["in_flight"].append({"message": describe_message(m), "count": c})
        return lines, js

    def attempts(self, event: Event, candidate: Cluster) -> Iterable[Attempt]:
        d = event.data
        if "_unsupported" in d:      # reached only when every earlier event was explained
            raise RaftspecError(d["_unsupported"], path=event.file, line=event.line)
        pos = self.pos[event.node]
        s = candidate.server(pos)
        if (d["role"] == etcd.PRE_CANDIDATE and s.role != etcd.PRE_CANDIDATE
                and "_boot" not in d):
            failed = etcd.campaign_allowed(s, event.node, self.campaign_guard)
            if failed:
                return [Attempt(f"becomePreCandidate(n{event.node}) (untraced)", failed)]
            candidate = candidate.update(pos, etcd.become_pre_candidate(s))
        handler = getattr(self, "_" + d["name"])
        out = []
        before = d["name"] in OBSERVED_BEFORE
        for action, failed, result, observed in handler(event, candidate, pos):
            if failed or result is None:
                out.append(Attempt(action, failed or ("not enabled",)))
                continue
            seen = observed if observed is not None else (
                candidate.server(pos) if before else result.server(pos))
            diff = observe(d, seen)
            if diff:
                out.append(Attempt(action, tuple(diff)))
                continue
            out.append(Attempt(action, (), result))
        return out

    # ------------------------------------------------------------------ one method per event
    # Each yields (action, failed conditions, next candidate, server to observe or None).

    def _InitState(self, event: Event, c: Cluster, pos: int):
        d, s = event.data, c.server(pos)
        if d["_boot"] == "bootstrap-init":
            yield "bootstrap", (), c.update(pos, _booted(s, d)), None
            return
        # newRaft traces InitState before loadState: HardState reads as zero, the log is the
        # durable one; BecomeFollower in the restart run shows the loaded HardState.
        failed = _conds([(f"lastIndex {d['log']} <= the node's {s.last_index} (only unsynced "
                          "entries lost)", d["log"] <= s.last_index),
                         (f"lastIndex {d['log']} >= the node's commit {s.commit}",
                          d["log"] >= min(s.commit, s.last_index))])
        if failed:
            yield f"restart(n{event.node})", failed, None, None
            return
        r = s.evolve(role=etcd.FOLLOWER, lead=0, log=s.log[: max(0, d["log"] - s.offset)],
                     offset=min(s.offset, d["log"]), match=(), granted=etcd.NO_IDS,
                     rejected=etcd.NO_IDS, stepping=None, restored=False, proposal=())
        yield f"restart(n{event.node})", (), c.update(pos, r), _unloaded(r)

    def _BecomeFollower(self, event: Event, c: Cluster, pos: int):
        d, s = event.data, c.server(pos)
        term = d["state"]["term"]
        if d.get("_boot") == "bootstrap":
            yield "bootstrap", (), c.update(pos, _booted(s, d)), None
            return
        if d.get("_boot") == "restart":
            yield from self._load_state(event, c, pos)
            return
        m = s.stepping
        lead = m.frm if m is not None and m.type in etcd.LEADER_MESSAGES and m.term == term \
            else 0
        name = f"becomeFollower(n{event.node}, term {term}, lead {lead})"
        if term < s.term:
            yield name, (f"the term {term} is not below the node's term {s.term}",), None, None
            return
        if term > s.term and not (m is not None and m.term == term):
            highest = max(x.term for x in c.servers)
            if term > highest:
                yield name, (f"a message of term {term} is being stepped (stepping: "
                             f"{describe_message(m) if m else 'none'}), or some node has "
                             f"term {term} (an untraced pre-vote answer); highest term "
                             f"{highest}",), None, None
                return
        yield name, (), c.update(pos, etcd.become_follower(s, term, lead)), None

    def _load_state(self, event: Event, c: Cluster, pos: int):
        """``loadState`` of the restart: the durable HardState, at most the one the node had
        (a term, vote or commit not yet persisted may be lost)."""
        s, st = c.server(pos), event.data["state"]
        term, vote, commit = st["term"], int(st["vote"]), st["commit"]
        failed = _conds([
            (f"HardState.Term {term} <= the node's term {s.term}", term <= s.term),
            (f"HardState.Vote {vote} is the node's vote {s.vote} of that term",
             term < s.term or vote in (s.vote, 0)),
            (f"HardState.Commit {commit} <= the node's commit {s.commit} and lastIndex",
             commit <= min(s.commit, s.last_index))])
        r = s.evolve(term=term, vote=vote, commit=commit, applied=min(s.applied, commit),
                     conf_applied=min(s.conf_applied, commit))
        yield f"restart(n{event.node}): loadState", failed, None if failed else c.update(pos, r), \
            None

    def _BecomeCandidate(self, event: Event, c: Cluster, pos: int):
        s = c.server(pos)
        failed = etcd.campaign_allowed(s, event.node, self.campaign_guard)
        yield (f"campaign(n{event.node})", failed,
               None if failed else c.update(pos, etcd.become_candidate(s, event.node)), None)

    def _BecomeLeader(self, event: Event, c: Cluster, pos: int):
        s = c.server(pos)
        failed = _conds([("is a StateCandidate", s.role == etcd.CANDIDATE),
                         (f"a quorum of {sorted(s.voters)}"
                          + (f" and of {sorted(s.outgoing)}" if s.outgoing else "")
                          + f" granted its vote (granted {sorted(s.granted)})",
                          etcd.vote_won(s))])
        yield (f"becomeLeader(n{event.node})", failed,
               None if failed else c.update(pos, etcd.become_leader(s, event.node)), None)

    def _Replicate(self, event: Event, c: Cluster, pos: int):
        s = c.server(pos)
        failed = _conds([("is a StateLeader", s.role == etcd.LEADER)])
        yield (f"appendEntry(n{event.node}, normal entry)", failed,
               None if failed else c.update(pos, etcd.propose(s, Entry(s.term))), None)

    def _ChangeConf(self, event: Event, c: Cluster, pos: int):
        s = c.server(pos)
        changes = tuple((ch["action"], int(ch["nid"]))
                        for ch in event.data["prop"]["cc"]["changes"])
        failed = _conds([("is a StateLeader", s.role == etcd.LEADER)])
        yield (f"appendEntry(n{event.node}, ConfChange {changes})", failed,
               None if failed else c.update(pos, etcd.propose(s, Entry(s.term, changes))), None)

    def _ApplyConfChange(self, event: Event, c: Cluster, pos: int):
        d, s = event.data, c.server(pos)
        newconf = _ids(d["prop"]["cc"].get("newconf", []))
        node = event.node
        boot = d.get("_boot")
        if boot == "bootstrap":
            b = _booted(s, d)
            yield ("bootstrap: switchToConfig", (),
                   c.update(pos, b.evolve(voters=newconf)), b)
            return
        if boot == "restart":
            seen = _unloaded(s)
            for out in {etcd.NO_IDS, s.outgoing}:
                yield ("restart: confchange.Restore", (),
                       c.update(pos, s.evolve(voters=newconf, outgoing=out)), seen)
            return
        m = s.stepping
        if m is not None and m.type == etcd.MSG_SNAP and not s.restored:
            r = etcd.restore(s, m.snapshot)
            name = f"restore(n{node}, snapshot {m.snapshot.index}/{m.snapshot.term})"
            if r is None:
                yield name, (f"the snapshot is beyond the commit {s.commit} and its last entry "
                             "is not in the log (raft.restore)",), None, None
                return
            outs = {m.snapshot.outgoing if m.snapshot.voters == newconf else etcd.NO_IDS}
            for out in outs:
                yield name, (), c.update(pos, etcd.switch_to_config(
                    r, node, newconf, out, etcd.NO_IDS)), r
            return
        options = etcd.apply_conf_change(s, node, newconf)
        if not options:
            found = etcd.next_conf_entry(s)
            why = ("a committed configuration entry not yet applied (commit "
                   f"{s.commit}, last applied config entry {s.conf_applied})" if found is None
                   else f"the entry {found[1].conf} at {found[0]} yields the voters {newconf}")
            yield f"applyConfChange(n{node}, {sorted(newconf)})", (why,), None, None
        for how, r in options:
            yield f"applyConfChange(n{node}, {how})", (), c.update(pos, r), None

    def _Commit(self, event: Event, c: Cluster, pos: int):
        s = c.server(pos)
        failed = _conds([("is a StateLeader", s.role == etcd.LEADER)])
        r = etcd.maybe_commit(s) if not failed else None
        yield (f"maybeCommit(n{event.node}) (quorum Progress.Match {dict(s.match)}, "
               f"voters {sorted(s.voters)}{'&' + str(sorted(s.outgoing)) if s.outgoing else ''})",
               failed, None if r is None else c.update(pos, r), None)

    def _Ready(self, event: Event, c: Cluster, pos: int):
        yield "Ready", (), c.update(pos, etcd.ready(c.server(pos))), None

    # sends
    def _SendAppendEntriesRequest(self, event: Event, c: Cluster, pos: int):
        d, s, i = event.data, c.server(pos), event.node
        lm = d["msg"]
        to = int(lm["to"])
        conds = [("is a StateLeader", s.role == etcd.LEADER),
                 (f"msg.term {lm['term']} is its term {s.term}", lm["term"] == s.term),
                 (f"msg.from {lm['from']} is the node", int(lm["from"]) == i)]
        if lm["type"] == etcd.MSG_APP:
            prev, count = lm["index"], lm["entries"]
            name = f"maybeSendAppend(n{i}→n{to}, prev {prev}/{lm['logTerm']}, {count} entries)"
            m = etcd.app_message(s, i, to, prev, count) if s.role == etcd.LEADER else None
            conds += [(f"the leader's log holds entries {prev + 1}..{prev + count} and index "
                       f"{prev} (lastIndex {s.last_index})", m is not None)]
            if m is not None:
                conds += [(f"logTerm {lm['logTerm']} is the term {m.log_term} of index {prev}",
                           m.log_term == lm["logTerm"]),
                          (f"commit {lm['commit']} is the leader's commit {s.commit}",
                           m.commit == lm["commit"])]
        elif lm["type"] == etcd.MSG_HEARTBEAT:
            name = f"sendHeartbeat(n{i}→n{to})"
            want = etcd.heartbeat_commit(s, to)
            m = Message(etcd.MSG_HEARTBEAT, s.term, i, to, commit=want)
            conds += [(f"commit {lm['commit']} is min(Progress[{to}].Match "
                       f"{s.match_of(to)}, committed {s.commit}) = {want}", lm["commit"] == want)]
        else:
            index = lm["entries"]
            name = f"maybeSendSnapshot(n{i}→n{to}, index {index})"
            term = s.term_at(index)
            conds += [(f"snapshot index {index} <= commit {s.commit} and in the log",
                       index <= s.commit and term is not None)]
            m = Message(etcd.MSG_SNAP, s.term, i, to, snapshot=Snapshot(
                index, term or 0, s.voters, s.outgoing))
        yield self._sent(event, c, name, conds, m, c)

    def _SendAppendEntriesResponse(self, event: Event, c: Cluster, pos: int):
        d, s, i = event.data, c.server(pos), event.node
        lm = d["msg"]
        to = int(lm["to"])
        if to == i:
            for leave in (False, True):
                name = ("appendEntry: raftLog.append"
                        + (" + an empty ConfChangeV2 (leave joint)" if leave else ""))
                conds = [("is a StateLeader", s.role == etcd.LEADER)]
                if _conds(conds):
                    yield name, _conds(conds), None, None
                    continue
                r = etcd.append_entry(s, leave)
                m = Message(etcd.MSG_APP_RESP, s.term, i, i, index=r.last_index)
                yield self._sent(event, c.update(pos, r), name, [], m, c)
            return
        m = s.stepping
        if m is None or m.frm != to or m.type not in etcd.LEADER_MESSAGES:
            yield ("respond to a MsgApp/MsgHeartbeat/MsgSnap",
                   (f"the node is stepping a MsgApp, MsgHeartbeat or MsgSnap from n{to} "
                    f"(stepping: {describe_message(m) if m else 'none'})",), None, None)
            return
        if m.term < s.term and m.type != etcd.MSG_SNAP:
            r, resp, name = s, etcd.stale_response(s, i, m), "answer a stale MsgApp/MsgHeartbeat"
        else:
            conds = _conds([(f"the message's term {m.term} is the node's term {s.term}",
                             m.term == s.term),
                            ("is a StateFollower", s.role == etcd.FOLLOWER)])
            handler = {etcd.MSG_APP: etcd.handle_append_entries,
                       etcd.MSG_HEARTBEAT: etcd.handle_heartbeat,
                       etcd.MSG_SNAP: etcd.handle_snapshot}[m.type]
            name = f"{handler.__name__}(n{i}, {describe_message(m)})"
            if conds:
                yield name, conds, None, None
                return
            r, resp = handler(s, i, m)
            r = r.evolve(lead=m.frm)
        r = r.evolve(stepping=None, restored=False)
        yield self._sent(event, c.update(pos, r), name, [], resp, c)

    def _SendRequestVoteRequest(self, event: Event, c: Cluster, pos: int):
        s, i = c.server(pos), event.node
        to = int(event.data["msg"]["to"])
        m = Message(etcd.MSG_VOTE, s.term, i, to, index=s.last_index, log_term=s.last_term)
        conds = [("is a StateCandidate", s.role == etcd.CANDIDATE),
                 (f"n{to} is a voter of {sorted(s.members)}", to in s.members)]
        yield self._sent(event, c, f"campaign: MsgVote n{i}→n{to}", conds, m, c)

    def _SendRequestVoteResponse(self, event: Event, c: Cluster, pos: int):
        s, i = c.server(pos), event.node
        to = int(event.data["msg"]["to"])
        if to == i:
            m = Message(etcd.MSG_VOTE_RESP, s.term, i, i)
            yield self._sent(event, c, "campaign: vote for itself",
                             [("is a StateCandidate", s.role == etcd.CANDIDATE)], m, c)
            return
        m = s.stepping
        if m is None or m.type != etcd.MSG_VOTE or m.frm != to or m.term != s.term:
            yield ("Step: MsgVote", (f"the node is stepping a MsgVote of its term {s.term} from "
                                     f"n{to} (stepping: "
                                     f"{describe_message(m) if m else 'none'})",), None, None)
            return
        for resp, granted in etcd.vote_responses(s, i, m):
            r = s.evolve(stepping=None, vote=m.frm if granted else s.vote)
            yield self._sent(event, c.update(pos, r),
                             f"Step: MsgVote from n{to} {'granted' if granted else 'rejected'}",
                             [], resp, c)

    def _sent(self, event: Event, c: Cluster, name: str, conds: list[tuple[str, bool]],
              m: Message, before: Cluster):
        failed = _conds(conds)
        if failed:
            return name, failed, None, None
        if visible(m) != event.data["_key"]:
            return name, (f"etcd sends {describe_message(m)}",), None, None
        if event.deliveries:
            c = c.send(m)
        return name, (), c, None

    # receives
    def _receive(self, event: Event, c: Cluster, pos: int):
        key = event.data["_key"]
        if key[3] != event.node:
            yield ("Step (receive)", (f"msg.to {key[3]} is the receiving node {event.node}",),
                   None, None)
            return
        found = [k for k, (m, _) in enumerate(c.bag) if visible(m) == key]
        if not found:
            yield ("Step (receive)", ("the message is in flight (sent, not yet received): no "
                                      "message with this content was sent",), None, None)
            return
        seen_msgs = set()
        for k in found:
            m = c.bag[k][0]
            if m in seen_msgs:
                continue
            seen_msgs.add(m)
            nxt = c.take(k)
            if event.data.get("_purge"):
                nxt = nxt.purge(key)
            s = nxt.server(pos)
            if m.term == s.term:
                if m.type == etcd.MSG_APP_RESP and s.role == etcd.LEADER and not m.reject:
                    s = etcd.maybe_update(s, m.frm, m.index)
                elif m.type == etcd.MSG_VOTE_RESP and s.role == etcd.CANDIDATE:
                    s = etcd.record_vote(s, m)
            s = s.evolve(stepping=m, restored=False)
            yield f"Step({describe_message(m)})", (), nxt.update(pos, s), None

    _ReceiveAppendEntriesRequest = _receive
    _ReceiveAppendEntriesResponse = _receive
    _ReceiveRequestVoteRequest = _receive
    _ReceiveRequestVoteResponse = _receive


_MESSAGE_EVENTS = frozenset(n for n in (
    "SendAppendEntriesRequest", "ReceiveAppendEntriesRequest", "SendAppendEntriesResponse",
    "ReceiveAppendEntriesResponse", "SendRequestVoteRequest", "ReceiveRequestVoteRequest",
    "SendRequestVoteResponse", "ReceiveRequestVoteResponse"))


def _mark_deliveries(events: list[Event]) -> None:
    """A send whose content no later receive has is lost at once (``deliveries`` 0); the last
    receive of a content drops the copies still in flight (``_purge``)."""
    later: Counter = Counter()
    for e in reversed(events):
        key = e.data.get("_key")
        if key is None:
            continue
        if e.data["name"].startswith("Receive"):
            if later[key] == 0:
                e.data["_purge"] = True
            later[key] += 1
        else:
            e.deliveries = 1 if later[key] else 0


def _booted(s: Server, d: dict[str, Any]) -> Server:
    """The bootstrap state a node logs: its HardState, and a log that is either a storage
    snapshot (a compacted prefix, applied) or, when InitState had an empty log, StartNode's
    configuration entries (one per initial peer, committed, not yet applied)."""
    st, log = d["state"], d["log"]
    s = s.evolve(term=st["term"], vote=int(st["vote"]), commit=st["commit"], role=d["role"],
                 voters=_ids(d["conf"][0]), outgoing=_ids(d["conf"][1]))
    if d["_start_node"]:
        entries = (Entry(BOOT_TERM, etcd.UNKNOWN_CHANGE),) * log
        return s.evolve(offset=0, offset_term=0, log=entries, applied=0, conf_applied=0)
    return s.evolve(offset=log, offset_term=BOOT_TERM if log else 0, log=(), applied=log,
                    conf_applied=log)


def _unloaded(s: Server) -> Server:
    """How a restarting node looks before ``loadState``: zero HardState, no configuration."""
    return s.evolve(term=0, vote=0, commit=0, voters=etcd.NO_IDS, outgoing=etcd.NO_IDS)


def _conds(conds: list[tuple[str, bool]]) -> tuple[str, ...]:
    return tuple(text for text, ok in conds if not ok)


def observe(d: dict[str, Any], s: Server) -> list[str]:
    """The logged fields that differ from the etcd variant's node."""
    st = d["state"]
    pairs = (("HardState.Term", s.term, st["term"]), ("HardState.Vote", s.vote, int(st["vote"])),
             ("HardState.Commit", s.commit, st["commit"]), ("role", s.role, d["role"]),
             ("raftLog.lastIndex", s.last_index, d["log"]),
             ("Voters[0]", sorted(s.voters), sorted(_ids(d["conf"][0]))),
             ("Voters[1]", sorted(s.outgoing), sorted(_ids(d["conf"][1]))))
    return [f"{name}: etcd variant {ref}, trace {got}" for name, ref, got in pairs if ref != got]


def describe_message(m: Message) -> str:
    """e.g. ``MsgApp 1→2 t2 prev 5/1 +3 commit 5`` or ``MsgAppResp 2→1 t2 rejected 7 hint 5/1``."""
    text = f"{m.type} {m.frm}→{m.to} t{m.term}"
    if m.type == etcd.MSG_APP:
        text += f" prev {m.index}/{m.log_term} +{len(m.entries)} commit {m.commit}"
    elif m.type == etcd.MSG_HEARTBEAT:
        text += f" commit {m.commit}"
    elif m.type == etcd.MSG_SNAP and m.snapshot is not None:
        text += f" snapshot {m.snapshot.index}/{m.snapshot.term}"
    elif m.type == etcd.MSG_APP_RESP:
        text += (f" rejected {m.index} rejectHint {m.reject_hint}/{m.log_term}" if m.reject
                 else f" index {m.index}")
    elif m.type == etcd.MSG_VOTE:
        text += f" last {m.index}/{m.log_term}"
    elif m.type == etcd.MSG_VOTE_RESP:
        text += " rejected" if m.reject else " granted"
    return text


def _terms(s: Server) -> str:
    terms = [e.term for e in s.log]
    head = f"[{s.offset}/{s.offset_term}|" if s.offset else "["
    if len(terms) > 10:
        return head + f"…{len(terms) - 10} more, " + ",".join(map(str, terms[-10:])) + "]"
    return head + ",".join(map(str, terms)) + "]"
