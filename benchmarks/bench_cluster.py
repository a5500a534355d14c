"""3-node cluster on loopback: raftspec's node/ next to PySyncObj, same workload, same run.

    python benchmarks/bench_cluster.py [--repeat 3] [--ops 2000] [--pipelined-ops 40000]
                                       [--clients 256] [--elections 5] [--trace]

Workloads, each repeated ``--repeat`` times on one running cluster (the table shows the median
run, and the range):
- sequential: one client, one write at a time (latency median and p99);
- pipelined: ``--clients`` sessions with one outstanding write each, multiplexed on one client
  process (throughput);
- election: SIGKILL the leader, time until a surviving node reports itself leader (polled every
  10 ms, so up to 10 ms coarse).

raftspec nodes fsync every batch before sending anything that depends on it, and are driven by
a separate client process over UDP. PySyncObj (TCP) is driven from inside one of its node
processes, as its API requires, in two configurations: its default in-memory journal, and its
file journal (``journalFile``: an mmap'd file that PySyncObj 0.3 never fsyncs; it has no fsync
option, so no configuration of it is durable like ours). Its sequential phase is shorter
(``--pysyncobj-ops``): each synchronous call waits for its ticks, ~50-100 ms.
CPU seconds are per 1,000 pipelined writes, over all three node processes and the client: on a
shared machine they say more than wall-clock figures. Targets (issue 3): median <= 2 ms,
p99 <= 10 ms, >= 20,000 ops/s, election <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from raftspec.node.client import ClusterClient  # noqa: E402
from raftspec.node.supervisor import LocalCluster, free_base_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def proc_cpu(pids: list[int]) -> float:
    """utime + stime of the given processes, in seconds (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / TICK


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


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


def _election(c: LocalCluster) -> float:
    old = c.wait_leader()
    rest = [i for i in c.addrs if i != old]
    c.kill(old)
    t = time.monotonic()
    while time.monotonic() - t < 20:
        if any(i != old for i in c.leaders(rest)):
            break
        time.sleep(0.01)
    took = time.monotonic() - t
    c.start([old])
    c.wait_for(lambda: c.status(old), 10, "restart")
    c.wait_leader()
    time.sleep(0.3)
    return took


def bench_raftspec(args: argparse.Namespace, trace: bool = False) -> dict[str, Any]:
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as d, \
            LocalCluster(3, d, trace_dir=os.path.join(d, "traces") if trace else None) as c:
        c.start()
        c.wait_leader()
        addrs = c.cluster_arg.split(",")
        for _ in range(args.repeat):
            pids = [p.pid for p in c.procs.values()]
            lat = asyncio.run(_raftspec_sequential(addrs, args.ops))
            cpu0, me0 = proc_cpu(pids), self_cpu()
            thr = asyncio.run(_raftspec_pipelined(addrs, args.pipelined_ops, args.clients))
            nodes, client = proc_cpu(pids) - cpu0, self_cpu() - me0
            runs.append({"median_ms": statistics.median(lat) * 1e3,
                         "p99_ms": pct(lat, 0.99) * 1e3, "ops_s": thr,
                         "cpu_per_kop": (nodes + client) / args.pipelined_ops * 1e3,
                         "client_cpu_per_kop": client / args.pipelined_ops * 1e3})
        elections = [_election(c) for _ in range(args.elections)] if not trace else []
    out = summarize(runs)
    out["election_s"] = statistics.median(elections) if elections else float("nan")
    out["election_max_s"] = max(elections) if elections else float("nan")
    return out


def summarize(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Median over repeats per metric, and each metric's (min, max)."""
    out: dict[str, Any] = {}
    for key in runs[0]:
        xs = [r[key] for r in runs]
        out[key] = statistics.median(xs)
        out[key + "_range"] = (min(xs), max(xs))
    return out


# ---------------------------------------------------------------- PySyncObj
PYSYNCOBJ_NODE = r"""
import json, os, statistics, sys, threading, time
from pysyncobj import SyncObj, SyncObjConf
from pysyncobj.batteries import ReplDict
me, others, role, journal = sys.argv[1], sys.argv[2].split(','), sys.argv[3], sys.argv[4]
n, npipe, repeat = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
pids = [os.getpid()] + [int(p) for p in sys.argv[8].split(',') if p]
conf = SyncObjConf(journalFile=journal) if journal != '-' else SyncObjConf()
d = ReplDict()
o = SyncObj(me, others, conf, consumers=[d])
if role != 'driver':
    while True:
        time.sleep(1)
def cpu():
    total = 0
    for pid in pids:
        with open('/proc/%d/stat' % pid) as f:
            fs = f.read().rsplit(')', 1)[1].split()
        total += int(fs[11]) + int(fs[12])
    return total / os.sysconf('SC_CLK_TCK')
while o._getLeader() is None:
    time.sleep(0.05)
for i in range(50):
    d.set('w%d' % i, 'x', sync=True)
runs = []
for r in range(repeat):
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
    c0 = cpu()
    t = time.perf_counter()
    for i in range(npipe):
        d.set('p%d' % (i % 10), 'v', callback=cb)
    done.wait(120)
    thr = (npipe - left[0]) / (time.perf_counter() - t)
    runs.append({"lat": lat, "thr": thr, "cpu": cpu() - c0, "lost": left[0]})
print(json.dumps(runs), flush=True)
"""


def bench_pysyncobj(args: argparse.Namespace, file_journal: bool) -> dict[str, Any] | None:
    try:
        import pysyncobj  # noqa: F401
    except ImportError:
        return None
    base = free_base_port(3)
    addrs = [f"127.0.0.1:{base + k}" for k in range(3)]
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory() as d:
        try:
            for k in (1, 2, 0):                       # members first: the driver reads their CPU
                others = ",".join(a for a in addrs if a != addrs[k])
                journal = os.path.join(d, f"journal-{k}") if file_journal else "-"
                member_pids = ",".join(str(p.pid) for p in procs) if k == 0 else ""
                with open(os.path.join(d, f"stderr-{k}"), "w") as err:
                    procs.append(subprocess.Popen(
                        [sys.executable, "-c", PYSYNCOBJ_NODE, addrs[k], others,
                         "driver" if k == 0 else "member", journal, str(args.pysyncobj_ops),
                         str(args.pipelined_ops), str(args.repeat), member_pids],
                        stdout=subprocess.PIPE if k == 0 else subprocess.DEVNULL,
                        stderr=err, text=True))
            out, _ = procs[-1].communicate(timeout=1800)
            lines = out.strip().splitlines()
            raw = json.loads(lines[-1]) if lines else None
        finally:
            for p in procs:
                p.kill()
                p.wait()
        errors = 0
        for k in range(3):
            with open(os.path.join(d, f"stderr-{k}")) as f:
                text = f.read()
            errors += text.count("Traceback")
            if raw is None and k == 0:
                print(f"PySyncObj driver failed (exit {procs[-1].returncode}):\n{text[-2000:]}",
                      file=sys.stderr)
    if raw is None:
        return None
    if errors:
        print(f"PySyncObj ({'file journal' if file_journal else 'memory'}): its nodes logged "
              f"{errors} tracebacks of their own", file=sys.stderr)
    runs = [{"median_ms": statistics.median(r["lat"]) * 1e3, "p99_ms": pct(r["lat"], 0.99) * 1e3,
             "ops_s": r["thr"], "cpu_per_kop": r["cpu"] / args.pipelined_ops * 1e3,
             "client_cpu_per_kop": float("nan")} for r in raw]
    lost = sum(r["lost"] for r in raw)
    if lost:
        print(f"PySyncObj ({'file journal' if file_journal else 'memory'}): {lost} pipelined "
              "writes never completed within 120 s (counted as not done)", file=sys.stderr)
    res = summarize(runs)
    res["election_s"] = res["election_max_s"] = float("nan")
    return res


# ---------------------------------------------------------------- report
ROWS = [("sequential write median (ms)", "median_ms", "<= 2"),
        ("sequential write p99 (ms)", "p99_ms", "<= 10"),
        ("pipelined writes (ops/s)", "ops_s", ">= 20000"),
        ("CPU s per 1,000 pipelined writes", "cpu_per_kop", ""),
        ("election after leader kill (s)", "election_s", "<= 1")]


def fmt(res: dict[str, Any] | None, key: str) -> str:
    if res is None or res.get(key) != res.get(key):
        return "n/a"
    v = res[key]
    lo, hi = res.get(key + "_range", (v, v))
    text = f"{v:,.0f}" if v >= 1000 else f"{v:.3g}"
    if lo != hi:
        text += f" ({lo:,.0f}–{hi:,.0f})" if v >= 1000 else f" ({lo:.3g}–{hi:.3g})"
    return text


def table(cols: list[tuple[str, dict[str, Any] | None]]) -> str:
    ours = cols[0][1]
    base = cols[1][1] if len(cols) > 1 else None
    head = "| metric | " + " | ".join(n for n, _ in cols) + " | ratio ours/PySyncObj | target |"
    lines = [head, "|" + "---|" * (len(cols) + 3)]
    for name, key, target in ROWS:
        a, b = (ours or {}).get(key, float("nan")), (base or {}).get(key, float("nan"))
        ratio = f"{a / b:.2g}x" if a == a and b == b and b else "n/a"
        lines.append(f"| {name} | " + " | ".join(fmt(r, key) for _, r in cols)
                     + f" | {ratio} | {target} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each workload")
    ap.add_argument("--ops", type=int, default=2000, help="sequential writes per run")
    ap.add_argument("--pysyncobj-ops", type=int, default=200,
                    help="PySyncObj sequential writes per run (each waits for ticks)")
    ap.add_argument("--pipelined-ops", type=int, default=40000, help="pipelined writes per run")
    ap.add_argument("--clients", type=int, default=256, help="outstanding requests")
    ap.add_argument("--elections", type=int, default=5, help="leader kills to time")
    ap.add_argument("--trace", action="store_true",
                    help="also run raftspec with --trace-dir, to show the tracing cost")
    ap.add_argument("--no-pysyncobj", action="store_true", help="raftspec only")
    args = ap.parse_args()
    t0 = time.time()
    load0 = os.getloadavg()
    cols: list[tuple[str, dict[str, Any] | None]] = [("raftspec node", bench_raftspec(args))]
    if not args.no_pysyncobj:
        cols.append(("PySyncObj (memory)", bench_pysyncobj(args, file_journal=False)))
        cols.append(("PySyncObj (file journal)", bench_pysyncobj(args, file_journal=True)))
    if args.trace:
        cols.append(("raftspec, traced", bench_raftspec(args, trace=True)))
    print(table(cols))
    print(f"\n{os.cpu_count()} CPUs; load average {load0[0]:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end; {time.time() - t0:.0f} s; medians of "
          f"{args.repeat} runs (range in parentheses); {args.clients} outstanding requests; "
          f"raftspec client CPU per 1,000 pipelined writes "
          f"{cols[0][1]['client_cpu_per_kop']:.3g} s (included above); election max "
          f"{cols[0][1]['election_max_s']:.2f} s")
    if len(cols) > 1 and cols[1][1] is None:
        print("PySyncObj: not installed (pip install -e '.[bench]') or its driver failed")


if __name__ == "__main__":
    main()
