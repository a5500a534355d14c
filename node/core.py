"""The Raft protocol core: a deterministic state machine with no I/O and no clocks.

Driven like etcd-raft: the event loop feeds it messages (``step``), ticks (``tick``) and client
commands (``propose``), then collects a ``Ready`` — what to persist, which messages to send, which
entries to apply — persists it (fsync) *before* sending, applies committed entries in order, and
only then calls ``advance(rd)``. Until ``advance``, nothing in that Ready counts as stable or
applied: if persisting fails, the next ``ready()`` asks for the same entries and hard state again,
and a leader never counts its own unpersisted entries towards a commit majority.
Randomness (election timeouts) comes from an injected ``random.Random``.

Paper references: Figure 2 (rules for all servers), §5.2 elections, §5.3 replication with the
fast-backtracking optimisation, §5.4.2 commit only current-term entries by counting, §6 / the
dissertation §4 one-server membership change, §7 snapshots.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from raftspec.node.messages import (
    APPEND,
    APPEND_RESP,
    SNAP,
    SNAP_RESP,
    VOTE,
    VOTE_RESP,
    Entry,
    Message,
    Snapshot,
)

MAX_ENTRIES_PER_APPEND = 1024
MAX_APPEND_BYTES = 48_000
SNAP_CHUNK = 30_000


class Role(StrEnum):
    FOLLOWER = "follower"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(slots=True)
class Options:
    """Timing in ticks (the loop decides how long a tick is) and protocol switches."""

    election_ticks: int = 15          # randomized in [election_ticks, 2 * election_ticks)
    heartbeat_ticks: int = 3
    check_quorum: bool = True         # leader steps down without a majority for an election time
    trace: bool = False               # record events (see traces/schema.py)


@dataclass(slots=True)
class Ready:
    """What the loop must do now, in this order: persist, send, apply (etcd-raft ``Ready``)."""

    snapshot: Snapshot | None = None          # received via InstallSnapshot: persist, restore
    append_from: int = 0                      # first index rewritten (log truncated before it)
    entries: list[Entry] = field(default_factory=list)
    hard_state: tuple[int, int | None] | None = None    # (current_term, voted_for) if changed
    messages: list[Message] = field(default_factory=list)
    committed: list[tuple[int, Entry]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.snapshot or self.entries or self.hard_state or self.messages
                    or self.committed or self.events)


class RaftCore:
    """One server's Raft state and the rules of Figure 2. Mutable, but free of I/O.

    ``check_snapshot`` (the state machine's) is called with a received snapshot's bytes
    before it is installed; what it raises escapes ``step``: that snapshot is dropped whole.
    """

    def __init__(self, node_id: int, members: dict[int, str], rng: random.Random,
                 options: Options | None = None, *, term: int = 0, voted_for: int | None = None,
                 snapshot: Snapshot | None = None, entries: list[Entry] | None = None,
                 check_snapshot: Callable[[bytes], object] | None = None) -> None:
        self.id = node_id
        self.check_snapshot = check_snapshot
        self.opts = options or Options()
        self.rng = rng
        self.term = term
        self.voted_for = voted_for
        self.role = Role.FOLLOWER
        self.leader_id: int | None = None
        self.snapshot = snapshot
        self.offset = snapshot.index if snapshot else 0          # log[0] has index offset + 1
        self.offset_term = snapshot.term if snapshot else 0
        self.log: list[Entry] = list(entries or [])
        self.commit_index = self.offset
        self.applied = self.offset
        self.stable_index = self.offset + len(self.log)     # persisted (fsync returned)
        self.initial_members = dict(snapshot.members if snapshot else members)
        self.members: dict[int, str] = {}
        self._recompute_members()
        self.votes: set[int] = set()
        self.next_index: dict[int, int] = {}
        self.match_index: dict[int, int] = {}
        self.snap_sent: dict[int, int] = {}       # peer -> offset of the chunk in flight
        self.lost_tail_reports = 0                # rejections below a follower's match_index
        # This node lost entries it had acknowledged (its WAL is below its high-water mark):
        # it neither votes nor campaigns until a leader has brought its log back to this index.
        # The dissertation (§3.8) says such a server cannot safely rejoin under its old
        # identity; abstaining until caught up is the weaker remedy docs/cluster.md argues for.
        self.abstain_until = 0
        self.recent_active: set[int] = set()
        self.snap_buffer: bytearray | None = None
        self.snap_buffer_key: tuple[int, int] = (0, 0)
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.timeout_ticks = 0
        self._reset_timeout()
        # Ready bookkeeping
        self._msgs: list[Message] = []
        self._events: list[dict[str, Any]] = []
        self._unstable_from: int | None = None
        self._hard_dirty = False
        self._pending_snapshot: Snapshot | None = None
        self.event("init", members={str(k): v for k, v in self.members.items()})

    # ----------------------------------------------------------------- log helpers
    @property
    def last_index(self) -> int:
        return self.offset + len(self.log)

    @property
    def last_term(self) -> int:
        return self.log[-1].term if self.log else self.offset_term

    def term_at(self, index: int) -> int | None:
        """Term of the entry at ``index``; None if compacted away (below the snapshot) or absent."""
        if index == self.offset:
            return self.offset_term
        if index < self.offset or index > self.last_index:
            return None
        return self.log[index - self.offset - 1].term

    def entry(self, index: int) -> Entry:
        return self.log[index - self.offset - 1]

    def _truncate_and_append(self, after: int, entries: list[Entry]) -> None:
        del self.log[after - self.offset:]
        self.log.extend(entries)
        self.stable_index = min(self.stable_index, after)
        self._mark_unstable(after + 1)
        if any(e.data.get("op") == "config" for e in entries) or self._had_config_after(after):
            self._recompute_members()

    def _had_config_after(self, after: int) -> bool:
        # cheap check: recompute whenever membership could have come from a removed suffix
        return self._config_index > after

    def _mark_unstable(self, index: int) -> None:
        if self._unstable_from is None or index < self._unstable_from:
            self._unstable_from = index

    def _recompute_members(self) -> None:
        """The configuration is the latest config entry in the log, committed or not (§4.1)."""
        self.members = dict(self.initial_members)
        self._config_index = 0
        for i in range(len(self.log) - 1, -1, -1):
            data = self.log[i].data
            if data.get("op") == "config":
                self.members = {int(k): v for k, v in data["members"].items()}
                self._config_index = self.offset + i + 1
                break

    def quorum(self) -> int:
        return len(self.members) // 2 + 1

    def peers(self) -> list[int]:
        return [p for p in self.members if p != self.id]

    # ----------------------------------------------------------------- events (tracing)
    def event(self, kind: str, **fields: Any) -> None:
        """Record a trace event with the state *after* it (traces/schema.py names the fields)."""
        if not self.opts.trace:
            return
        ev = {"event": kind, "term": self.term, "role": self.role.value,
              "voted_for": self.voted_for, "log_len": self.last_index,
              "last_log_term": self.last_term, "commit_index": self.commit_index,
              "snapshot_index": self.offset}
        ev.update(fields)
        self._events.append(ev)

    def _send(self, msg: Message) -> None:
        self._msgs.append(msg)
        if self.opts.trace:
            self.event("send", message=msg)

    # ----------------------------------------------------------------- timers
    def _reset_timeout(self) -> None:
        self.election_elapsed = 0
        n = self.opts.election_ticks
        self.timeout_ticks = self.rng.randrange(n, 2 * n)

    def tick(self) -> None:
        """Advance logical time by one tick (§5.2 election timeout, heartbeats)."""
        self.election_elapsed += 1
        if self.role == Role.LEADER:
            self.heartbeat_elapsed += 1
            if self.heartbeat_elapsed >= self.opts.heartbeat_ticks:
                self.heartbeat_elapsed = 0
                self._broadcast_append(heartbeat=True)
            if self.election_elapsed >= self.opts.election_ticks:
                self.election_elapsed = 0
                if self.opts.check_quorum:
                    active = len((self.recent_active | {self.id}) & set(self.members))
                    if self.id in self.members and active < self.quorum():
                        self._become_follower(self.term, None)
                        self.event("step_down", reason="check_quorum")
                        return
                self.recent_active = set()
        elif self.election_elapsed >= self.timeout_ticks:
            self.timeout()

    # ----------------------------------------------------------------- elections (§5.2)
    def timeout(self) -> None:
        """Start an election: new term, vote for self, ask everyone (TLA+ Timeout+RequestVote)."""
        if self.id not in self.members or self.abstaining():
            self._reset_timeout()
            return
        self.term += 1
        self.role = Role.CANDIDATE
        self.voted_for = self.id
        self.leader_id = None
        self.votes = {self.id}
        self._hard_dirty = True
        self._reset_timeout()
        self.event("timeout")
        if len(self.votes) >= self.quorum():
            self._become_leader()
            return
        for p in self.peers():
            self._send(Message(VOTE, self.id, p, self.term, last_log_index=self.last_index,
                               last_log_term=self.last_term))

    def _become_follower(self, term: int, leader: int | None) -> None:
        if term > self.term:
            self.term = term
            self.voted_for = None
            self._hard_dirty = True
        self.role = Role.FOLLOWER
        self.leader_id = leader
        self.snap_sent.clear()

    def _become_leader(self) -> None:
        """Win the election; append a no-op so entries of older terms can commit (§5.4.2, §8)."""
        self.role = Role.LEADER
        self.leader_id = self.id
        self.heartbeat_elapsed = 0
        self.election_elapsed = 0
        self.recent_active = set()
        for p in self.peers():
            self.next_index[p] = self.last_index + 1
            self.match_index[p] = 0
        self.snap_sent.clear()
        self.event("become_leader")
        self.log.append(Entry(self.term, {"op": "noop"}))
        self._mark_unstable(self.last_index)
        self.event("client_request", index=self.last_index, entry=self.log[-1])
        self._broadcast_append()
        self._maybe_commit()

    def _handle_vote(self, m: Message) -> None:
        up_to_date = (m.last_log_term, m.last_log_index) >= (self.last_term, self.last_index)
        grant = (m.term == self.term and self.voted_for in (None, m.src) and up_to_date
                 and not self.abstaining())
        if grant:
            self.voted_for = m.src
            self._hard_dirty = True
            self._reset_timeout()
        self.event("recv", message=m)
        self._send(Message(VOTE_RESP, self.id, m.src, self.term, granted=grant))

    def abstaining(self) -> bool:
        """True while this node must not vote or campaign (it lost acknowledged entries and
        its log has not yet been brought back to ``abstain_until`` by a leader). Once reached,
        its log up to there is a leader's, which holds every committed entry (§5.4)."""
        if self.abstain_until and self.last_index >= self.abstain_until:
            self.abstain_until = 0
        return self.abstain_until > 0

    def _handle_vote_resp(self, m: Message) -> None:
        self.event("recv", message=m)
        if self.role != Role.CANDIDATE or m.term != self.term or not m.granted:
            return
        if m.src in self.members:
            self.votes.add(m.src)
        if len(self.votes & set(self.members)) >= self.quorum():
            self._become_leader()

    # ----------------------------------------------------------------- replication (§5.3)
    def _broadcast_append(self, heartbeat: bool = False) -> None:
        for p in self.peers():
            self._send_append(p, heartbeat)

    def _send_append(self, p: int, heartbeat: bool = False) -> None:
        nxt = self.next_index.setdefault(p, self.last_index + 1)
        self.match_index.setdefault(p, 0)
        prev = nxt - 1
        prev_term = self.term_at(prev)
        if prev_term is None and prev < self.offset:
            self._send_snapshot_chunk(p, heartbeat)
            return
        if prev_term is None:           # next_index beyond our log (after truncation)
            nxt = self.last_index + 1
            self.next_index[p] = nxt
            prev, prev_term = nxt - 1, self.last_term
        start = nxt - self.offset - 1
        entries = self.log[start:start + MAX_ENTRIES_PER_APPEND]
        size = 0
        for k, e in enumerate(entries):
            size += e.wire_size()
            if size > MAX_APPEND_BYTES and k:
                del entries[k:]
                break
        if not entries and not heartbeat:
            return
        self._send(Message(APPEND, self.id, p, self.term, prev_index=prev, prev_term=prev_term,
                           entries=entries, commit=min(self.commit_index, prev + len(entries))))
        if entries:
            self.next_index[p] = prev + len(entries) + 1     # optimistic: pipeline the next batch

    def _handle_append(self, m: Message) -> None:
        """AppendEntries receiver rules 1-5 of Figure 2, with the conflict hint of §5.3."""
        if m.term < self.term:
            self.event("recv", message=m)
            self._send(Message(APPEND_RESP, self.id, m.src, self.term, success=False))
            return
        self._become_follower(m.term, m.src)
        self._reset_timeout()
        prev_term = self.term_at(m.prev_index)
        if m.prev_index < self.offset:
            # already compacted: the prefix is committed, skip entries we have in the snapshot
            skip = self.offset - m.prev_index
            if skip > len(m.entries):
                self.event("recv", message=m)
                self._send(Message(APPEND_RESP, self.id, m.src, self.term, success=True,
                                   match_index=self.offset))
                return
            m_entries = m.entries[skip:]
            prev_index, prev_term = self.offset, self.offset_term
        elif prev_term is None or prev_term != m.prev_term:
            if prev_term is None:
                ci, ct = self.last_index + 1, 0
            else:
                ct = prev_term
                ci = m.prev_index
                while ci - 1 > self.offset and self.term_at(ci - 1) == ct:
                    ci -= 1
            self.event("recv", message=m)
            self._send(Message(APPEND_RESP, self.id, m.src, self.term, success=False,
                               conflict_index=ci, conflict_term=ct))
            return
        else:
            m_entries, prev_index = m.entries, m.prev_index
        # find the first conflicting entry; truncate there and append the rest (rules 3, 4)
        idx = prev_index
        for k, e in enumerate(m_entries):
            idx = prev_index + k + 1
            t = self.term_at(idx)
            if t is None or t != e.term:
                self._truncate_and_append(idx - 1, list(m_entries[k:]))
                break
        match = prev_index + len(m_entries)
        if m.commit > self.commit_index:                         # rule 5
            self.commit_index = min(m.commit, match)
        self.event("recv", message=m)
        self._send(Message(APPEND_RESP, self.id, m.src, self.term, success=True,
                           match_index=match))

    def _handle_append_resp(self, m: Message) -> None:
        self.event("recv", message=m)
        if self.role != Role.LEADER or m.term != self.term or m.src not in self.next_index:
            return
        p = m.src
        self.recent_active.add(p)
        if m.success:
            if m.match_index > self.last_index:
                return                            # not something this leader sent
            if m.match_index > self.match_index[p]:
                self.match_index[p] = m.match_index
                self._maybe_commit()
            if self.next_index[p] <= self.match_index[p]:
                self.next_index[p] = self.match_index[p] + 1
            if self.next_index[p] <= self.last_index:
                self._send_append(p)
            return
        if m.conflict_index and m.conflict_index <= self.match_index[p]:
            # the follower no longer has entries it acknowledged (its disk lost its tail):
            # match_index is stale and must not hold next_index up (see docs/cluster.md)
            self.match_index[p] = m.conflict_index - 1
            self.lost_tail_reports += 1
        # fast backtracking: jump over the follower's conflicting term in one round trip
        nxt = m.conflict_index
        if m.conflict_term:
            last_of_term = 0
            for i in range(self.last_index, self.offset, -1):
                t = self.entry(i).term
                if t == m.conflict_term:
                    last_of_term = i
                    break
                if t < m.conflict_term:
                    break
            if last_of_term:
                nxt = last_of_term + 1
        nxt = max(self.match_index[p] + 1, min(nxt or 1, self.next_index[p]))
        if m.conflict_index == 0:
            nxt = max(self.match_index[p] + 1, self.next_index[p] - 1)
        self.next_index[p] = nxt
        self._send_append(p)

    def _maybe_commit(self) -> None:
        """Commit the highest index replicated on a majority, if from the current term (§5.4.2)."""
        matches = sorted((self.stable_index if p == self.id else self.match_index.get(p, 0))
                         for p in self.members)
        if not matches:
            return
        n = matches[len(matches) - self.quorum()]
        if n > self.commit_index and self.term_at(n) == self.term:
            self.commit_index = n
            self.event("advance_commit")
            if self.id not in self.members and self._config_index <= n:
                self._become_follower(self.term, None)        # removed leader steps down
                self.event("step_down", reason="removed")

    # ----------------------------------------------------------------- snapshots (§7)
    def _send_snapshot_chunk(self, p: int, heartbeat: bool) -> None:
        snap = self.snapshot
        assert snap is not None
        if p in self.snap_sent and not heartbeat:
            return                                            # one chunk in flight at a time
        off = self.snap_sent.get(p, 0)
        chunk = snap.data[off:off + SNAP_CHUNK]
        done = off + len(chunk) >= len(snap.data)
        self.snap_sent[p] = off
        self._send(Message(SNAP, self.id, p, self.term, snap_index=snap.index,
                           snap_term=snap.term, members=dict(snap.members), offset=off,
                           chunk=chunk, done=done))

    def _handle_snap(self, m: Message) -> None:
        if m.term < self.term:
            self.event("recv", message=m)
            self._send(Message(SNAP_RESP, self.id, m.src, self.term, success=False))
            return
        self._become_follower(m.term, m.src)
        self._reset_timeout()
        key = (m.snap_index, m.snap_term)
        if m.offset == 0:
            self.snap_buffer, self.snap_buffer_key = bytearray(), key
        if self.snap_buffer is None or key != self.snap_buffer_key or \
                m.offset != len(self.snap_buffer):
            expect = len(self.snap_buffer) if self.snap_buffer is not None and \
                key == self.snap_buffer_key else 0
            self.event("recv", message=m)
            self._send(Message(SNAP_RESP, self.id, m.src, self.term, success=True,
                               offset=expect, snap_index=m.snap_index))
            return
        self.snap_buffer += m.chunk
        if not m.done:
            self.event("recv", message=m)
            self._send(Message(SNAP_RESP, self.id, m.src, self.term, success=True,
                               offset=len(self.snap_buffer), snap_index=m.snap_index))
            return
        data = bytes(self.snap_buffer)
        self.snap_buffer = None
        if m.snap_index > self.commit_index:
            if self.check_snapshot is not None:
                self.check_snapshot(data)
            snap = Snapshot(m.snap_index, m.snap_term, {int(k): v for k, v in m.members.items()},
                            data)
            self.install_snapshot(snap)
            self._pending_snapshot = snap
        self.event("recv", message=m)
        self._send(Message(SNAP_RESP, self.id, m.src, self.term, success=True, done=True,
                           match_index=max(self.commit_index, m.snap_index),
                           snap_index=m.snap_index))

    def install_snapshot(self, snap: Snapshot) -> None:
        """Replace the log prefix by ``snap``; keep a matching suffix (Figure 13, rules 6-7)."""
        if self.term_at(snap.index) == snap.term:
            del self.log[:snap.index - self.offset]
        else:
            self.log = []
        self.offset, self.offset_term, self.snapshot = snap.index, snap.term, snap
        self.initial_members = dict(snap.members)
        self._recompute_members()
        self.commit_index = max(self.commit_index, snap.index)
        self.applied = max(self.applied, snap.index)
        self._unstable_from = None

    def _handle_snap_resp(self, m: Message) -> None:
        self.event("recv", message=m)
        if self.role != Role.LEADER or m.term != self.term or m.src not in self.next_index:
            return
        p = m.src
        self.recent_active.add(p)
        if self.snapshot is None or m.snap_index != self.snapshot.index:
            self.snap_sent.pop(p, None)
            return
        if m.done:
            self.snap_sent.pop(p, None)
            self.match_index[p] = max(self.match_index[p], m.match_index)
            self.next_index[p] = self.match_index[p] + 1
            self._maybe_commit()
            self._send_append(p)
            return
        self.snap_sent[p] = m.offset
        self._send_snapshot_chunk(p, heartbeat=True)

    def compact(self, index: int, data: bytes) -> Snapshot:
        """Discard the log up to applied ``index``, keeping ``data`` as the snapshot (§7)."""
        assert self.offset < index <= self.applied
        snap = Snapshot(index, self.entry(index).term, self._members_at(index), data)
        del self.log[:index - self.offset]
        self.offset, self.offset_term, self.snapshot = index, snap.term, snap
        self.initial_members = dict(snap.members)
        self.snap_sent.clear()
        self.event("snapshot", index=index)
        return snap

    def _members_at(self, index: int) -> dict[int, str]:
        if self._config_index <= index:       # no config entry after index: the current one
            return dict(self.members)
        for i in range(index, self.offset, -1):
            data = self.entry(i).data
            if data.get("op") == "config":
                return {int(k): v for k, v in data["members"].items()}
        return dict(self.initial_members)

    # ----------------------------------------------------------------- inputs
    def step(self, m: Message) -> None:
        """Handle one received message (Figure 2: 'all servers' rule first)."""
        if m.term > self.term:
            leader = m.src if m.type in (APPEND, SNAP) else None
            was = self.role
            self._become_follower(m.term, leader)
            self.event("update_term", from_role=was.value)
        if m.type == VOTE:
            self._handle_vote(m)
        elif m.type == VOTE_RESP:
            self._handle_vote_resp(m)
        elif m.type == APPEND:
            self._handle_append(m)
        elif m.type == APPEND_RESP:
            self._handle_append_resp(m)
        elif m.type == SNAP:
            self._handle_snap(m)
        elif m.type == SNAP_RESP:
            self._handle_snap_resp(m)

    def propose(self, data: dict[str, Any]) -> int | None:
        """Append a client command if leader (Figure 2, leaders rule 2); returns its index."""
        if self.role != Role.LEADER:
            return None
        self.log.append(Entry(self.term, data))
        self._mark_unstable(self.last_index)
        is_config = data.get("op") == "config"
        if is_config:
            self._recompute_members()
            for p in self.peers():
                self.next_index.setdefault(p, self.last_index)
                self.match_index.setdefault(p, 0)
        if self.opts.trace:
            self.event("client_request", index=self.last_index, entry=self.log[-1])
        if is_config or self.quorum() == 1:   # else our own append cannot move the majority
            self._maybe_commit()
        return self.last_index

    def flush_appends(self) -> None:
        """Send new entries to every peer: called once per loop turn so proposals batch up."""
        if self.role == Role.LEADER:
            for p in self.peers():
                if self.next_index.get(p, self.last_index + 1) <= self.last_index:
                    self._send_append(p)

    def config_change_allowed(self) -> bool:
        """One change at a time, and only after an entry of this term committed (diss. §4.1)."""
        return (self.role == Role.LEADER and self._config_index <= self.commit_index
                and self.term_at(self.commit_index) == self.term)

    def take_events(self) -> list[dict[str, Any]]:
        events, self._events = self._events, []
        return events

    def ready(self) -> Ready:
        """What to persist, send and apply now. Messages and events are handed over once; the
        entries, hard state and committed entries stay pending until ``advance(rd)``."""
        rd = Ready(messages=self._msgs, events=self._events)
        self._msgs, self._events = [], []
        rd.snapshot = self._pending_snapshot
        if self._unstable_from is not None:
            rd.append_from = self._unstable_from
            rd.entries = self.log[self._unstable_from - self.offset - 1:]
        if self._hard_dirty:
            rd.hard_state = (self.term, self.voted_for)
        if self.commit_index > self.applied:
            first = self.applied + 1
            rd.committed = list(enumerate(self.log[first - self.offset - 1:
                                                   self.commit_index - self.offset], first))
        return rd

    def advance(self, rd: Ready) -> None:
        """The loop persisted (write + fsync) and applied everything in ``rd`` (etcd-raft
        ``Advance``): only now do its entries count as stable and its commands as applied."""
        if rd.snapshot is not None and rd.snapshot is self._pending_snapshot:
            self._pending_snapshot = None
        if rd.entries or rd.snapshot is not None:
            self._unstable_from = None
            self.stable_index = self.last_index
        if rd.hard_state is not None and rd.hard_state == (self.term, self.voted_for):
            self._hard_dirty = False
        if rd.committed:
            self.applied = max(self.applied, rd.committed[-1][0])
        if self.role == Role.LEADER and self.stable_index > self.commit_index:
            self._maybe_commit()            # our own fsync may complete a majority

    def has_ready(self) -> bool:
        """Something to persist, send or apply (the loop flushes again)."""
        return bool(self._msgs or self._events or self._unstable_from is not None
                    or self._hard_dirty or self._pending_snapshot is not None
                    or self.commit_index > self.applied)
