"""The adapter for our own cluster's traces (traces/schema.py, docs/trace-schema.md).

Event → reference steps (reference/variants/figure2.py), for node i:

- first ``init`` of a node: none (Figure 2's initial state); a later ``init``: Restart(i)
- ``timeout``: Timeout(i) (term + 1, candidate, vote for self)
- ``send`` vote / append: RequestVote(i, j) / AppendEntries(i, j) from the logged prevLogIndex
  with the logged number of entries
- ``send`` vote_resp / append_resp: none; it must equal the reply that the handler of the
  node's preceding ``recv`` computed
- ``recv``: the message's handler (Receive), which must not be UpdateTerm
- ``update_term``: UpdateTerm(i, m) for an in-flight m to i of that term
- ``become_leader`` / ``client_request`` / ``advance_commit``: BecomeLeader / ClientRequest /
  AdvanceCommitIndex(N = the logged commit_index)
- ``step_down`` (check_quorum): StepDown(i); ``snapshot``: none (local compaction)

A message is between the trace's nodes (each file's node, the members of each ``init``), from
the node that logs its ``send``, to the node that logs its ``recv``; else that event is
unexplained.

After each event the node's logged state (term, role, voted_for, log_len, last_log_term,
commit_index) must equal the reference server's. A send that no receive names is dropped at
once (DropMessage); one received k times is duplicated k - 1 times (DuplicateMessage).

Servers: the reference's are 1..N, so the trace's N node ids, whatever they are, are numbered
1..N in increasing order (node id → server where the trace meets the reference: events,
messages, voted_for); the verdict's ``sK`` is server K, listed with its node id where the two
differ.

Entry values: each distinct command hash (``hash`` of ``client_request``, ``entry_hashes`` of
``append``) becomes one reference value, so two entries with the same index and term but
different commands break Log Matching in the reference too; traces without hashes leave values
unobserved (every entry is value 1). What the trace does not carry is left unobserved: the
leader's nextIndex (taken from each AppendEntries sent), and the fast-backtracking hints of
failed AppendEntries responses (not part of Figure 2; ignored).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from raftspec.protocol import Protocol
from raftspec.protocol.errors import RaftspecError
from raftspec.reference.config import Config
from raftspec.reference.protocol import protocol_for
from raftspec.reference.state import (
    APPEND_ENTRIES_REQUEST,
    APPEND_ENTRIES_RESPONSE,
    NIL,
    REQUEST_VOTE_REQUEST,
    REQUEST_VOTE_RESPONSE,
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
    Role,
    Server,
    State,
    last_term,
)
from raftspec.reference.variants import figure2
from raftspec.traces.schema import TraceSchemaError, check_event
from raftspec.traces.validate.adapter import Attempt, Event
from raftspec.traces.validate.files import open_text
from raftspec.traces.validate.render import describe_message, state_json, state_lines

Candidate = tuple[State, tuple[Message | None, ...]]
"""A reference state and, per node, the reply its last handler produced that the trace has not
shown yet (the ``send`` of a reply comes right after the ``recv`` that caused it)."""

ROLES = {"follower": Role.FOLLOWER, "candidate": Role.CANDIDATE, "leader": Role.LEADER}
UNSUPPORTED_MESSAGES = ("snap", "snap_resp")


class ClusterAdapter:
    """raftspec node traces against the Figure 2 reference."""

    name = "cluster"

    def __init__(self, config: Config | None = None, protocol: Protocol | None = None) -> None:
        self.config = config or Config(servers=0, values=1, max_term=0, max_log_length=0,
                                       max_messages=0, variant="figure2")
        self.protocol = protocol or protocol_for(self.config.variant, self.config.mutants)
        self._first_init: set[tuple[str, int]] = set()
        self._values: dict[str | None, int] = {None: 1}
        self.nodes: tuple[int, ...] = ()           # server k is node nodes[k - 1]
        self._server: dict[int, int] = {}          # node id -> server

    def value_of(self, command_hash: str | None) -> int:
        """The reference value standing for a command hash (1 when the trace has none)."""
        return self._values.setdefault(command_hash, len(self._values) + 1)

    def message(self, msg: dict[str, Any]) -> Message:
        return message(msg, self._server, self.value_of)

    # ------------------------------------------------------------------ reading
    def read(self, path: str) -> list[Event]:
        try:
            with open_text(path) as f:
                text = f.read()
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            from raftspec.traces.etcd.read import bad_gzip  # (etcd.read imports this package)

            raise bad_gzip(path, err) from None
        except (OSError, UnicodeDecodeError) as err:
            raise RaftspecError(f"cannot read trace file: {err}", path=path) from None
        lines = text.split("\n")
        torn = lines[-1] != ""          # a write cut short (SIGKILL) lacks its newline
        if not torn:
            lines.pop()
        events: list[Event] = []
        last_seq = 0
        for n, line in enumerate(lines, 1):
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):   # RecursionError: nested too deep
                if torn and n == len(lines):
                    break
                raise RaftspecError("not valid JSON", path=path, line=n) from None
            try:
                check_event(obj)
            except TraceSchemaError as err:
                field, _, why = str(err).partition(": ")
                raise RaftspecError(why, path=path, line=n, field=field) from None
            if obj["seq"] <= last_seq:
                raise RaftspecError(f"seq {obj['seq']} does not follow {last_seq}", path=path,
                                    line=n, field="seq")
            last_seq = obj["seq"]
            events.append(self._event(obj, path, n))
        link_update_terms(events)
        return events

    def _event(self, obj: dict[str, Any], path: str, n: int) -> Event:
        ev = Event(path, n, obj["node"], obj)
        kind = obj["event"]
        if kind in ("send", "recv"):
            msg = obj["msg"]
            if msg["type"] in UNSUPPORTED_MESSAGES:
                raise RaftspecError("InstallSnapshot is not part of the Figure 2 reference; "
                                    "record with a larger --snapshot-threshold",
                                    path=path, line=n, field="msg.type")
            if msg["type"] == "append" and len(msg["entries"]) != msg["n_entries"]:
                raise RaftspecError("n_entries differs from the length of entries",
                                    path=path, line=n, field="msg.n_entries")
            if kind == "send":
                ev.send_id = msg["id"]
            else:
                ev.recv_id = msg["id"]
        elif kind == "client_request" and obj.get("kind") == "config":
            raise RaftspecError("a membership change: not part of the Figure 2 reference, whose "
                                "servers are fixed", path=path, line=n, field="kind")
        elif kind == "step_down" and obj["reason"] != "check_quorum":
            raise RaftspecError(f"step_down reason {obj['reason']!r}: membership changes are "
                                "not part of the Figure 2 reference", path=path, line=n,
                                field="reason")
        elif obj["snapshot_index"] and kind == "init":
            raise RaftspecError("a node recovered from a snapshot: not part of the Figure 2 "
                                "reference", path=path, line=n, field="snapshot_index")
        return ev

    def missing_files(self, files: Sequence[Sequence[Event]]) -> None:
        """Refuse input that is not a whole run: two files of one node, or a receive whose
        send belongs to a node with no file here (its send cannot be shown, so the trace could
        only be called invalid for what was left out)."""
        owner: dict[int, str] = {}
        for events in files:
            node, path = events[0].node, events[0].file
            if node in owner:
                raise RaftspecError(f"incomplete trace: node {node}'s file is given twice "
                                    f"({owner[node]} and {path})", path=path)
            owner[node] = path
        sent = {e.send_id for events in files for e in events if e.send_id is not None}
        for events in files:
            for e in events:
                if e.recv_id is not None and e.recv_id not in sent:
                    sender = e.data["msg"].get("from")
                    if sender not in owner:
                        raise RaftspecError(
                            f"incomplete trace: node {sender}'s file is missing (line {e.line} "
                            f"receives a message sent by node {sender})", path=e.file)

    # ------------------------------------------------------------------ search hooks
    def initial(self, events: Sequence[Event]) -> Iterable[Candidate]:
        """The servers are the trace's nodes (each file's node and the members each ``init``
        names), numbered 1..N: a quorum is a majority of exactly those, whatever their ids."""
        ids = {e.node for e in events}
        for e in events:
            if e.data["event"] == "init":
                ids.update(map(int, e.data["members"]))
        self.nodes = tuple(sorted(ids))
        self._server = {node: k for k, node in enumerate(self.nodes, 1)}
        n = len(self.nodes)
        self._first_init = set()
        seen: set[int] = set()
        for e in events:
            if e.data["event"] == "init" and e.node not in seen:
                self._first_init.add((e.file, e.line))
            seen.add(e.node)
        return [(figure2.initial_state(n), (None,) * n)]

    def silent(self, candidate: Candidate) -> Iterable[tuple[Candidate, int]]:
        return ()   # our nodes log every protocol step; loss and duplication: see deliveries

    def describe(self, candidate: Candidate) -> tuple[list[str], dict[str, Any]]:
        state, pending = candidate
        lines = state_lines(state)
        if self.nodes != tuple(range(1, len(self.nodes) + 1)):
            lines.insert(0, "servers: " + ", ".join(f"s{k} is node {node}"
                                                    for k, node in enumerate(self.nodes, 1)))
        lines += [f"reply not yet logged by s{k}: {describe_message(m)}"
                  for k, m in enumerate(pending, 1) if m is not None]
        return lines, {"nodes": list(self.nodes), **state_json(state)}

    def attempts(self, event: Event, candidate: Candidate) -> Iterable[Attempt]:
        state, pending = candidate
        d = event.data
        i = self._server[event.node]
        if pending[i - 1] is not None and not (d["event"] == "send"
                                               and d["msg"]["type"].endswith("_resp")):
            pending = pending[: i - 1] + (None,) + pending[i:]   # the node sent no reply
        kind = d["event"]
        if "msg" in d and (misaddressed := self._misaddressed(event)):
            return [Attempt(f"{kind} of {d['msg']['type']}", misaddressed)]
        handler = getattr(self, "_" + kind)
        out = []
        for attempt in handler(event, state, pending, i):
            if attempt.result is None:
                out.append(attempt)
                continue
            nxt_state, nxt_pending = attempt.result
            failed = attempt.failed + tuple(_observe(d, nxt_state.server(i), self.nodes))
            if failed:
                out.append(Attempt(attempt.action, failed, None, attempt.steps))
                continue
            if event.send_id is not None:
                nxt_state = self._deliver(nxt_state, event)
            out.append(Attempt(attempt.action, (), (nxt_state, nxt_pending), attempt.steps))
        return out

    def _misaddressed(self, event: Event) -> tuple[str, ...]:
        """Why a sent or received message is not between this trace's nodes, or not sent by
        the node that logs the send / addressed to the node that logs the receive."""
        msg, node = event.data["msg"], event.node
        own = "from" if event.data["event"] == "send" else "to"
        failed = [f"msg.{end} {msg[end]} is not a node of this trace"
                  for end in ("from", "to") if msg[end] not in self._server]
        if msg[own] != node:
            failed.append(f"msg.{own} {msg[own]} is not the node {node}")
        return tuple(failed)

    def _deliver(self, state: State, event: Event) -> State:
        """Explain the network's fate of a sent message with the reference's own actions."""
        m = self.message(event.data["msg"])
        if event.deliveries == 0 and self.config.drop:
            return state.discard(m)       # DropMessage (a message still in flight at the end
        if self.config.duplicate:         # would also do; dropping keeps the bag small)
            for _ in range(event.deliveries - 1):
                state = state.send(m)     # DuplicateMessage
        return state

    def act(self, action: str, state: State, *args: Any) -> State | None:
        """The protocol's action of that name (a mutant's copy, if the model plants one)."""
        return self.protocol.row(action).apply(state, *args)

    # ------------------------------------------------------------------ one method per event
    def _init(self, event: Event, state: State, pending, i: int) -> list[Attempt]:
        if (event.file, event.line) in self._first_init:
            return [Attempt("Init", (), (state, pending), 0)]
        if not self.config.restart:
            return [Attempt(f"Restart(s{i})", ("restarts are disabled by the model",))]
        return [Attempt(f"Restart(s{i})", (), (self.act("Restart", state, i), pending))]

    def _timeout(self, event: Event, state: State, pending, i: int) -> list[Attempt]:
        return [_step(f"Timeout(s{i})", self.act("Timeout", state, i), pending,
                      [("not a leader", state.server(i).role != Role.LEADER)])]

    def _become_leader(self, event: Event, state: State, pending, i: int) -> list[Attempt]:
        s = state.server(i)
        return [_step(f"BecomeLeader(s{i})", self.act("BecomeLeader", state, i), pending, [
            ("is a candidate", s.role == Role.CANDIDATE),
            (f"votes from a majority (has {sorted(s.votes_granted)})",
             2 * len(s.votes_granted) > len(state.servers))])]

    def _client_request(self, event: Event, state: State, pending, i: int) -> list[Attempt]:
        s = state.server(i)
        index = event.data["index"]
        value = self.value_of(event.data.get("hash"))
        return [_step(f"ClientRequest(s{i})", self.act("ClientRequest", state, i, value), pending, [
            ("is a leader", s.role == Role.LEADER),
            (f"index {index} is the next log index {len(s.log) + 1}", index == len(s.log) + 1)])]

    def _advance_commit(self, event: Event, state: State, pending, i: int) -> list[Attempt]:
        s = state.server(i)
        n = event.data["commit_index"]
        agree = 1 + sum(1 for k, m in enumerate(s.match_index, 1) if k != i and m >= n)
        return [_step(f"AdvanceCommitIndex(s{i}, N={n})",
                      self.act("AdvanceCommitIndex", state, i, n), pending, [
            ("is a leader", s.role == Role.LEADER),
            (f"N={n} > commitIndex {s.commit_index}", n > s.commit_index),
            (f"N={n} <= log length {len(s.log)}", n <= len(s.log)),
            (f"log[N].term is the current term {s.current_term}",
             n <= len(s.log) and n > 0 and s.log[n - 1].term == s.current_term),
            (f"a majority has matchIndex >= N (matchIndex {list(s.match_index)})",
             2 * agree > len(state.servers))])]

    def _step_down(self, event: Event, state: State, pending, i: int) -> list[Attempt]:
        return [_step(f"StepDown(s{i})", self.act("StepDown", state, i), pending,
                      [("is a leader", state.server(i).role == Role.LEADER)])]

    def _snapshot(self, event: Event, state: State, pending, i: int) -> list[Attempt]:
        return [Attempt("(local compaction)", (), (state, pending), 0)]

    def _update_term(self, event: Event, state: State, pending, i: int) -> list[Attempt]:
        term = event.data["term"]
        s = state.server(i)
        found = [m for m, _ in state.messages if m.mdest == i and m.mterm == term]
        if not found:
            return [Attempt(f"UpdateTerm(s{i}, term {term})",
                            (f"a message to s{i} of term {term} is in flight",
                             *_fail(f"term {term} > currentTerm {s.current_term}",
                                    term > s.current_term)))]
        # Every such message leads to the same state: one attempt suffices.
        return [_step(f"UpdateTerm(s{i}, {describe_message(found[0])})",
                      self.act("UpdateTerm", state, found[0]), pending,
                      [(f"term {term} > currentTerm {s.current_term}", term > s.current_term)])]

    def _recv(self, event: Event, state: State, pending, i: int) -> list[Attempt]:
        m = self.message(event.data["msg"])
        s = state.server(i)
        name = f"Receive({describe_message(m)})"
        in_flight = any(k == m for k, _ in state.messages)
        conds = [("the message is in flight (sent, not yet received or lost)", in_flight),
                 (f"its term {m.mterm} <= currentTerm {s.current_term} (a higher term is logged "
                  "as update_term first)", m.mterm <= s.current_term)]
        failed = tuple(text for text, ok in conds if not ok)
        if failed:
            return [Attempt(name, failed)]
        received = self.protocol.receive(state, m)
        if received is None:
            return [Attempt(name, (f"no case of the handler applies to s{i} as "
                                   f"{Role.NAMES[s.role]}",))]
        action, nxt = received
        if m.mtype in (REQUEST_VOTE_REQUEST, APPEND_ENTRIES_REQUEST):
            before = dict(state.messages)
            reply = next(r for r, c in nxt.messages if c > before.get(r, 0))
            nxt = nxt.discard(reply)
            pending = pending[: i - 1] + (reply,) + pending[i:]
        return [Attempt(f"{action}({describe_message(m)})", (), (nxt, pending))]

    def _send(self, event: Event, state: State, pending, i: int) -> list[Attempt]:
        m = self.message(event.data["msg"])
        s = state.server(i)
        if m.mtype in (REQUEST_VOTE_RESPONSE, APPEND_ENTRIES_RESPONSE):
            expected = pending[i - 1]
            name = f"reply of the preceding Receive: {describe_message(m)}"
            if expected != m:
                why = ("no request was just handled" if expected is None else
                       f"the reference's reply is {describe_message(expected)}")
                return [Attempt(name, (why,))]
            pending = pending[: i - 1] + (None,) + pending[i:]
            return [Attempt(name, (), (state.send(m), pending), 0)]
        j = m.mdest
        if m.mtype == REQUEST_VOTE_REQUEST:
            nxt = self.act("RequestVote", state, i, j)
            action = f"RequestVote(s{i}, s{j})"
            conds = [("is a candidate", s.role == Role.CANDIDATE), ("to another server", i != j),
                     (f"s{j} has not answered yet", j not in s.votes_responded)]
        else:
            prev, count = m.mprev_log_index, len(m.mentries)
            nxt = self.act("AppendEntries", state, i, j, prev + 1, count)
            action = f"AppendEntries(s{i}, s{j}, prev={prev}, {count} entries)"
            conds = [("is a leader", s.role == Role.LEADER), ("to another server", i != j),
                     (f"prevLogIndex + entries <= log length {len(s.log)}",
                      prev + count <= len(s.log))]
        attempt = _step(action, nxt, pending, conds)
        if attempt.result is not None:
            sent = next(r for r, c in nxt.messages if c > dict(state.messages).get(r, 0))
            if sent != m:
                return [Attempt(action, (f"the reference sends {describe_message(sent)}",))]
        return [attempt]


def link_update_terms(events: list[Event]) -> None:
    """An update_term is the first half of the receive logged right after it: it must also
    come after that message's send in the merge."""
    for e, nxt in zip(events, events[1:], strict=False):
        if e.data["event"] == "update_term" and nxt.recv_id is not None:
            e.after = nxt.recv_id


