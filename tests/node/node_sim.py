"""An in-memory network of RaftCores for transcript and property tests (no sockets, no clocks).

Persistence is modelled as the Ready contract says: whatever a Ready asks to persist is durable
before its messages are delivered, so a crash keeps term, vote and log and loses the rest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from raftspec.node.core import Options, RaftCore, Role
from raftspec.node.messages import Entry, Message, Snapshot


@dataclass
class Disk:
    term: int = 0
    voted_for: int | None = None
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None


class Net:
    def __init__(self, n: int, seed: int = 0, election_ticks: int = 10) -> None:
        self.rng = random.Random(seed)
        self.members = {i: f"127.0.0.1:{9000 + i}" for i in range(1, n + 1)}
        self.opts = Options(election_ticks=election_ticks, heartbeat_ticks=2)
        self.disks = {i: Disk() for i in self.members}
        self.nodes = {i: self._boot(i) for i in self.members}
        self.inflight: list[Message] = []
        self.down: set[int] = set()
        self.applied: dict[int, list[tuple[int, Entry]]] = {i: [] for i in self.members}
        self.leaders_by_term: dict[int, set[int]] = {}
        self.committed: dict[int, list[int]] = {}

    def _boot(self, i: int) -> RaftCore:
        d = self.disks[i]
        return RaftCore(i, self.members, random.Random(self.rng.random()), self.opts,
                        term=d.term, voted_for=d.voted_for, snapshot=d.snapshot,
                        entries=list(d.entries))

    def process(self, i: int) -> None:
        """Handle node i's Ready: persist, then put messages on the wire, then apply."""
        core = self.nodes[i]
        core.flush_appends()
        rd = core.ready()
        d = self.disks[i]
        if rd.snapshot is not None:
            d.snapshot = rd.snapshot
            d.entries = list(core.log)
        if rd.entries:
            base = d.snapshot.index if d.snapshot else 0
            del d.entries[rd.append_from - base - 1:]
            d.entries.extend(rd.entries)
        if rd.hard_state is not None:
            d.term, d.voted_for = rd.hard_state
        self.inflight.extend(rd.messages)
        self.applied[i].extend(rd.committed)
        core.advance(rd)
        if core.role == Role.LEADER:
            self.leaders_by_term.setdefault(core.term, set()).add(i)

    def tick(self, i: int) -> None:
        if i not in self.down:
            self.nodes[i].tick()
            self.process(i)

    def deliver(self, k: int, duplicate: bool = False) -> None:
        m = self.inflight[k] if duplicate else self.inflight.pop(k)
        if m.dst not in self.down and m.dst in self.nodes:
            self.nodes[m.dst].step(m)
            self.process(m.dst)

    def crash(self, i: int) -> None:
        self.down.add(i)

    def restart(self, i: int) -> None:
        self.down.discard(i)
        self.nodes[i] = self._boot(i)
        self.applied[i] = []

    def propose(self, value: str) -> int | None:
        for i, c in self.nodes.items():
            if i not in self.down and c.role == Role.LEADER:
                idx = c.propose({"op": "put", "key": "k", "value": value})
                self.process(i)
                return idx
        return None

    def run(self, steps: int, drop: float = 0.0) -> None:
        """Fair random schedule: deliver a message or tick a node."""
        for _ in range(steps):
            if self.inflight and self.rng.random() < 0.7:
                k = self.rng.randrange(len(self.inflight))
                if self.rng.random() < drop:
                    self.inflight.pop(k)
                else:
                    self.deliver(k)
            else:
                self.tick(self.rng.choice(list(self.nodes)))

    def leader(self) -> int | None:
        ls = [i for i, c in self.nodes.items() if i not in self.down and c.role == Role.LEADER]
        top = max((self.nodes[i].term for i in ls), default=None)
        ls = [i for i in ls if self.nodes[i].term == top]
        return ls[0] if len(ls) == 1 else None
