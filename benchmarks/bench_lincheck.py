"""Time ``raftspec lincheck`` on Porcupine's 108 test histories (the Go reference: ~0.5 s).

Usage: python benchmarks/bench_lincheck.py [--repeat N] [--no-explain]

Prints files, total seconds (best of N runs of the whole corpus), per-model totals and the
slowest file, as wall-clock and as CPU time of this process (the CPU figure is the one to
compare on a shared, loaded machine). Verdicts are compared with EXPECTED.tsv on the way.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from raftspec.traces.lincheck import check_file

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "linearizability" / "porcupine"


def run_once(rows: list[dict[str, str]],
             explain: bool) -> dict[str, tuple[str, float, float, bool]]:
    timings = {}
    for row in rows:
        wall, cpu = time.perf_counter(), time.process_time()
        result = check_file(CORPUS / row["file"], explain=explain)
        timings[row["file"]] = (result.model, time.perf_counter() - wall,
                                time.process_time() - cpu, result.linearizable)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-explain", action="store_true",
                        help="verdicts only (skip the shortest-failing-prefix explanation)")
    args = parser.parse_args()
    table = CORPUS / "EXPECTED.tsv"
    if not table.is_file():
        print(f"corpus not found: {CORPUS}", file=sys.stderr)
        return 2
    with table.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle, delimiter="\t")
                if row["expected"] != "none"]
    runs = [run_once(rows, not args.no_explain) for _ in range(args.repeat)]
    best = min(runs, key=lambda timings: sum(t[1] for t in timings.values()))
    wrong = [row["file"] for row in rows
             if best[row["file"]][3] is not (row["expected"] == "linearizable")]
    slowest = max(best, key=lambda name: best[name][1])
    groups = [(f"all (best of {args.repeat})", list(best.values()))]
    for model in sorted({t[0] for t in best.values()}):
        groups.append((f"{model} model", [t for t in best.values() if t[0] == model]))
    groups.append((f"slowest: {Path(slowest).name}", [best[slowest]]))
    print(f"| {'what':<28} | {'files':>5} | {'wall s':>8} | {'cpu s':>8} |")
    print(f"|{'-' * 30}|{'-' * 7}|{'-' * 10}|{'-' * 10}|")
    for name, timings in groups:
        print(f"| {name:<28} | {len(timings):>5} | {sum(t[1] for t in timings):>8.3f} "
              f"| {sum(t[2] for t in timings):>8.3f} |")
    print(f"explanations: {'off' if args.no_explain else 'on'}; "
          f"verdicts differing from EXPECTED.tsv: {len(wrong)} {wrong or ''}")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
