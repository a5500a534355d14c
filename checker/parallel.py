"""Breadth-first search sharded by fingerprint over several processes, with the counts of one.

Each shard *owns* the states whose fingerprint maps to it (``owner``): their entries in the seen
set and their parents' fingerprints (for counterexamples). States themselves never cross
processes: a shard *holds* the states it generated and expands them at the next level if they
are new. The search is level-synchronous; the coordinator sends each shard one command a level
(``level``), and within it the shards talk to each other directly:

0. **Even out and rank.** The command carries the moves that even out the shards' shares of
   level L (``balance``: a shard above its share gives evenly spaced states to one below it)
   and every shard's sorted keys of level L as ``finish`` reported them; each shard ranks its
   states by the union of those keys (moves do not change the union).
1. **Expand.** Every shard expands the states it holds for level L. A successor whose
   fingerprint it owns is decided at once (seen set); for any other it sends the owner a
   *claim*: (fingerprint, key, parent's fingerprint), 24 bytes, and keeps the state aside.
2. **Arbitrate.** Every owner, once all claims are in, keeps each new fingerprint with its
   smallest key and parent, and tells each shard which of its claims it lost (the
   *award*; the shard keeps the other states it holds).
3. **Finish.** Every shard takes the states it won as its part of level L + 1, checks them
   (invariants, reachability) in key order and reports their keys (the reply to ``level``).

Why the counts are exactly those of one worker (``checker.explore``), counterexamples and
per-action tallies included: one worker visits level L in its discovery order and each
successor in the order ``steps`` yields it, so every generated step has a key
(rank of its parent in level L, position among the parent's steps). A state's parent in one
worker is the parent of its smallest key; here the owner keeps the smallest key any shard
claimed, and the states of level L + 1 are ranked by those keys across shards (each shard
merges every shard's sorted key array). When a violation, a reachability witness or
``max_states`` ends the search inside a level, one worker would have stopped at the smallest
such key; the shards report theirs, the smallest wins, and the figures are recounted up to it
(generated steps of the parents ranked before it, new states keyed before it, and per-action
tallies by re-expanding those parents only in that last level).

A shard claims a fingerprint once a level (``held``: the first claim carries its smallest key,
parents being expanded in rank order), even one it claimed at an earlier level: the owner
answers with a loss. Remembering every fingerprint ever claimed, to claim it only once, cost
more than the claims it saved (docs/scale.md).

Why claims and not states: an earlier version sent every foreign successor, pickled, to its
owner; on elect3m2 pickling and unpickling them (some 40 µs a state) made two shards cost 1.5x
the CPU of one process, and two processes were slower than one. A claim costs a few array
appends. Each state is expanded where it was first generated, so the shards' shares of a level
follow the shares of the previous one (balanced in expectation: the hand-off level is split by
fingerprint), and ``balance`` moves a few states to even them out.

Transports: ``ProcessBackend`` (forked processes on one machine, claims streamed through
queues while expanding) and ``checker.parallel_ray`` (Ray actors, claims and awards through
Ray's object store). The coordinator (``run_sharded``) is the same for both.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import json
import multiprocessing
import os
import pickle
import signal
import struct
import time
import traceback
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import compress, islice
from multiprocessing import connection
from operator import itemgetter
from queue import Empty
from typing import Any

from raftspec.checker.explore import ActionCounter, expander, step_at
from raftspec.checker.fingerprints import FingerprintSet
from raftspec.checker.frontier import Chunks
from raftspec.checker.gcpolicy import level_done, set_search_policy
from raftspec.protocol.errors import RaftspecError

KEY_BITS = 24
"""A key is rank << KEY_BITS | index of the step among its parent's steps."""
BATCH = 4096
"""Claims per batch sent to another shard."""
RELEASE = 2048
"""States freed at a time while a worker waits (``Shard.release``)."""
POLL_EVERY = 64
"""Parents expanded between two looks at the inbox, the stop flag and the progress counters."""
STATS_ENV = "RAFTSPEC_PARALLEL_STATS"
"""When this environment variable names a file, the search writes there, as JSON, where each
worker's time went, level by level (CPU, blocked, idle, bytes sent) and the coordinator's
(``benchmarks/bench_parallel.py --stats`` prints the totals). Off by default: a few clock
reads per step of a level and per batch of claims, none per state."""


_first, _second = itemgetter(0), itemgetter(1)


def owner(fp: int, shards: int) -> int:
    """The shard owning fingerprint ``fp`` (high bits: the seen table indexes by low bits)."""
    return (fp >> 40) % shards


class WorkerError(RuntimeError):
    """A shard failed: ``killed`` by a signal (the kernel's OOM killer, a user), or an
    exception whose traceback is the message."""

    def __init__(self, message: str, killed: bool = False) -> None:
        super().__init__(message)
        self.killed = killed


class SpillingStates:
    """A shard's states in order, at most ``limit`` of them as Python objects: appended to a
    plain list (``items``: callers bind its ``append``, as fast as a list's), which ``settle``
    pickles to the shard's temporary file (``frontier.Chunks``) as one chunk whenever it holds
    ``limit`` states (the list is emptied in place, so a bound ``append`` stays valid). Callers
    settle at coarse points (every ``POLL_EVERY`` parents while expanding), so the list may
    overshoot ``limit`` by those parents' successors. ``limit`` None: a plain list, never
    spilled. As ``frontier.Frontier`` for one process."""

    __slots__ = ("items", "limit", "_disk", "_spilled")

    def __init__(self, limit: int | None, items: list | None = None) -> None:
        self.items: list = [] if items is None else items
        self.limit = limit
        self._disk = Chunks("raftspec-shard-")
        self._spilled = 0   # states in the file

    def append(self, state: Any) -> None:
        self.items.append(state)
        self.settle()

    def settle(self) -> None:
        if self.limit is None or len(self.items) < self.limit:
            return
        self._disk.write(self.items)
        self._spilled += len(self.items)
        del self.items[:]

    def __len__(self) -> int:
        return self._spilled + len(self.items)

    @property
    def on_disk(self) -> bool:
        return bool(self._disk)

    def __iter__(self) -> Iterator[Any]:
        """The states in the order appended (the chunks on disk first)."""
        for chunk in self._disk:
            yield from chunk
        yield from self.items

    def close(self) -> None:
        self._disk.close()
        self._spilled = 0
        self.items = []