def _fail(text: str, ok: bool) -> tuple[str, ...]:
    return () if ok else (text,)


def _step(action: str, nxt: State | None, pending, conds: list[tuple[str, bool]]) -> Attempt:
    failed = tuple(text for text, ok in conds if not ok)
    if nxt is None and not failed:
        failed = ("not enabled",)
    if failed:
        return Attempt(action, failed)
    return Attempt(action, (), (nxt, pending))


def _observe(d: dict[str, Any], s: Server, nodes: Sequence[int]) -> list[str]:
    """The logged state fields that differ from the reference server's (server k is node
    ``nodes[k - 1]``)."""
    voted = None if s.voted_for == NIL else nodes[s.voted_for - 1]
    pairs = (
        ("term", s.current_term, d["term"]),
        ("role", Role.NAMES[s.role].lower(), d["role"]),
        ("voted_for", voted, d["voted_for"]),
        ("log_len", len(s.log), d["log_len"]),
        ("last_log_term", last_term(s.log), d["last_log_term"]),
        ("commit_index", s.commit_index, d["commit_index"]),
    )
    return [f"{name}: reference {ref}, trace {got}" for name, ref, got in pairs if ref != got]


def message(msg: dict[str, Any], server: Mapping[int, int],
            value_of: Callable[[str | None], int] = lambda h: 1) -> Message:
    """A trace message as the reference's message, between the servers ``server`` gives for
    its node ids; entry values from ``value_of`` applied to the entries' command hashes (None
    where the trace has none)."""
    t, src, dst = msg["type"], server[msg["from"]], server[msg["to"]]
    if t == "vote":
        return RequestVoteRequest(REQUEST_VOTE_REQUEST, msg["term"], msg["last_log_term"],
                                  msg["last_log_index"], src, dst)
    if t == "vote_resp":
        return RequestVoteResponse(REQUEST_VOTE_RESPONSE, msg["term"], msg["granted"], src, dst)
    if t == "append":
        hashes = msg.get("entry_hashes") or [None] * len(msg["entries"])
        entries = tuple(Entry(term, value_of(h)) for term, h in zip(msg["entries"], hashes,
                                                                     strict=True))
        return AppendEntriesRequest(APPEND_ENTRIES_REQUEST, msg["term"], msg["prev_index"],
                                    msg["prev_term"], entries, msg["commit"], src, dst)
    return AppendEntriesResponse(APPEND_ENTRIES_RESPONSE, msg["term"], msg["success"],
                                 msg["match_index"] if msg["success"] else 0, src, dst)
