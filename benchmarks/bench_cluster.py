"""3-node cluster on loopback: raftspec's node/ next to PySyncObj, same workload, same run.

    python benchmarks/bench_cluster.py [--ops 2000] [--pipelined-ops 20000] [--clients 256]

Workloads: sequential single-client writes (latency median / p99), pipelined writes (many
outstanding requests, throughput) and election time after SIGKILL of the leader. raftspec nodes
fsync every batch and are driven by an external client process over UDP; PySyncObj (default
config: in-memory journal, no fsync, TCP) is driven from inside one of its node processes, as its
API requires. Targets (issue 3): median <= 2 ms, p99 <= 10 ms, >= 20,000 ops/s, election <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from node.client import ClusterClient  # noqa: E402
from node.supervisor import LocalCluster, free_base_port  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


# ---------------------------------------------------------------- raftspec
async def _raftspec_sequential(addrs: list[str], n: int) -> list[float]:
    async with ClusterClient(addrs) as c:
        s = c.session()
        for i in range(50):                                   # warm up, find the leader
            await s.call("put", f"w{i}", "x")
        lat = []
        for i in range(n):
            t = time.perf_counter()
            await s.call("put", f"k{i % 100}", f"v{i}")
            lat.append(time.perf_counter() - t)
        return lat


async def _raftspec_pipelined(addrs: list[str], n: int, clients: int) -> float:
    async with ClusterClient(addrs, try_timeout=2.0) as c:
        await c.session().call("put", "warm", "x")
        per = n // clients

        async def one() -> None:
            s = c.session()
            for i in range(per):
                await s.call("put", f"p{s.cid[:4]}{i % 10}", "v", timeout=30)

        t = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(clients)))
        return per * clients / (time.perf_counter() - t)


def _pipelined_processes(addrs: list[str], n: int, clients: int, procs: int) -> float:
    """Run the pipelined workload in ``procs`` client processes; total ops/s."""
    code = ("import asyncio,sys,time;sys.path.insert(0,%r);"
            "from benchmarks.bench_cluster import _raftspec_pipelined as p;"
            "print(asyncio.run(p(%r,%d,%d)))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    t = time.perf_counter()
    ps = [subprocess.Popen([sys.executable, "-c", code % (root, addrs, n // procs,
                                                          clients // procs)],
                           stdout=subprocess.PIPE, text=True, cwd=root) for _ in range(procs)]
    for p in ps:
        p.communicate(timeout=300)
    return (n // procs) * procs / (time.perf_counter() - t)


def bench_raftspec(args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d, LocalCluster(3, d) as c:
        c.start()
        c.wait_leader()
        addrs = c.cluster_arg.split(",")
        lat = asyncio.run(_raftspec_sequential(addrs, args.ops))
        thr = asyncio.run(_raftspec_pipelined(addrs, args.pipelined_ops, args.clients))
        thr2 = _pipelined_processes(addrs, args.pipelined_ops, args.clients, 2)
        elections = []
        for _ in range(args.elections):
            old = c.wait_leader()
            c.kill(old)
            t = time.monotonic()
            c.wait_for(lambda old=old: any(i != old for i in c.leaders()), 20, "new leader")
            elections.append(time.monotonic() - t)
            c.start([old])
            c.wait_for(lambda old=old: c.status(old), 10, "restart")
            time.sleep(0.5)
    return {"median_ms": statistics.median(lat) * 1e3, "p99_ms": pct(lat, 0.99) * 1e3,
            "ops_s": max(thr, thr2), "ops_s_1proc": thr, "ops_s_2proc": thr2,
            "election_s": statistics.median(elections)}


# ---------------------------------------------------------------- PySyncObj
PYSYNCOBJ_NODE = r"""
import sys, time, threading, statistics, json
from pysyncobj import SyncObj, SyncObjConf
from pysyncobj.batteries import ReplDict
me, others, role = sys.argv[1], sys.argv[2].split(','), sys.argv[3]
n, npipe = int(sys.argv[4]), int(sys.argv[5])
d = ReplDict()
o = SyncObj(me, others, SyncObjConf(), consumers=[d])
if role != 'driver':
    while True:
        time.sleep(1)
while o._getLeader() is None:
    time.sleep(0.05)
for i in range(50):
    d.set('w%d' % i, 'x', sync=True)
lat = []
for i in range(n):
    t = time.perf_counter()
    d.set('k%d' % (i % 100), 'v%d' % i, sync=True)
    lat.append(time.perf_counter() - t)
done = threading.Event()
left = [npipe]
lock = threading.Lock()
def cb(res, err):
    with lock:
        left[0] -= 1
        if left[0] == 0:
            done.set()
t = time.perf_counter()
for i in range(npipe):
    d.set('p%d' % (i % 10), 'v', callback=cb)
done.wait(300)
thr = npipe / (time.perf_counter() - t)
print(json.dumps({"lat": lat, "thr": thr}), flush=True)
"""


def bench_pysyncobj(args: argparse.Namespace) -> dict[str, float] | None:
    try:
        import pysyncobj  # noqa: F401
    except ImportError:
        return None
    import json
    base = free_base_port(3)
    addrs = [f"127.0.0.1:{base + k}" for k in range(3)]
    procs = []
    try:
        for k in range(3):
            others = ",".join(a for a in addrs if a != addrs[k])
            procs.append(subprocess.Popen(
                [sys.executable, "-c", PYSYNCOBJ_NODE, addrs[k], others,
                 "driver" if k == 0 else "member", str(args.ops), str(args.pipelined_ops)],
                stdout=subprocess.PIPE if k == 0 else subprocess.DEVNULL, text=True))
        out, _ = procs[0].communicate(timeout=600)
        res = json.loads(out.strip().splitlines()[-1])
    finally:
        for p in procs:
            p.kill()
            p.wait()
    lat = res["lat"]
    return {"median_ms": statistics.median(lat) * 1e3, "p99_ms": pct(lat, 0.99) * 1e3,
            "ops_s": res["thr"], "election_s": float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", type=int, default=2000, help="sequential writes")
    ap.add_argument("--pipelined-ops", type=int, default=20000, help="pipelined writes")
    ap.add_argument("--clients", type=int, default=256, help="outstanding requests")
    ap.add_argument("--elections", type=int, default=5, help="leader kills to time")
    args = ap.parse_args()
    ours = bench_raftspec(args)
    theirs = bench_pysyncobj(args)
    rows = [("sequential write median (ms)", "median_ms", "<= 2"),
            ("sequential write p99 (ms)", "p99_ms", "<= 10"),
            ("pipelined writes (ops/s)", "ops_s", ">= 20000"),
            ("election after leader kill (s)", "election_s", "<= 1")]
    print("| metric | raftspec node | PySyncObj | ratio | target |\n|---|---|---|---|---|")
    for name, key, target in rows:
        a = ours[key]
        b = theirs[key] if theirs else float("nan")
        ratio = a / b if theirs and b == b and b else float("nan")
        print(f"| {name} | {a:.3g} | {b:.3g} | {ratio:.2g}x | {target} |")
    print(f"\npipelined detail: 1 client process {ours['ops_s_1proc']:.0f} ops/s, "
          f"2 client processes {ours['ops_s_2proc']:.0f} ops/s; {os.cpu_count()} CPUs")
    if theirs is None:
        print("PySyncObj not installed: pip install -e '.[bench]'")


if __name__ == "__main__":
    main()
