"""How fast is ``raftspec validate``? Records traces from a real 3-node cluster under faults
(loss, duplication, delay, reordering) with a growing number of writes, then times validation.

    python benchmarks/bench_validate.py            # prints a table; the issue asks < 5 s for 5,000
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from raftspec.node.client import ClusterClient
from raftspec.node.supervisor import LocalCluster
from raftspec.traces.validate import ClusterAdapter, validate_paths

FAULTS = "loss=0.05,dup=0.05,delay=1-8ms,reorder=0.1"


async def _writes(cluster: LocalCluster, n: int) -> None:
    async with ClusterClient(cluster.cluster_arg.split(","), cluster.secret) as c:
        s = c.session()
        for k in range(n):
            await s.call("put", f"k{k % 17}", str(k), timeout=10)


def record(out: Path, writes: int) -> list[str]:
    with tempfile.TemporaryDirectory() as data:
        cluster = LocalCluster(3, data, trace_dir=str(out), faults=FAULTS)
        try:
            cluster.start()
            cluster.wait_leader()
            asyncio.run(_writes(cluster, writes))
        finally:
            cluster.stop()
    return sorted(str(p) for p in out.glob("node-*.ndjson"))


def main() -> int:
    sizes = [int(a) for a in sys.argv[1:]] or [50, 200, 600]
    print(f"{'writes':>7} {'events':>7} {'ref steps':>9} {'seconds':>8} {'events/s':>9}  verdict")
    with tempfile.TemporaryDirectory() as tmp:
        for writes in sizes:
            paths = record(Path(tmp) / f"w{writes}", writes)
            best = None
            for _ in range(3):
                started = time.perf_counter()
                verdict = validate_paths(paths, ClusterAdapter())
                elapsed = time.perf_counter() - started
                best = elapsed if best is None else min(best, elapsed)
            rate = verdict.events / best
            print(f"{writes:>7} {verdict.events:>7} {verdict.steps:>9} {best:>8.3f} "
                  f"{rate:>9,.0f}  {'valid' if verdict.valid else 'INVALID'}")
            if verdict.events >= 5000:
                print(f"  5,000 events would take {5000 / rate:.2f} s (limit 5 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
