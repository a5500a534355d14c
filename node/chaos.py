"""A randomized fault run against real node processes, Jepsen style: clients append unique
tokens while nodes are killed (a minority, or all at once), the leader is partitioned into a
minority, a node's disk stops taking writes, and every node-to-node datagram may be lost,
duplicated, delayed or reordered. At the end every acknowledged token must be read back exactly
once, each writer's tokens in the order they were acknowledged, and the committed prefixes of
all WALs must agree. The client history is written for the linearizability checker
(``raftspec.traces.lincheck``; the caller runs it: node/ does not import the checker).

Used by ``tests/node/test_node_chaos.py`` (about a minute) and ``benchmarks/fault_run.py``
(as long as you like; it prints the figures quoted in docs/cluster.md).
"""

from __future__ import annotations

import asyncio
import heapq
import json
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field

from raftspec.node.client import ClusterClient, History, Unavailable
from raftspec.node.storage import DiskLog
from raftspec.node.supervisor import LocalCluster

TOKEN = re.compile(r"<\d+\.\d+>")
FAULT_KINDS = ("kill_minority", "kill_all", "partition_leader", "disk_fail")


@dataclass
class Report:
    """What a run did and what it found; ``lost``, ``duplicated``, ``out_of_order`` and
    ``diverged`` must all be empty."""

    seconds: float = 0.0
    ops: Counter[str] = field(default_factory=Counter)      # "ok append", "info append", ...
    faults: Counter[str] = field(default_factory=Counter)
    disk_exits: int = 0                                     # nodes that stopped with status 3
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)
    not_linearizable: list[str] = field(default_factory=list)    # append_history_violations

    @property
    def acknowledged_writes(self) -> int:
        return self.ops["ok append"]

    def problems(self) -> list[str]:
        return ([f"lost {t}" for t in self.lost] + [f"duplicated {t}" for t in self.duplicated]
                + [f"out of order {t}" for t in self.out_of_order] + self.diverged
                + self.not_linearizable)


