"""A long randomized fault run against a real 5-node cluster (node/chaos.py), with its verdict.

    python benchmarks/fault_run.py [--seconds 600] [--seed 1] [--nodes 5] [--writers 4]
                                   [--keys 4] [--network loss=0.2,dup=0.1,delay=0-5ms,reorder=0.1]

Clients append unique tokens and read keys while the schedule kills a minority of nodes or all
of them, partitions the leader into a minority, fails a node's disk (every write and fsync
returns EIO until the node stops itself; it is restarted after the outage), and the network
drops, duplicates, delays and reorders node-to-node datagrams throughout. Prints the operations,
the faults injected, and what the end check found: writes lost, duplicated or out of order
(each must be 0), committed WAL prefixes that differ, and lincheck's verdict on the history.
Linearizability is checked twice: by node/chaos.py's exact check for this workload (unique
appended tokens fix the order) and by lincheck, key by key in a child process with a memory cap
and a deadline (a key it cannot finish within them is reported "unknown", not guessed).
Exit status 0 only if all of that is clean. The short version runs in CI
(tests/node/test_node_chaos.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from raftspec.node.chaos import run_faults  # noqa: E402
from raftspec.node.supervisor import LocalCluster  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--keys", type=int, default=4, help="keys per epoch (default 4)")
    ap.add_argument("--snapshot-threshold", type=int, default=1000)
    ap.add_argument("--network", default="loss=0.2,dup=0.1,delay=0-5ms,reorder=0.1")
    ap.add_argument("--dir", default=None, help="keep data and history here")
    ap.add_argument("--op-timeout", type=float, default=5.0,
                    help="seconds before an operation's outcome is unknown (default 5)")
    ap.add_argument("--key-epoch", type=float, default=20.0,
                    help="seconds before the workload moves to fresh keys (default 20)")
    ap.add_argument("--lincheck-gib", type=float, default=6.0, help="memory cap of lincheck")
    ap.add_argument("--lincheck-seconds", type=float, default=1800)
    args = ap.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="fault_run-")
    history = os.path.join(work, "history.ndjson")
    with LocalCluster(args.nodes, os.path.join(work, "cluster"),
                      node_args=["--snapshot-threshold", str(args.snapshot_threshold),
                                 "--seed", str(args.seed)]) as c:
        c.start()
        c.wait_leader()
        report = asyncio.run(run_faults(c, args.seconds, args.seed, history, args.writers,
                                        args.keys, args.network, args.op_timeout,
                                        args.key_epoch))
    ops = report.ops
    print(f"fault run: {args.nodes} nodes, seed {args.seed}, {report.seconds:.0f} s, "
          f"network {args.network}, data in {work}")
    print("| operations | count |\n|---|---|")
    for k in sorted(ops):
        print(f"| {k} | {ops[k]:,} |")
    print("\n| faults injected | count |\n|---|---|")
    for k in sorted(report.faults):
        print(f"| {k} | {report.faults[k]} |")
    print(f"| nodes that stopped on a disk failure (exit 3) | {report.disk_exits} |")
    print("\n| end check | result |\n|---|---|")
    print(f"| acknowledged appends | {report.acknowledged_writes:,} |")
    print(f"| lost | {len(report.lost)} |")
    print(f"| duplicated | {len(report.duplicated)} |")
    print(f"| out of order | {len(report.out_of_order)} |")
    print(f"| committed WAL entries that differ | {len(report.diverged)} |", flush=True)
    for p in report.problems()[:20]:
        print("problem:", p)
    with open(history, encoding="utf-8") as f:
        lines = sum(1 for _ in f)
    t0 = time.monotonic()
    verdict = _lincheck(history, args.lincheck_gib, args.lincheck_seconds)
    print(f"| exact append-order check (node/chaos.py) | "
          f"{len(report.not_linearizable)} violations |")
    print(f"| lincheck ({lines:,} history lines) | {verdict} ({time.monotonic() - t0:.0f} s) |")
    return 0 if not verdict.startswith("NOT") and not report.problems() else 1


_LINCHECK = """
import resource, sys
from raftspec.traces.lincheck import check_key, read_history
h = read_history(sys.argv[1], "ndjson", "kv")
keys = {}
for op in h.operations:
    keys.setdefault(op.key, []).append(op)
ok = bad = unknown = 0
for key, ops in sorted(keys.items(), key=lambda item: len(item[1])):
    try:
        if check_key(ops, h.model):
            ok += 1
        else:
            bad += 1
            print("NOT linearizable:", key, file=sys.stderr)
    except MemoryError:
        unknown += 1
        print(f"out of memory on {key} ({len(ops)} operations)", file=sys.stderr)
print(ok, bad, unknown)
"""


def _lincheck(history: str, gib: float, seconds: float) -> str:
    """lincheck key by key in a child process with a memory cap and a deadline, so that a key
    it cannot handle costs an "unknown" for that key, not the machine."""
    def cap() -> None:
        limit = int(gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    try:
        proc = subprocess.run([sys.executable, "-c", _LINCHECK, history], preexec_fn=cap,
                              capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        return f"unknown (over {seconds:.0f} s)"
    try:
        ok, bad, unknown = map(int, proc.stdout.split())
    except ValueError:
        return f"failed: {proc.stderr[-300:]!r}"
    detail = "; ".join(proc.stderr.splitlines()[:5])
    verdict = "NOT linearizable" if bad else "linearizable" if not unknown else "unknown"
    return (f"{verdict}: {ok} keys linearizable, {bad} not, {unknown} out of its {gib:g} GiB"
            + (f" ({detail})" if detail else ""))


if __name__ == "__main__":
    sys.exit(main())
