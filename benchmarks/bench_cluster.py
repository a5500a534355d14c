"""3-node cluster on loopback: raftspec's node/ next to PySyncObj, same workload, same run.

    python benchmarks/bench_cluster.py [--repeat 3] [--ops 2000] [--pipelined-ops 40000]
                                       [--clients 256] [--elections 5] [--trace]
                                       [--pysyncobj-ops 200] [--pysyncobj-wait 120]

Workloads, each repeated ``--repeat`` times on one running cluster (the table shows the median
run, and the range):
- sequential: one client, one write at a time (latency median and p99);
- pipelined: ``--clients`` sessions with one outstanding write each, multiplexed on one client
  process (throughput);
- election: SIGKILL the leader, time until a surviving node reports itself leader (polled every
  10 ms, so up to 10 ms coarse).

raftspec nodes fsync every batch before sending anything that depends on it, and are driven by
a separate client process over UDP. PySyncObj (TCP) is driven from inside its leader's process,
as its API requires, with its default in-memory journal and with its file journal
(``journalFile``: an mmap'd file that PySyncObj 0.3 never fsyncs; it has no fsync option, so no
configuration of it is durable like ours). Each is run twice, as its SyncObjConf documents the
trade-off: ``appendEntriesUseBatch=False`` ("improve single request speed": each command is sent
at once) and ``True`` (its default, "improve overall performance": entries wait for the 100 ms
AppendEntries timer). Each row shows the better setting among those whose writes all completed,
and names it. Its pipelined phase issues all ``--pipelined-ops`` writes with callbacks (its
asynchronous API) and waits for every callback (at most ``--pysyncobj-wait`` s); writes that
failed (by reason) or got no callback are reported, and a row whose writes did not all complete
gets no ratio. Its sequential phase is shorter (``--pysyncobj-ops``).
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
# Every node process runs this; the one that is leader once the cluster has formed drives the
# workload (PySyncObj's API is in-process: a write issued on a follower is forwarded to the
# leader over one more TCP hop, which raftspec's client does not pay either).
PYSYNCOBJ_NODE = r"""
import json, os, sys, threading, time
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf
from pysyncobj.batteries import ReplDict
me, others, journal, batch = sys.argv[1], sys.argv[2].split(','), sys.argv[3], sys.argv[4] == '1'
n, npipe, repeat, wait_s = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), float(sys.argv[8])
pids_file, out_file = sys.argv[9], sys.argv[10]
kw = {'appendEntriesUseBatch': batch}
if journal != '-':
    kw['journalFile'] = journal
d = ReplDict()
o = SyncObj(me, others, SyncObjConf(**kw), consumers=[d])
REASON = {v: k for k, v in vars(FAIL_REASON).items() if not k.startswith('_')}
while o._getLeader() is None:
    time.sleep(0.05)
time.sleep(0.5)                       # let a split first election settle
if o._getLeader() != o.selfNode:
    while True:
        time.sleep(1)
while not os.path.exists(pids_file):
    time.sleep(0.05)
with open(pids_file) as f:
    pids = [int(p) for p in f.read().split(',')]
def cpu():
    total = 0
    for pid in pids:
        with open('/proc/%d/stat' % pid) as f:
            fs = f.read().rsplit(')', 1)[1].split()
        total += int(fs[11]) + int(fs[12])
    return total / os.sysconf('SC_CLK_TCK')
for i in range(50):
    d.set('w%d' % i, 'x', sync=True, timeout=10)
runs = []
for r in range(repeat):
    lat, seq_failed = [], {}
    for i in range(n):
        t = time.perf_counter()
        try:
            d.set('k%d' % (i % 100), 'v%d' % i, sync=True, timeout=10)
            lat.append(time.perf_counter() - t)
        except Exception as e:      # SyncObjException: its reason, or the timeout
            seq_failed[repr(e)] = seq_failed.get(repr(e), 0) + 1
    lock = threading.Lock()
    done = threading.Event()
    state = {'left': npipe, 'failed': {}}
    def cb(res, err):
        with lock:
            if err != FAIL_REASON.SUCCESS:
                name = REASON.get(err, str(err))
                state['failed'][name] = state['failed'].get(name, 0) + 1
            state['left'] -= 1
            if state['left'] == 0:
                done.set()
    c0 = cpu()
    t = time.perf_counter()
    for i in range(npipe):
        d.set('p%d' % (i % 10), 'v', callback=cb)
    issued = time.perf_counter()
    done.wait(wait_s)
    took = time.perf_counter() - t
    with lock:
        left, failed = state['left'], dict(state['failed'])
    ok = npipe - left - sum(failed.values())
    runs.append({"lat": lat, "seq_failed": seq_failed, "thr": ok / took, "cpu": cpu() - c0,
                 "issue_s": issued - t, "pending": left, "failed": failed,
                 "leader": o._getLeader() == o.selfNode})
    if left:
        break                         # its callbacks would land in the next run's counts