async def _workload(c: LocalCluster, history: History, stop: asyncio.Event, writers: int,
                    keys: int, report: Report, acked: dict[str, list[str]], op_timeout: float,
                    key_epoch_s: float) -> None:
    """Writers append unique tokens ``<writer.n>`` and read. The key names change every
    ``key_epoch_s`` seconds: linearizability is checked key by key, so this keeps each key's
    history (and its operations of unknown outcome) short however long the run."""
    t0 = time.monotonic()
    async with ClusterClient(c.cluster_arg.split(","), c.secret, try_timeout=0.3,
                             history=history) as client:

        async def writer(w: int) -> None:
            s = client.session()
            n = 0
            while not stop.is_set():
                n += 1
                epoch = int((time.monotonic() - t0) // key_epoch_s)
                key = f"k{epoch}.{(w * 7 + n) % keys}"
                f = "get" if n % 4 == 0 else "append"
                try:
                    if f == "get":
                        await s.call("get", key, timeout=op_timeout)
                    else:
                        v = f"<{w}.{n}>"
                        await s.call("append", key, v, timeout=op_timeout)
                        acked.setdefault(key, []).append(v)
                    report.ops[f"ok {f}"] += 1
                except Unavailable:
                    report.ops[f"{'info' if s.dead else 'fail'} {f}"] += 1
                    if s.dead:
                        s = client.session()
                await asyncio.sleep(0.002)

        await asyncio.gather(*(writer(w) for w in range(writers)))


def _restart_dead(c: LocalCluster, report: Report) -> None:
    for i in sorted(c.addrs):
        if not c.alive(i):
            p = c.procs.get(i)
            if p is not None and p.returncode == 3:
                report.disk_exits += 1
            c.start([i])


def _leader(c: LocalCluster) -> int | None:
    ls = c.leaders()
    return max(ls, key=ls.get) if ls else None


def _fault(c: LocalCluster, kind: str, rng: random.Random, report: Report) -> None:
    """Inject one fault, let it last a while, then repair it (blocking: run in a thread)."""
    n = len(c.addrs)
    ids = sorted(c.addrs)
    report.faults[kind] += 1
    if kind == "kill_minority":
        for i in rng.sample(ids, rng.randint(1, (n - 1) // 2)):
            c.kill(i)
        time.sleep(rng.uniform(0.3, 1.5))
    elif kind == "kill_all":
        for i in ids:
            c.kill(i)
        time.sleep(rng.uniform(0.2, 0.8))
    elif kind == "partition_leader":
        lead = _leader(c) or rng.choice(ids)
        others = [i for i in ids if i != lead]
        rng.shuffle(others)
        minority = [lead] + others[:rng.randint(0, (n - 1) // 2 - 1)]
        c.partition(minority, [i for i in ids if i not in minority])
        time.sleep(rng.uniform(0.8, 2.0))
        c.heal()
    elif kind == "disk_fail":
        victim = rng.choice([i for i in ids if c.alive(i)] or ids)
        c.set_disk_fail(victim, True)
        time.sleep(rng.uniform(0.8, 2.0))          # the disk stays bad this long
        if c.alive(victim):                         # it wrote nothing meanwhile
            c.set_disk_fail(victim, False)
    _restart_dead(c, report)


async def run_faults(c: LocalCluster, seconds: float, seed: int, history_path: str,
                     writers: int = 4, keys: int = 4,
                     network: str = "loss=0.1,dup=0.1,delay=0-5ms,reorder=0.1",
                     op_timeout: float = 3.0, key_epoch_s: float = 10.0) -> Report:
    """Run the workload for ``seconds`` under a seeded fault schedule, then heal everything,
    read every key back and compare with what was acknowledged."""
    rng = random.Random(seed)
    report = Report()
    acked: dict[str, list[str]] = {}
    history = History(history_path)
    t0 = time.monotonic()
    c.set_faults(network)
    stop = asyncio.Event()
    task = asyncio.create_task(_workload(c, history, stop, writers, keys, report, acked,
                                         op_timeout, key_epoch_s))
    schedule = list(FAULT_KINDS)
    rng.shuffle(schedule)                           # every kind at least once, then at random
    while time.monotonic() - t0 < seconds:
        await asyncio.sleep(rng.uniform(0.3, 1.2))
        kind = schedule.pop() if schedule else rng.choice(FAULT_KINDS)
        await asyncio.to_thread(_fault, c, kind, rng, report)
    await asyncio.to_thread(_restart_dead, c, report)
    c.heal()
    c.set_faults("none")
    await asyncio.sleep(1.0)
    stop.set()
    await task
    history.close()
    c.wait_leader(timeout=30)
    c.wait_for(lambda: len({(s["commit_index"], s["last_log_index"])
                            for s in c.statuses().values() if s}) == 1
               and all(c.statuses().values()), 60, "all nodes converge")
    with open(history_path, encoding="utf-8") as f:
        keys = sorted({json.loads(line)["key"] for line in f})
    final = await _read_back(c, keys)
    _verify(acked, final, report)
    report.not_linearizable = append_history_violations(history_path, final)
    commits = {i: s["commit_index"] for i, s in c.statuses().items() if s}
    c.stop()
    report.diverged = committed_logs_disagree(c, commits)
    report.seconds = time.monotonic() - t0
    return report


async def _read_back(c: LocalCluster, keys: list[str]) -> dict[str, str]:
    async with ClusterClient(c.cluster_arg.split(","), c.secret) as client:
        s = client.session()
        return {k: await s.call("get", k, timeout=30) for k in keys}


def _verify(acked: dict[str, list[str]], final: dict[str, str], report: Report) -> None:
    for key, values in acked.items():
        seen = Counter(TOKEN.findall(final[key]))
        report.duplicated += [f"{key}:{t}" for t, k in seen.items() if k > 1]
        report.lost += [f"{key}:{v}" for v in values if v not in seen]
        order = {t: k for k, t in enumerate(TOKEN.findall(final[key]))}
        last: dict[str, int] = {}
        for v in values:                     # one writer's tokens keep their ack order
            w = v[1:].split(".")[0]
            if v in order:
                if order[v] < last.get(w, -1):
                    report.out_of_order.append(f"{key}:{v}")
                last[w] = order[v]


def append_history_violations(history_path: str, final: dict[str, str]) -> list[str]:
    """A second, independent linearizability check, exact for this workload: every append
    writes a unique token, so the final value of a key fixes the order of its appends, and
    a get that read n tokens sits right after the n-th. The history is linearizable iff every
    get read a prefix of the final value, no token appears that was not appended, and no
    operation that finished before another began sits after it in that order. Linear time
    (lincheck's general search can run out of memory on a few hundred operations of a key)."""
    ops: dict[str, list[tuple[int, float, str, str | None, str]]] = {}
    open_ops: dict[int, tuple[int, str, str, str | None]] = {}
    with open(history_path, encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            if o["type"] == "invoke":
                open_ops[o["process"]] = (o["time"], o["f"], o["key"], o["value"])
                continue
            call, fn, key, arg = open_ops.pop(o["process"])
            if o["type"] == "fail":
                continue
            ret = float("inf") if o["type"] == "info" else o["time"]
            ops.setdefault(key, []).append((call, ret, fn, arg if fn != "get" else o["value"],
                                            o["type"]))
    for call, fn, key, arg in open_ops.values():      # never answered: unknown outcome
        if fn != "get":
            ops.setdefault(key, []).append((call, float("inf"), fn, arg, "info"))
    out = []
    for key, history in ops.items():
        value = final.get(key, "")
        tokens = TOKEN.findall(value)
        pos = {t: i + 1 for i, t in enumerate(tokens)}
        appended = {arg for _, _, fn, arg, _ in history if fn == "append"}
        out += [f"{key}: {t} was never appended" for t in tokens if t not in appended]
        points = []                                   # (call, ret, position)
        for call, ret, fn, arg, typ in history:
            if fn == "get":
                if arg is None or not value.startswith(arg):
                    out.append(f"{key}: a get read {arg!r}, not a prefix of the final value")
                    continue
                points.append((call, ret, (len(TOKEN.findall(arg)), 1)))
            elif arg in pos:
                points.append((call, ret, (pos[arg], 0)))
            elif typ == "ok":
                out.append(f"{key}: acknowledged {arg} is not in the final value")
        done: list[tuple[float, tuple[int, int]]] = []     # heap of (ret, position)
        best = (0, 0)
        for call, ret, p in sorted(points):
            while done and done[0][0] < call:
                best = max(best, heapq.heappop(done)[1])
            if best > p:
                out.append(f"{key}: an operation that ended before another began is "
                           f"ordered after it ({best} > {p})")
            heapq.heappush(done, (ret, p))
    return out


def committed_logs_disagree(c: LocalCluster, commits: dict[int, int]) -> list[str]:
    """Index by index, the committed entries of every pair of WALs must be equal."""
    logs = {}
    for i in c.addrs:
        rec = DiskLog(os.path.join(c.data_dir, f"node-{i}")).load()
        base = rec.snapshot.index if rec.snapshot else 0
        logs[i] = {base + k + 1: (e.term, repr(e.data)) for k, e in enumerate(rec.entries)}
    out = []
    for a in sorted(logs):
        for b in sorted(logs):
            upto = min(commits.get(a, 0), commits.get(b, 0))
            out += [f"nodes {a} and {b} differ at committed index {idx}"
                    for idx in range(1, upto + 1)
                    if idx in logs[a] and idx in logs[b] and logs[a][idx] != logs[b][idx]]
    return out