@dataclass
class Level:
    """The states a shard holds in one BFS level, ascending: their keys (in the frontier,
    their global ranks), fingerprints and the states themselves (picklable as one record).

    Keys and fingerprints are Python lists, not int64 arrays: they stay in this process (only
    ``finish``'s report packs the keys), and every array append or item store converts an int
    (``PyArg_Parse``), some 4x a list append; a level's lists cost some 64 B a state more,
    little beside the states themselves."""

    keys: list = field(default_factory=list)
    fps: list = field(default_factory=list)
    states: SpillingStates = field(default_factory=lambda: SpillingStates(None))

    def __len__(self) -> int:
        return len(self.keys)

    def split(self, count: int) -> tuple[Level, Level]:
        """(``count`` evenly spaced entries, the others): a shard giving states away keeps
        states of every rank (one holding only late ranks would win fewer successors shared
        with others, and fall further behind). The entries given are Python objects (they are
        sent); the others spill as this level does."""
        n = len(self)
        chosen = {n * i // count for i in range(count)} if count else set()
        given, kept = Level(), Level(states=SpillingStates(self.states.limit))
        for i, entry in enumerate(zip(self.keys, self.fps, self.states, strict=True)):
            into = given if i in chosen else kept
            into.keys.append(entry[0])
            into.fps.append(entry[1])
            into.states.append(entry[2])
        self.close()
        return given, kept

    def merge(self, other: Level) -> Level:
        """Both levels' entries in one, by key (both are ascending)."""
        merged = Level(states=SpillingStates(self.states.limit))
        for key, fp, state in heapq.merge(zip(self.keys, self.fps, self.states, strict=True),
                                          zip(other.keys, other.fps, other.states, strict=True),
                                          key=_first):
            merged.keys.append(key)
            merged.fps.append(fp)
            merged.states.append(state)
        self.close()
        other.close()
        return merged

    def close(self) -> None:
        """Free the states (and the file of those spilled)."""
        self.states.close()


class Shard:
    """One shard's part of the search (the same code in a process and in a Ray actor)."""

    def __init__(self, system: Any, me: int, shards: int, count_actions: bool,
                 action_name: Callable[[Any], str],
                 reachable: dict[str, Callable[[Any], bool]] | None = None) -> None:
        self.system = system
        self.reachable = reachable or {}
        self.me, self.shards = me, shards
        self.count_actions = count_actions
        self.action_name = action_name
        self.seen = FingerprintSet()  # every state this shard owns ...
        self.fps = array("q")         # ... again, in the order decided ...
        self.parents = array("q")     # ... and its parent's fingerprint (0 for initial states)
        self.frontier = Level()   # the states held in this level, by global rank
        self.expanded = False     # ... and whether their successors are generated
        self.spill_from: int | None = None   # a level's states kept as objects (``load``)
        self.held: dict[int, int] = {}   # fp -> key of a successor generated here ...
        self.held_states = SpillingStates(None)   # ... and the successors, in the same order
        self.candidates: dict[int, tuple[int, int, int]] = {}   # owned fp -> key, pfp, holder
        self.lost: list[list[int]] = [[] for _ in range(shards)]   # per holder: claims lost
        self.awarded: list[Any] = []         # fingerprints this shard lost, per award received
        self.next = Level()       # the next level's states held here, by key
        self.nsucc: list[int] = []   # steps generated per frontier parent (for prefixes)
        self.generated = 0
        self.per_action: Counter[str] = Counter()
        self.counter = (ActionCounter(system, action_name, self.per_action) if count_actions
                        else None)
        self.step_violation: tuple[int, str, int, Any, Any] | None = None

    # -- loading -----------------------------------------------------------------------------

    def load(self, fps: array, parents: array, frontier: list[tuple[int, int, Any]],
             spill_from: int | None = None) -> None:
        """Take over states found before the hand-off: (fingerprint, parent fingerprint) of
        every state owned, and the frontier to hold as (rank, fingerprint, state), ranks
        ascending. ``spill_from``: each of this shard's lists of states (the level it expands,
        the successors it generates, the next level) keeps at most about this many as Python
        objects, the rest pickled to a temporary file (``explore``'s ``spill_from``)."""
        self.spill_from = spill_from
        add = self.seen.add
        for fp in fps:
            add(fp)
        self.fps.extend(fps)
        self.parents.extend(parents)
        self.frontier = Level([rank for rank, _, _ in frontier],
                              [fp for _, fp, _ in frontier],
                              SpillingStates(spill_from, [state for _, _, state in frontier]))

    # -- one level ----------------------------------------------------------------------------

    def expand(self, send: Callable[[int, tuple], None], poll: Callable[[], None],
               progress: Callable[[int, int], None] | None = None) -> None:
        """Generate every successor of the states held, decide the owned ones, claim the
        others from their owners (``send(owner, (me, claims))``, claims a flat list of
        fingerprint, key, parent fingerprint, ...: the transport packs it)."""
        system = self.system
        fingerprint = system.fingerprint
        step_properties = list(system.step_properties.items())
        me, shards = self.me, self.shards
        seen_add = self.seen.add
        candidates, held, lost = self.candidates, self.held, self.lost
        self.held_states = held_states = SpillingStates(self.spill_from)
        hold = held_states.items.append   # in the order of ``held``
        counter = self.counter
        expand = counter.expand if counter is not None else expander(system)  # as explore's
        out: list[list[int]] = [[] for _ in range(shards)]
        nsucc: list[int] = []
        self.nsucc = nsucc
        generated = 0
        violation = None
        ranks, parent_fps = self.frontier.keys, self.frontier.fps
        for j, state in enumerate(self.frontier.states):
            base = ranks[j] << KEY_BITS
            pfp = parent_fps[j]
            count, successors = expand(state)
            k = count   # steps generated (counted up to a violation)
            for pos, nxt in successors:
                if step_properties:
                    for name, holds in step_properties:
                        if not holds(state, nxt):
                            action = step_at(system, state, pos)[0]
                            violation = (base | pos, name, pfp, action, nxt)
                            break
                    if violation is not None:
                        k = pos + 1
                        break
                fp = fingerprint(nxt)
                dest = (fp >> 40) % shards
                if dest == me:
                    if seen_add(fp):
                        key = base | pos
                        candidates[fp] = (key, pfp, me)
                        held[fp] = key
                        hold(nxt)
                    else:   # another shard's claim may have come first with a larger key
                        c = candidates.get(fp)
                        if c is not None and (base | pos) < c[0]:
                            key = base | pos
                            lost[c[2]].append(fp)
                            candidates[fp] = (key, pfp, me)
                            held[fp] = key   # not held yet: c is another shard's claim
                            hold(nxt)
                elif fp not in held:   # claimed once a level
                    key = base | pos
                    held[fp] = key
                    hold(nxt)
                    batch = out[dest]
                    batch += (fp, key, pfp)
                    if len(batch) >= 3 * BATCH:
                        send(dest, (me, batch))
                        out[dest] = []
            if counter is not None:
                counter.counted(state, k, count)
            nsucc.append(k)
            generated += k
            if violation is not None:
                # every later step of this shard has a larger key: the level ends here for it
                self.step_violation = violation
                break
            if j % POLL_EVERY == 0:
                held_states.settle()
                poll()
                if progress is not None:
                    progress(generated, len(candidates))
        for dest, batch in enumerate(out):
            if batch:
                send(dest, (me, batch))
        self.generated = generated
        self.expanded = True

    def receive(self, claims: tuple) -> None:
        """Another shard's claims on fingerprints this shard owns (smallest key wins)."""
        holder, flat = claims
        seen_add, candidates, lost = self.seen.add, self.candidates, self.lost
        lost_here = lost[holder]
        it = iter(flat)
        get = candidates.get
        for fp, key, pfp in zip(it, it, it, strict=True):   # (strict: whole triples)
            c = get(fp)   # a candidate is in the seen set: a dict lookup spares seen_add
            if c is None:
                if seen_add(fp):
                    candidates[fp] = (key, pfp, holder)
                else:   # decided at an earlier level
                    lost_here.append(fp)
            elif key < c[0]:
                lost[c[2]].append(fp)
                candidates[fp] = (key, pfp, holder)
            else:
                lost_here.append(fp)

    def arbitrate(self) -> list[list[int]]:
        """Once every claim is in: record the new states this shard owns, and return, per
        shard, the fingerprints it claimed or held and lost (lists: the transport packs the
        other shards'). Losses, not wins: most claims are won (on elect3m2 to depth 20 the
        shards held 264 K states and lost 50 K), and a shard keeps what it holds unless
        told otherwise."""
        candidates = self.candidates
        self.fps.frombytes(pack(list(candidates)))   # one conversion each, not an append's
        self.parents.frombytes(pack(list(map(_second, candidates.values()))))
        self.candidates = {}
        lost, self.lost = self.lost, [[] for _ in range(self.shards)]
        return lost

    def accept(self, award: Any) -> None:
        """Fingerprints an owner says this shard lost (every owner sends one award a level)."""
        self.awarded.append(award)

    def finish(self, pending: list[str]) -> dict:
        """Take the states won in key order, check them, and report to the coordinator.

        No sort: ``held`` is in key order already. ``expand`` generates keys ascending (parents
        by rank, steps by position) and inserts a fingerprint into ``held`` only the first time
        this shard generates it in the level (a later key of its own is never smaller)."""
        lost: set[int] = set()
        for award in self.awarded:
            lost.update(award)
        held, held_states = self.held, self.held_states
        self.held, self.held_states, self.awarded = {}, SpillingStates(None), []
        if held_states.on_disk:   # read back in order, the lost skipped, spilled again
            keys: list[int] = []
            fps: list[int] = []
            states = SpillingStates(self.spill_from)
            add_key, add_fp, add_state = keys.append, fps.append, states.items.append

            def won() -> Iterator[tuple[int, int, Any]]:
                for (fp, key), state in zip(held.items(), held_states, strict=True):
                    if fp not in lost:
                        add_key(key)
                        add_fp(fp)
                        add_state(state)
                        if not len(keys) & 1023:
                            states.settle()
                        yield key, fp, state

            violation, reached = self._check(won(), pending)
            held_states.close()
        else:   # all in memory: in bulk
            if lost:
                kept = [fp not in lost for fp in held]
                fps = list(compress(held, kept))
                keys = list(compress(held.values(), kept))
                objects = list(compress(held_states.items, kept))
            else:
                fps, keys, objects = list(held), list(held.values()), held_states.items
            violation, reached = self._check(zip(keys, fps, objects, strict=True), pending)
            states = SpillingStates(self.spill_from, objects)
            states.settle()
        self.next = Level(keys, fps, states)
        level_done()
        step = self.step_violation
        return {
            "new": len(keys),
            "generated": self.generated,
            "keys": pack(keys),
            "step_violation": None if step is None else (step[0], step[1]),
            "violation": violation,
            "reached": reached,
            "per_action": self._per_action(),
        }

    def _check(self, won: Iterable[tuple[int, int, Any]], pending: list[str]
               ) -> tuple[tuple[int, str, int] | None, dict[str, tuple[int, int]]]:
        """The first invariant violated along the states won (key, name, fingerprint) and the
        first state of each pending reachability property, in key order. ``won`` is consumed
        to its end whatever is found (it may be collecting the states)."""
        invariants = list(self.system.invariants.items())
        todo = [(name, self.reachable[name]) for name in pending]
        reached: dict[str, tuple[int, int]] = {}
        violation = None
        for key, fp, state in won:
            if violation is not None:   # every state won is kept (``prefix`` counts them)
                continue
            for name, holds in invariants:
                if not holds(state):
                    violation = (key, name, fp)
                    break
            if violation is None and todo:
                for item in list(todo):
                    if item[1](state):
                        reached[item[0]] = (key, fp)
                        todo.remove(item)
        return violation, reached

    def advance(self, all_keys: list[bytes]) -> None:
        """Make the states won the frontier, ranked across every shard's keys
        (``global_ranks``).

        ``all_keys``: every shard's sorted keys as ``finish`` reported them, before any state
        moved (``give``/``take``): a key's global rank is how many keys of their union are
        smaller, which moving states between shards does not change. Replacing the frontier
        frees what is left of the previous level's states (``release`` frees them while a
        worker waits; before it, freeing them here cost 0.44 s per worker on elect3m2)."""
        nxt = self.next
        self.frontier.close()
        self.frontier = Level(global_ranks(all_keys, nxt.keys), nxt.fps, nxt.states)
        self.expanded = False
        self.next = Level()
        self.per_action.clear()
        self.step_violation = None

    def release(self, count: int) -> bool:
        """Free up to ``count`` of the states of the level expanded (True if it freed any):
        nothing needs them once their successors are generated, unless per-action counting
        may expand them again (``prefix``). A worker calls it while it waits for the other
        shards, so that ``advance`` has fewer to free."""
        states = self.frontier.states
        if self.count_actions or not states.items or not self.expanded:
            return False
        if states.limit is not None and len(states) > len(states.items):
            states.close()   # spilled: its objects are at most one chunk, its file goes too
            return True
        del states.items[-count:]
        return True

    def _per_action(self) -> dict[str, int]:
        """This level's steps per action name so far (empty unless counting)."""
        if self.counter is not None:
            self.counter.fold()
        return dict(self.per_action)

    # -- balance -------------------------------------------------------------------------------

    def give(self, count: int) -> Level:
        """Hand ``count`` of the next level's states to another shard (before ``advance``)."""
        given, self.next = self.next.split(count)
        return given

    def take(self, given: Level) -> None:
        """States another shard gave (``give``), merged into the next level in key order."""
        self.next = self.next.merge(given)

    # -- figures up to a key, and parents ------------------------------------------------------

    def prefix(self, key: int, inclusive: bool) -> dict:
        """Figures as one worker had them at step ``key`` of this level: steps generated from
        parents ranked before it (and per action; those parents are expanded again), new
        states keyed before it (or at it, ``inclusive``)."""
        rank = key >> KEY_BITS
        generated = 0
        per_action: Counter[str] = Counter()
        upto = 0
        frontier = self.frontier
        for j, r in enumerate(frontier.keys):
            if r >= rank:
                break
            upto = j + 1
            generated += self.nsucc[j]
        if self.count_actions:
            steps, name_of = self.system.steps, self.action_name
            partly = upto < len(frontier) and frontier.keys[upto] == rank
            for j, state in enumerate(islice(frontier.states, upto + 1 if partly else upto)):
                for k, (action, _) in enumerate(steps(state)):
                    if j == upto and k > key & ((1 << KEY_BITS) - 1):
                        break   # the parent ranked at the key: its steps up to the key's
                    per_action[name_of(action)] += 1
        new = bisect_left(self.next.keys, key + 1 if inclusive else key)
        return {"generated": generated, "per_action": dict(per_action), "new": new}

    def violating_step(self) -> tuple[int, Any, Any]:
        """(parent fingerprint, action, successor) of this shard's step-property violation."""
        assert self.step_violation is not None
        return self.step_violation[2:]

    def parent_of(self, fp: int) -> int:
        return self.parents[self.fps.index(fp)]

    def state_count(self) -> int:
        return len(self.fps)


# -- processes on one machine --------------------------------------------------------------------


def _worker(me: int, shards: int, system: Any, count_actions: bool,
            action_name: Callable[[Any], str], reachable: dict | None, commands: Any,
            inboxes: list, gift_boxes: list, counters: Any, stop: Any) -> None:
    """A shard in a forked process: obeys the coordinator's commands on its pipe.

    Claims, their ends and awards go through ``inboxes`` (queues: a feeder thread writes them
    while the shard goes on expanding); the states ``balance`` moves go through ``gift_boxes``,
    written by the giver itself before it goes on: a queue's feeder thread waits for the GIL
    while its shard expands, and the receiving shard, which cannot rank its level without the
    gift, waited for it 0.1-0.5 s at some levels (1.3 s a run on elect3m2, both workers; the
    giver then waited as long for the receiver's claims). A shard either gives or receives in a
    level (``balance``), so a giver blocked on a full pipe waits for a receiver that reads."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C is the coordinator's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.freeze()   # what the fork inherited is never garbage: the collector need not scan it
    set_search_policy()
    parent = os.getppid()
    shard = Shard(system, me, shards, count_actions, action_name, reachable)
    inbox = inboxes[me]
    others = [dest for dest in range(shards) if dest != me]
    done_from = awards_from = 0
    timing = _Timing() if os.environ.get(STATS_ENV) else _NoTiming()

    def take(message: tuple) -> None:
        """A message from another shard: claims, the end of its claims, or its award."""
        nonlocal done_from, awards_from
        kind = message[0]
        if kind == CLAIMS:
            _, holder, flat = message
            t = time.thread_time()
            shard.receive((holder, _array(flat)))
            timing.add("receive_cpu", time.thread_time() - t)
        elif kind == DONE:
            done_from += 1
        else:
            shard.accept(_array(message[1]))
            awards_from += 1

    def poll() -> None:
        while True:
            try:
                message = inbox.get_nowait()
            except Exception:   # queue.Empty
                return
            take(message)

    def wait() -> None:
        """While waiting for other shards: free a chunk of the expanded level and take what has
        come, or, with nothing left to free, block for the next message (until the coordinator
        abandons the level: the others may have stopped sending)."""
        if shard.release(RELEASE):
            poll()
            return
        while True:
            try:
                take(inbox.get(timeout=ABANDON_POLL))
                return
            except Empty:
                if stop.value:
                    raise _Abandon from None

    def send(dest: int, claims: tuple) -> None:
        holder, flat = claims
        inboxes[dest].put((CLAIMS, holder, pack(flat)))
        timing.add("claims_sent", len(flat) // 3)
        timing.add("bytes_sent", 8 * len(flat))

    def progress(generated: int, new: int) -> None:
        counters[2 * me] = generated
        counters[2 * me + 1] = new
        if stop.value:
            raise _Abandon

    abandoned = False   # a level left unfinished: only parents are asked for any more
    while True:
        timing.mark()
        while not commands.poll(0 if shard.release(RELEASE) else 1.0):
            if os.getppid() != parent:
                return
        command, arg = commands.recv()
        timing.lap("idle")
        try:
            if command == "quit":
                return
            if abandoned and command not in ("parent", "stats"):
                raise ValueError(f"{command!r} after an abandoned level")
            if command == "load":
                shard.load(*arg)
                reply: Any = None
            elif command == "level":
                pending, all_keys, moves = arg
                done_from = awards_from = 0
                if moves:   # even out the level before ranking it (claims wait in the inbox)
                    for src, dst, count in moves:
                        if src == me:
                            gift_boxes[dst].put(shard.give(count))
                    for _ in range(sum(1 for move in moves if move[1] == me)):
                        shard.take(gift_boxes[me].get())
                    timing.lap("balance")
                if all_keys is not None:
                    shard.advance(all_keys)
                    timing.lap("advance")
                shard.expand(send, poll, progress)
                timing.lap("expand")
                for dest in others:
                    inboxes[dest].put((DONE,))
                while done_from < shards - 1:
                    wait()
                timing.lap("wait_claims")
                awards = shard.arbitrate()
                for dest in others:
                    inboxes[dest].put((AWARD, pack(awards[dest])))
                    timing.add("bytes_sent", 8 * len(awards[dest]))
                shard.accept(awards[me])
                timing.lap("arbitrate")
                while awards_from < shards - 1:
                    wait()
                timing.lap("wait_awards")
                counters[2 * me] = shard.generated
                reply = shard.finish(pending)
                timing.lap("finish")
                timing.add("generated", shard.generated)
                timing.add("held", len(shard.frontier))
                timing.level_done()
            elif command == "stats":
                reply = timing.report()
            elif command == "prefix":
                reply = shard.prefix(*arg)
            elif command == "step_violation":
                reply = shard.violating_step()
            elif command == "parent":
                reply = shard.parent_of(arg)
            else:
                raise ValueError(f"unknown command {command!r}")
            commands.send(("ok", reply))
        except _Abandon:   # answered, so that the parents of the levels done can be asked
            abandoned = True
            commands.send(("ok", ABANDONED))
        except BaseException:  # noqa: BLE001 - reported to the coordinator, which raises it
            commands.send(("error", f"shard {me}: {traceback.format_exc()}"))
            return


class _Timing:
    """A worker's time, per level: wall and CPU seconds of each step (``lap``), wall seconds
    idle waiting for the coordinator's next command, claims and bytes sent. CPU is this
    thread's (``thread_time``) and the whole process's (``process_time``): the difference is
    the queues' feeder threads (pickling and writing the messages)."""

    def __init__(self) -> None:
        self.levels: list[dict[str, float]] = []
        self.current: dict[str, float] = {}
        self.totals: dict[str, float] = {}
        self.mark()

    def mark(self) -> None:
        self.wall, self.cpu, self.process = (time.perf_counter(), time.thread_time(),
                                             time.process_time())

    def add(self, name: str, value: float) -> None:
        self.current[name] = self.current.get(name, 0) + value

    def lap(self, step: str) -> None:
        """Charge the time since the last mark to ``step`` and mark again (``idle``, the wait
        for the coordinator's next command, counts in the level that command starts)."""
        wall, cpu, process = self.wall, self.cpu, self.process
        self.mark()
        self.add(f"{step}_wall", self.wall - wall)
        if step != "idle":
            self.add(f"{step}_cpu", self.cpu - cpu)
        self.add("process_cpu", self.process - process)
        self.add("thread_cpu", self.cpu - cpu)

    def level_done(self) -> None:
        self.levels.append(self.current)
        for name, value in self.current.items():
            self.totals[name] = self.totals.get(name, 0) + value
        self.current = {}

    def report(self) -> dict:
        for name, value in self.current.items():   # idle after the last level
            self.totals[name] = self.totals.get(name, 0) + value
        self.current = {}
        return {"totals": self.totals, "levels": self.levels}


class _NoTiming:
    """``_Timing`` switched off (no ``STATS_ENV``): every record is dropped, the report is None.
    Its calls come a few times a step of a level and once a batch of claims, never per state."""

    def mark(self) -> None:
        pass

    def add(self, name: str, value: float) -> None:
        pass

    def lap(self, step: str) -> None:
        pass

    def level_done(self) -> None:
        pass

    def report(self) -> None:
        return None


CLAIMS, DONE, AWARD = 0, 1, 2
"""Kinds of message between shard processes."""


def pack(values: list[int]) -> bytes:
    """Ints as native int64 bytes (what ``_array`` reads): ``struct`` converts each once,
    some 40% cheaper than building an array from the list."""
    return struct.pack(f"{len(values)}q", *values)


def _array(raw: bytes) -> array:
    a = array("q")
    a.frombytes(raw)
    return a


def global_ranks(all_keys: list[bytes], mine: list[int]) -> list[int]:
    """The global rank of each of ``mine`` (keys of one shard, distinct from every other
    shard's, each in exactly one of ``all_keys``: every shard's sorted keys, packed): how many
    keys of the union are smaller: the sum over the shards' arrays of the key's insertion point
    in each (numpy's ``searchsorted``). Merging the union and testing each of its keys for
    membership cost 4-10 times as much (300,000 keys a shard: 0.34-0.60 s against 0.05-0.10 s)."""
    import numpy as np  # imported before the workers fork (ProcessBackend): a lookup here

    keys = np.array(mine, dtype=np.int64)
    rank = np.zeros(len(keys), dtype=np.int64)
    for raw in all_keys:
        rank += np.searchsorted(np.frombuffer(raw, dtype=np.int64), keys)
    return rank.tolist()


class _Abandon(Exception):
    """The coordinator stopped the search (budget or interrupt) in the middle of a level."""


ABANDONED = "abandoned"
"""A worker's answer to the level it left unfinished (``ProcessBackend.settle``)."""
ABANDON_POLL = 0.1
"""Seconds a worker waiting for other shards' messages blocks before it looks at the stop flag."""
SETTLE_PATIENCE = 5.0
"""Seconds ``ProcessBackend.settle`` waits for every worker to leave its level."""


class ProcessBackend:
    """Shards in forked processes (fork: the system, with its generated code, is inherited)."""

    def __init__(self, system: Any, shards: int, count_actions: bool,
                 action_name: Callable[[Any], str],
                 reachable: dict[str, Callable[[Any], bool]] | None = None) -> None:
        # for global_ranks: imported once here, before the fork; imported by each worker at its
        # first level instead, two workers took 1.11x the time on elect3m2 (median of 4 pairs)
        import numpy  # noqa: F401

        ctx = multiprocessing.get_context("fork")
        self.shards = shards
        # lock-free, as the counters: a worker killed (the OOM killer) while holding a shared
        # lock would leave the coordinator waiting for it for ever when it ends the search
        self.stop = ctx.RawValue("b", 0)
        self.counters = ctx.Array("q", 2 * shards, lock=False)
        self.inboxes: list[Any] = []
        self.gift_boxes: list[Any] = []
        self.pipes = []
        self.awaiting: set[int] = set()   # the shards sent a command whose reply is unread
        self.processes = []
        try:   # some 8 file descriptors a worker, and a process each
            self.inboxes = [ctx.Queue() for _ in range(shards)]
            self.gift_boxes = [ctx.SimpleQueue() for _ in range(shards)]   # written at once
            for me in range(shards):
                ours, theirs = ctx.Pipe()
                self.pipes.append(ours)
                process = ctx.Process(
                    target=_worker, name=f"raftspec-shard-{me}", daemon=True,
                    args=(me, shards, system, count_actions, action_name, reachable, theirs,
                          self.inboxes, self.gift_boxes, self.counters, self.stop))
                process.start()
                theirs.close()
                self.processes.append(process)
        except OSError as err:   # out of file descriptors or processes: a user's --workers
            self.close()
            raise RaftspecError(f"cannot start {shards:,} worker processes ({err.strerror or err}"
                                f"); use fewer", field="--workers") from None

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def call(self, shard: int, command: str, arg: Any = None) -> Any:
        self._send(shard, (command, arg))
        return self._replies([shard])[0]

    def call_all(self, command: str, args: list[Any], watch: Callable[[], None] | None = None
                 ) -> list[Any]:
        for s, arg in enumerate(args):
            self._send(s, (command, arg))
        return self._replies(list(range(self.shards)), watch)

    def _send(self, shard: int, message: tuple) -> None:
        try:
            self.pipes[shard].send(message)
        except OSError:   # its end is closed: the worker is gone
            raise self._died(shard) from None
        self.awaiting.add(shard)

    def settle(self) -> bool:
        """After a stop in the middle of a level: every worker leaves the level (answering
        ``ABANDONED``, or its report if it had finished it) and stays, to be asked for the
        parents of the states of the levels done. False if a worker has died, or some worker
        has not answered within ``SETTLE_PATIENCE`` seconds."""
        self.stop.value = 1
        deadline = time.monotonic() + SETTLE_PATIENCE

        def patience() -> None:
            if time.monotonic() > deadline:
                raise TimeoutError

        try:
            self._replies(sorted(self.awaiting), patience)
        except (WorkerError, TimeoutError):
            return False
        return True

    def _replies(self, shards: list[int], watch: Callable[[], None] | None = None) -> list[Any]:
        """The listed shards' replies, in order, calling ``watch`` every 20 ms while waiting.
        Any worker that exits meanwhile ends the wait with a ``WorkerError``: the others may be
        waiting for its claims, and would wait for ever."""
        replies: dict[int, Any] = {}
        waiting = {self.pipes[s]: s for s in shards}
        sentinels = {p.sentinel: s for s, p in enumerate(self.processes)}
        while waiting:
            ready = connection.wait([*waiting, *sentinels],
                                    timeout=0.02 if watch is not None else None)
            for obj in ready:   # a reply is read even if its worker exited after sending it
                if obj in waiting:
                    s = waiting.pop(obj)
                    self.awaiting.discard(s)
                    replies[s] = self._reply(s)
            for obj in ready:
                if obj in sentinels:
                    raise self._died(sentinels[obj])
            if waiting and watch is not None:
                watch()
        return [replies[s] for s in shards]

    def _reply(self, shard: int) -> Any:
        try:
            status, value = self.pipes[shard].recv()
        except (EOFError, OSError):   # OSError: reset, the worker died with input unread
            raise self._died(shard) from None
        if status == "error":
            raise WorkerError(value)
        return value

    def _died(self, shard: int) -> WorkerError:
        process = self.processes[shard]
        process.join(1.0)
        code = process.exitcode
        return WorkerError(f"worker {shard} died (exit code {code})",
                           killed=code is not None and code < 0)

    def progress(self) -> tuple[int, int]:
        """(steps generated, new states) so far in the current level, over all shards."""
        c = self.counters
        return (sum(c[0::2]), sum(c[1::2]))

    def reset_progress(self) -> None:
        for k in range(2 * self.shards):
            self.counters[k] = 0

    def close(self) -> None:
        self.stop.value = 1
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("quit", None))
        deadline = time.monotonic() + 0.5
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(1.0)
            if process.is_alive():
                process.kill()
                process.join()
        for inbox in self.inboxes:
            inbox.cancel_join_thread()
            inbox.close()
        for box in self.gift_boxes:
            box.close()