with open(out_file + '.tmp', 'w') as f:
    json.dump(runs, f)
os.rename(out_file + '.tmp', out_file)
"""


def _pysyncobj_run(args: argparse.Namespace, file_journal: bool, batch: bool,
                   label: str) -> list[dict[str, Any]] | None:
    """One 3-node PySyncObj cluster, one batching setting; the raw runs of its leader."""
    base = free_base_port(3)
    addrs = [f"127.0.0.1:{base + k}" for k in range(3)]
    procs: list[subprocess.Popen[str]] = []
    raw = None
    with tempfile.TemporaryDirectory() as d:
        pids_file, out_file = os.path.join(d, "pids"), os.path.join(d, "out.json")
        try:
            for k in range(3):
                others = ",".join(a for a in addrs if a != addrs[k])
                journal = os.path.join(d, f"journal-{k}") if file_journal else "-"
                with open(os.path.join(d, f"stderr-{k}"), "w") as err:
                    procs.append(subprocess.Popen(
                        [sys.executable, "-c", PYSYNCOBJ_NODE, addrs[k], others, journal,
                         "1" if batch else "0", str(args.pysyncobj_ops),
                         str(args.pipelined_ops), str(args.repeat), str(args.pysyncobj_wait),
                         pids_file, out_file],
                        stdout=subprocess.DEVNULL, stderr=err, text=True))
            with open(pids_file + ".tmp", "w") as f:
                f.write(",".join(str(p.pid) for p in procs))
            os.rename(pids_file + ".tmp", pids_file)
            deadline = time.monotonic() + 60 + args.repeat * (
                args.pysyncobj_ops * 10 + args.pysyncobj_wait + 60)
            while time.monotonic() < deadline:
                if os.path.exists(out_file):           # the leader writes it, then exits
                    with open(out_file) as f:
                        raw = json.load(f)
                    break
                if sum(p.poll() is not None for p in procs) >= 2:
                    break                              # no quorum left: it failed
                time.sleep(0.2)
        finally:
            for p in procs:
                p.kill()
                p.wait()
        errors, last, sample = 0, "", ""
        for k in range(3):
            with open(os.path.join(d, f"stderr-{k}")) as f:
                text = f.read()
            errors += text.count("Traceback")
            last = last or text[-2000:]
            if "Traceback" in text and not sample:
                sample = text[text.index("Traceback"):][:1500]
    if raw is None:
        print(f"PySyncObj ({label}): no leader reported results; a node's stderr:\n{last}",
              file=sys.stderr)
    elif errors:
        print(f"PySyncObj ({label}): its nodes logged {errors} tracebacks of their own; the "
              f"first:\n{sample}", file=sys.stderr)
    return raw


def bench_pysyncobj(args: argparse.Namespace, file_journal: bool) -> dict[str, Any] | None:
    """PySyncObj with batching off and on (its documented trade-off: off for one request's
    latency, on for throughput); each row shows the better setting whose writes all completed."""
    try:
        import pysyncobj  # noqa: F401
    except ImportError:
        return None
    name = "file journal" if file_journal else "memory"
    per: dict[str, dict[str, Any]] = {}
    for batch in (False, True):
        setting = "batch on" if batch else "batch off"
        label = f"{name}, {setting}"
        raw = _pysyncobj_run(args, file_journal, batch, label)
        if not raw:
            continue
        seq_failed: dict[str, int] = {}
        failed: dict[str, int] = {}
        pending = 0
        for r in raw:
            for k, v in r["seq_failed"].items():
                seq_failed[k] = seq_failed.get(k, 0) + v
            for k, v in r["failed"].items():
                failed[k] = failed.get(k, 0) + v
            pending += r["pending"]
        if seq_failed:
            print(f"PySyncObj ({label}): sequential writes failed: {seq_failed}", file=sys.stderr)
        if failed or pending:
            print(f"PySyncObj ({label}): of {len(raw)} x {args.pipelined_ops:,} pipelined writes, "
                  f"{sum(failed.values())} failed by callback {failed}, {pending} had no "
                  f"callback {args.pysyncobj_wait:.0f} s after the first was issued "
                  f"(issuing took {max(r['issue_s'] for r in raw):.1f} s)"
                  + (" - later runs skipped" if len(raw) < args.repeat else ""), file=sys.stderr)
        if not all(r["leader"] for r in raw):
            print(f"PySyncObj ({label}): the driver lost leadership during the run",
                  file=sys.stderr)
        seq_runs = [r for r in raw if r["lat"]]
        res: dict[str, Any] = {}
        if seq_runs:
            res |= summarize([{"median_ms": statistics.median(r["lat"]) * 1e3,
                               "p99_ms": pct(r["lat"], 0.99) * 1e3} for r in seq_runs])
        res |= summarize([{"ops_s": r["thr"], "cpu_per_kop": r["cpu"] / args.pipelined_ops * 1e3}
                          for r in raw])
        res["seq_ok"] = not seq_failed and len(seq_runs) == args.repeat
        res["pipe_ok"] = not failed and not pending and len(raw) == args.repeat
        per[setting] = res
    if not per:
        return None
    out: dict[str, Any] = {"election_s": float("nan"), "election_max_s": float("nan"),
                           "client_cpu_per_kop": float("nan")}
    groups = [(("median_ms", "p99_ms"), "seq_ok", min), (("ops_s", "cpu_per_kop"), "pipe_ok", max)]
    for keys, ok, better in groups:            # p99 and CPU follow their row group's setting
        good = [s for s, r in per.items() if r.get(ok) and keys[0] in r]
        pick = better(good, key=lambda s, k=keys[0]: per[s][k]) if good else None
        if pick is None:                       # none complete: show the first, not comparable
            pick = next((s for s, r in per.items() if keys[0] in r), None)
        if pick is None:
            continue
        for k in keys:
            out[k] = per[pick][k]
            out[k + "_range"] = per[pick][k + "_range"]
            out[k + "_setting"] = pick
            out[k + "_ok"] = bool(per[pick][ok])
    out["settings"] = {s: {k: v for k, v in r.items() if not k.endswith("_range")}
                       for s, r in per.items()}
    return out


# ---------------------------------------------------------------- report
ROWS = [("sequential write median (ms)", "median_ms", "<= 2"),
        ("sequential write p99 (ms)", "p99_ms", "<= 10"),
        ("pipelined writes (ops/s)", "ops_s", ">= 20000"),
        ("CPU s per 1,000 pipelined writes", "cpu_per_kop", ""),
        ("election after leader kill (s)", "election_s", "<= 1")]


def fmt(res: dict[str, Any] | None, key: str) -> str:
    if res is None or res.get(key, float("nan")) != res.get(key, float("nan")):
        return "n/a"
    v = res[key]
    lo, hi = res.get(key + "_range", (v, v))
    text = f"{v:,.0f}" if v >= 1000 else f"{v:.3g}"
    if lo != hi:
        text += f" ({lo:,.0f}–{hi:,.0f})" if v >= 1000 else f" ({lo:.3g}–{hi:.3g})"
    if key + "_setting" in res:
        text += f", {res[key + '_setting']}"
        if not res[key + "_ok"]:
            text += ", NOT all writes completed"
    return text


def table(cols: list[tuple[str, dict[str, Any] | None]]) -> str:
    """The ratio is against the second column, and only where its writes all completed (a
    figure from a run that dropped writes compares with nothing)."""
    ours = cols[0][1]
    base = cols[1][1] if len(cols) > 1 else None
    head = "| metric | " + " | ".join(n for n, _ in cols) + " | ratio ours/PySyncObj | target |"
    lines = [head, "|" + "---|" * (len(cols) + 3)]
    for name, key, target in ROWS:
        a, b = (ours or {}).get(key, float("nan")), (base or {}).get(key, float("nan"))
        ok = (base or {}).get(key + "_ok", True)
        ratio = f"{a / b:.2g}x" if a == a and b == b and b and ok else "n/a"
        lines.append(f"| {name} | " + " | ".join(fmt(r, key) for _, r in cols)
                     + f" | {ratio} | {target} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each workload")
    ap.add_argument("--ops", type=int, default=2000, help="sequential writes per run")
    ap.add_argument("--pysyncobj-ops", type=int, default=200,
                    help="PySyncObj sequential writes per run (with batching on, each waits "
                         "for its 100 ms AppendEntries timer)")
    ap.add_argument("--pysyncobj-wait", type=float, default=120.0,
                    help="seconds PySyncObj's pipelined run may take before the writes without "
                         "a callback are reported as not completed")
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
    for name, res in cols[1:]:
        for setting, r in (res or {}).get("settings", {}).items():
            print(f"{name}, {setting}: sequential median {r.get('median_ms', float('nan')):.3g} ms"
                  f" (all completed: {r['seq_ok']}), pipelined {r['ops_s']:,.0f} ops/s "
                  f"(all completed: {r['pipe_ok']})")


if __name__ == "__main__":
    main()
