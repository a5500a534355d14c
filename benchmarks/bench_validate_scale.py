"""Does ``raftspec validate`` grow linearly with trace length? Records our cluster's traces
(3 nodes, loss/duplication/delay/reordering) of about 5k, 20k and 100k events and times one
validation of each; prints events, seconds and microseconds per event (flat = linear).

    python benchmarks/bench_validate_scale.py                 # records, then times
    python benchmarks/bench_validate_scale.py --keep DIR      # keep (or reuse) the recordings
    python benchmarks/bench_validate_scale.py --baseline 30000  # also time the old search
                                                  # (hashes every candidate) up to 30k events
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_validate import record

from raftspec.traces.validate import ClusterAdapter, search, validate_paths

WRITES = (340, 1360, 6800)    # about 14.7 events per write under these faults


def hashing_successors(adapter, event, candidates):
    """The search before the fix: every successor deduplicated through a dict (hashing whole
    states, logs included, at every event)."""
    nxt: dict = {}
    for cand, steps in candidates:
        for attempt in adapter.attempts(event, cand):
            if not attempt.failed and attempt.result is not None:
                total = steps + attempt.steps
                if nxt.get(attempt.result, total + 1) > total:
                    nxt[attempt.result] = total
    return list(nxt.items())


def timed(paths: list[str], old: bool) -> tuple[float, object]:
    fixed = search._successors
    if old:
        search._successors = hashing_successors
    try:
        started = time.perf_counter()
        verdict = validate_paths(paths, ClusterAdapter())
        return time.perf_counter() - started, verdict
    finally:
        search._successors = fixed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--baseline", type=int, default=0, metavar="EVENTS",
                        help="also time the old search on traces up to this many events")
    parser.add_argument("writes", nargs="*", type=int, default=list(WRITES))
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp())
    print(f"{'writes':>7} {'events':>8} {'seconds':>8} {'µs/event':>9} {'old search s':>13} "
          f"{'speedup':>8}  verdict")
    for writes in args.writes:
        out = base / f"w{writes}"
        paths = sorted(str(p) for p in out.glob("node-*.ndjson"))
        if not paths:
            out.mkdir(parents=True, exist_ok=True)
            paths = record(out, writes)
        elapsed, verdict = timed(paths, old=False)
        old = "-"
        ratio = "-"
        if verdict.events <= args.baseline:
            old_s, _ = timed(paths, old=True)
            old, ratio = f"{old_s:.2f}", f"{old_s / elapsed:.1f}x"
        print(f"{writes:>7} {verdict.events:>8} {elapsed:>8.2f} "
              f"{1e6 * elapsed / verdict.events:>9.1f} {old:>13} {ratio:>8}  "
              f"{'valid' if verdict.valid else 'INVALID'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