# -- the coordinator ------------------------------------------------------------------------------


class _Stop(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def run_sharded(system: Any, backend: Any, handed: dict, *, count_actions: bool,
                max_depth: int | None, deadline: float | None, max_states: int | None,
                should_stop: Callable[[], str | None] | None,
                on_progress: Callable[[Any], None] | None, progress_interval: float,
                reachable: dict[str, Callable[[Any], bool]] | None) -> Any:
    """Continue a search handed over by ``explore`` after some levels, on ``backend``'s shards.

    ``handed``: the one-process search so far (``explore._hand_off`` builds it). Returns an
    ``explore.Result`` with the figures one worker would have reported."""
    from raftspec.checker.explore import Progress, Result, replay

    # a backend's own start-up outside the search (starting Ray: seconds) is not its time
    started = handed["started"] + getattr(backend, "startup_s", 0.0)
    entered = time.perf_counter()
    stats_path = os.environ.get(STATS_ENV)
    coordinator: dict[str, Any] = {
        "one_process_s": handed.get("handed_at", entered) - handed["started"],
        "start_workers_s": entered - handed.get("handed_at", entered),
        "one_process_generated": handed["generated"],
        "levels": []}
    shards = backend.shards
    fingerprints, parents = handed["fingerprints"], handed["parents"]
    init_fps = {fingerprints[i] for i in range(len(fingerprints)) if parents[i] == -1}
    own_fps = [array("q") for _ in range(shards)]
    own_parents = [array("q") for _ in range(shards)]
    for i, fp in enumerate(fingerprints):
        s = owner(fp, shards)
        own_fps[s].append(fp)
        p = parents[i]
        own_parents[s].append(0 if p == -1 else fingerprints[p])
    frontiers: list[list] = [[] for _ in range(shards)]
    for rank, (state, index) in enumerate(zip(handed["level"], handed["level_index"],
                                              strict=True)):
        fp = fingerprints[index]
        frontiers[owner(fp, shards)].append((rank, fp, state))
    frontier_size = len(handed["level"])
    distinct = len(fingerprints)
    generated = handed["generated"]
    per_action: Counter[str] = Counter(handed["per_action"])
    depth = handed["depth"]
    pending = list(handed["pending"])
    witness_fps = {name: fingerprints[index] for name, index in handed["reached"].items()}
    del fingerprints, parents

    watch_stop = deadline is not None or should_stop is not None
    next_report = time.perf_counter() + progress_interval

    def watch() -> None:
        nonlocal next_report
        now = time.perf_counter()
        if watch_stop:
            if deadline is not None and now >= deadline:
                raise _Stop("deadline reached")
            if should_stop is not None and (reason := should_stop()):
                raise _Stop(reason)
        if on_progress is not None and now >= next_report:
            next_report = now + progress_interval
            gen, new = backend.progress()
            on_progress(Progress(distinct + new, generated + gen, new, depth, now - started))

    def chain(fp: int) -> list[int]:
        out = [fp]
        while fp not in init_fps:
            fp = backend.call(owner(fp, shards), "parent", fp)
            out.append(fp)
        out.reverse()
        return out

    def witnesses() -> dict[str, Any]:
        if reachable is None:
            return {}
        return {"witnesses": {name: replay(system, chain(fp))
                              for name, fp in witness_fps.items()},
                "unreached": tuple(name for name in reachable if name not in witness_fps)}

    def write_stats() -> None:
        """The workers' and the coordinator's time (``STATS_ENV``), while the workers live."""
        if stats_path is None:
            return
        workers = backend.call_all("stats", [None] * shards) if hasattr(backend, "pids") \
            else []
        with open(stats_path, "w") as f:
            json.dump({"shards": shards, "coordinator": coordinator, "workers": workers}, f)

    complete, stopped = True, None
    all_keys: list[bytes] | None = None   # the last level's keys, per shard, before moves
    moves: list[tuple[int, int, int]] = []
    between = (time.perf_counter(), time.thread_time())
    try:
        spill_from = handed.get("spill_from")
        backend.call_all("load", [(own_fps[s], own_parents[s], frontiers[s], spill_from)
                                  for s in range(shards)])
        del frontiers, own_fps, own_parents
        coordinator["load_s"] = time.perf_counter() - entered
        while frontier_size:
            if max_depth is not None and depth + 1 >= max_depth:
                depth += 1
                complete = False
                break
            depth += 1
            backend.reset_progress()
            sent = time.perf_counter()
            if stats_path is not None:
                coordinator["levels"].append({
                    "depth": depth, "states": frontier_size,
                    "between_wall": sent - between[0],
                    "between_cpu": time.thread_time() - between[1]})
            # one round a level: even out and rank the new level, expand it, arbitrate, check
            reports = backend.call_all("level", [(pending, all_keys, moves)] * shards, watch)
            between = (time.perf_counter(), time.thread_time())
            if stats_path is not None:
                coordinator["levels"][-1]["level_wall"] = between[0] - sent
            events = []
            for s, rep in enumerate(reports):
                if rep["step_violation"] is not None:
                    key, name = rep["step_violation"]
                    events.append((key, 0, name, s))
                if rep["violation"] is not None:
                    key, name, fp = rep["violation"]
                    events.append((key, 1, name, fp))
            level_new = sum(rep["new"] for rep in reports)
            all_keys = [rep["keys"] for rep in reports]
            if max_states is not None and distinct + level_new >= max_states:
                events.append((_kth_key(all_keys, max_states - distinct), 2, None, None))
            found: dict[str, tuple[int, int]] = {}
            for rep in reports:
                for name, (key, fp) in rep["reached"].items():
                    if name not in found or key < found[name][0]:
                        found[name] = (key, fp)
            if events:
                key, kind, name, where = min(events, key=lambda e: (e[0], e[1]))
                prefixes = backend.call_all("prefix", [(key, kind != 0)] * shards)
                generated += sum(p["generated"] for p in prefixes) + (key & KEY_MASK) + 1
                distinct += sum(p["new"] for p in prefixes)
                for p in prefixes:
                    per_action.update(p["per_action"])
                for rname, (rkey, fp) in found.items():
                    if rkey < key or (kind == 2 and rkey == key):
                        witness_fps[rname] = fp
                if kind == 2:
                    raise _Stop(f"max_states {max_states:,} reached")
                if kind == 0:
                    parent_fp, action, nxt = backend.call(where, "step_violation", None)
                    trace = replay(system, chain(parent_fp))
                    trace.append((action, nxt))
                else:
                    trace = replay(system, chain(where))
                write_stats()
                return Result(
                    distinct_states=distinct, states_generated=generated, depth=len(trace),
                    seconds=time.perf_counter() - started, violated=name, trace=trace,
                    per_action=dict(per_action) if count_actions else None, **witnesses())
            distinct += level_new
            generated += sum(rep["generated"] for rep in reports)
            for rep in reports:
                per_action.update(rep["per_action"])
            for rname, (_, fp) in found.items():
                witness_fps[rname] = fp
                pending.remove(rname)
            frontier_size = level_new
            moves = balance([rep["new"] for rep in reports])
            if on_progress is not None:
                on_progress(Progress(distinct, generated, frontier_size, depth,
                                     time.perf_counter() - started))
    except (_Stop, KeyboardInterrupt, WorkerError) as stop:
        if isinstance(stop, WorkerError) and not stop.killed:
            raise   # a shard's own error (an exception in its code): not a stop
        complete = False
        if isinstance(stop, _Stop):
            stopped = stop.reason
        elif isinstance(stop, WorkerError):   # killed (the OOM killer, a user): no verdict
            stopped = str(stop)
        else:
            stopped = "interrupted"
        if isinstance(stop, _Stop) and stop.reason.startswith("max_states"):
            found_so_far = witnesses()   # the shards are idle and can answer
        else:
            # the shards are mid-level: each leaves it, and the paths to what the levels done
            # reached are rebuilt, as one worker reports them (unless a worker died or does not
            # answer, or a second Ctrl-C comes: then every reachability property is unknown)
            settled = False
            with contextlib.suppress(KeyboardInterrupt):
                settled = not isinstance(stop, WorkerError) and backend.settle()
            gen, new = backend.progress()   # the level in progress, as far as it got
            distinct += new
            generated += gen
            found_so_far = witnesses_or_none(reachable)
            if settled:
                with contextlib.suppress(KeyboardInterrupt, WorkerError):
                    found_so_far = witnesses()
            backend.close()
        return Result(distinct_states=distinct, states_generated=generated, depth=depth,
                      seconds=time.perf_counter() - started,
                      per_action=dict(per_action) if count_actions else None,
                      complete=False, stopped=stopped, **found_so_far)
    coordinator["total_s"] = time.perf_counter() - started
    write_stats()
    return Result(
        distinct_states=distinct, states_generated=generated, depth=depth,
        seconds=time.perf_counter() - started,
        per_action=dict(per_action) if count_actions else None,
        complete=complete, stopped=None if complete else "max_depth reached", **witnesses())


KEY_MASK = (1 << KEY_BITS) - 1


BALANCE_FROM = 500
"""Levels narrower than this are left as the shards hold them. At 5,000, tiny3's levels (all
narrower) were never evened out: the busier worker generated 2.9-4.9% more steps than the
mean, level after level; from 500, 0.8% (moving a state costs some 40 µs, expanding it more)."""
BALANCE_SLACK = 0.01
"""A shard holding more than its share by this fraction of the level gives the excess away."""


def balance(sizes: list[int]) -> list[tuple[int, int, int]]:
    """Moves (from shard, to shard, states) that even out the next level's shares.

    Each state is expanded where it was first generated, so a shard that held more states at
    one level tends to hold more at the next; the level is as slow as its largest share. A few
    per cent of a level, pickled once, is cheaper than waiting for the largest share."""
    total, shards = sum(sizes), len(sizes)
    if total < BALANCE_FROM or shards < 2:
        return []
    share = total // shards
    over = [[s, n - share] for s, n in enumerate(sizes) if n - share > BALANCE_SLACK * total]
    if not over:
        return []
    under = [[s, share - n] for s, n in enumerate(sizes) if n < share]
    moves = []
    for src_excess in over:
        for dst_room in under:
            count = min(src_excess[1], dst_room[1])
            if count > 0:
                moves.append((src_excess[0], dst_room[0], count))
                src_excess[1] -= count
                dst_room[1] -= count
    return moves


def witnesses_or_none(reachable: dict | None) -> dict:
    """When the shards cannot answer (``settle``): no witness paths, every property unknown."""
    if reachable is None:
        return {}
    return {"witnesses": {}, "unreached": tuple(reachable)}


def _kth_key(all_keys: list[bytes], k: int) -> int:
    """The k-th smallest key (1-based) over every shard's sorted keys."""
    import heapq

    arrays = []
    for raw in all_keys:
        a = array("q")
        a.frombytes(raw)
        arrays.append(a)
    for n, key in enumerate(heapq.merge(*arrays), start=1):
        if n == k:
            return key
    raise ValueError("fewer keys than asked")


class InlineBackend:
    """Every shard in this process, one after the other: the sharded algorithm without
    processes (for tests with many shards, and for profiling a shard's own cost)."""

    def __init__(self, system: Any, shards: int, count_actions: bool,
                 action_name: Callable[[Any], str],
                 reachable: dict[str, Callable[[Any], bool]] | None = None) -> None:
        self.shards = shards
        self.members = [Shard(system, me, shards, count_actions, action_name, reachable)
                        for me in range(shards)]

    def call(self, shard: int, command: str, arg: Any = None) -> Any:
        member = self.members[shard]
        if command == "parent":
            return member.parent_of(arg)
        if command == "step_violation":
            return member.violating_step()
        raise ValueError(command)

    def call_all(self, command: str, args: list[Any], watch: Callable[[], None] | None = None
                 ) -> list[Any]:
        if command == "load":
            return [m.load(*a) for m, a in zip(self.members, args, strict=True)]
        if command == "level":
            pending, all_keys, moves = args[0]
            for src, dst, count in moves:   # pickled, as if it crossed processes
                self.members[dst].take(pickle.loads(pickle.dumps(self.members[src].give(count))))
            if all_keys is not None:
                for m in self.members:
                    m.advance(all_keys)
            mail: list[list[tuple]] = [[] for _ in self.members]
            for m in self.members:
                m.expand(lambda dest, claims: mail[dest].append(claims), lambda: None)
                if watch is not None:
                    watch()
            for m, claims in zip(self.members, mail, strict=True):
                for batch in claims:
                    m.receive(batch)
            for m in self.members:
                for dest, award in enumerate(m.arbitrate()):
                    self.members[dest].accept(award)
            return [m.finish(pending) for m in self.members]
        if command == "prefix":
            return [m.prefix(*a) for m, a in zip(self.members, args, strict=True)]
        raise ValueError(command)

    def progress(self) -> tuple[int, int]:
        return (0, 0)

    def reset_progress(self) -> None:
        pass

    def settle(self) -> bool:
        return True   # a stop comes between two shards' steps: each is idle

    def close(self) -> None:
        pass
