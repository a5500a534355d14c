"""``check --workers`` and ``check --ray``: speed-up per worker and memory per state, measured in
one run, with the machine's load next to every figure.

    python benchmarks/bench_parallel.py [--models tiny3,elect3m2] [--ray] [--memory]

Speed: each model runs as a whole ``raftspec check --json --quiet`` process with --workers 1
and then 2 (alternated when --repeat > 1; the fastest run of each is reported); the counts of
every run must be equal (the script stops otherwise). "explore s" is the JSON's ``seconds`` (the
search, from the first state to the verdict, forking the workers included; interpreter start-up
excluded), "speed-up" = 1-worker explore s / N-worker explore s. CPU s = user + system seconds
of the whole process tree (getrusage of the children): on a machine shared with other jobs
"CPU ratio" (N workers' CPU / 1 worker's) shows the overhead of sharding apart from how many
cores the other jobs left free; "load" is the 1-minute load average before/after the run.

--pairs N: the speed table again, drift-proof: N adjacent pairs of runs (1 worker, 2 workers),
the order alternating from pair to pair (1-2, 2-1, 1-2, ...), each pair's speed-up and CPU ratio
printed, then the MEDIAN pair speed-up (and CPU ratio) with the smallest and largest. This VM's
speed drifts by up to 1.5x within minutes, so the best-of figures of the plain table can pair a
fast one-worker run with a slow two-worker run; within a pair the two runs are seconds apart,
and the median ignores a pair the drift split. Use it for every before/after. With --against
DIR (another checkout of the repository with its own .venv, e.g. `git worktree add --detach DIR
main`), each pair becomes a triple (1 worker here, 2 workers here, 2 workers with DIR's code),
the order rotating, and the median ratio of the two 2-worker times is printed too.

--ray: the same with Ray actors (1 and 2) on a local Ray instance started once beforehand
(its start-up, some 5-30 s here, is measured separately and not in "explore s").

--memory: resident memory per distinct state on elect3m2, with the frontier in memory and spilled
to disk (``spill_from``): of one process, its peak RSS (getrusage) minus its RSS just before the
search, divided by the distinct states; with 2 workers, the largest worker's peak RSS minus the
same (what the worker inherited at the fork is counted once, as its own), divided by its share
of the distinct states (a half); --memory-model picks another model.

--stats [--max-depth D]: instead of the speed table, where the time of 2 workers goes
(``RAFTSPEC_PARALLEL_STATS``): per worker, wall seconds of each step of a level summed over the
levels (expand, waiting for the other's claims, arbitrate, waiting for awards, finish; balance
and advance at the start of a level; idle: waiting for the coordinator), this thread's CPU and
the process's (the difference is the queues' feeder threads), bytes sent; the coordinator's
seconds before the hand-off and between levels; and a work model from the steps each worker
generated per level (the same on a loaded machine): the share generated before the hand-off,
the busiest worker's excess, and the speed-up they allow at most. Then what pipelining the
levels could gain at most: each worker's waits (for gifts, claims, awards and the coordinator),
the idle share of each core during the 2-worker run (/proc/stat, every process on the machine),
and the speed-up if the levels ran back to back with no wait at all (the serial part before the
workers, then the busiest worker's CPU seconds), against the 1-worker run's explore seconds
and, less sensitive to the load, against its CPU seconds less the interpreter's start-up.

--profile [--max-depth D]: does sharding make the search do more work, or the same work slower?
cProfile (CPU-time clock) of one process's search, then of each of 2 worker processes (the
workers' profiles summed; the levels before the hand-off run in the coordinator, unprofiled):
call counts of every function, which do not depend on the load, and seconds per call. Extra
calls of the checker's functions in the workers would be extra work (e.g. memos that hit less
often when each process sees half of each level); equal calls taking longer would not.

--instructions [--max-depth D]: the same question without the load: instructions executed and
simulated L1 data-cache misses (valgrind's cachegrind, 50-100x slower, so use a --max-depth),
one process against the 2 workers summed, each counted from the hand-off on: a forked worker
inherits its parent's counts, so every figure is a run to D minus a run that stops at the
hand-off level (the workers start, load and quit). The coordinator's own instructions after the
hand-off are printed apart (under valgrind it polls the workers some 50x more often per state).

--contention [--max-depth D] [--rounds R]: where two workers' extra CPU comes from. CPU seconds
of the search (model loading and start-up excluded; workers included) in R rounds, the order
rotating: one process alone; two independent one-process searches at once (whether two busy
cores slow each other down on this machine, whatever the search does); the 2 shards in one
process (``InlineBackend``: the sharding's own work); 2 worker processes. Medians, their ratios
to one process alone, what is left for being separate processes, and the most two workers could
reach on this machine (two independent searches' work in the time of one).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    "tiny2": ROOT / "spec" / "models" / "conformance" / "tiny2.yaml",
    "tiny3": ROOT / "spec" / "models" / "conformance" / "tiny3.yaml",
    "mid2": ROOT / "spec" / "models" / "conformance" / "mid2.yaml",
    "elect3m2": ROOT / "benchmarks" / "models" / "elect3m2.yaml",
}


def load() -> float:
    return os.getloadavg()[0]


def run_check(model: Path, workers: int, extra: tuple[str, ...] = (),
              env: dict | None = None, root: Path = ROOT) -> dict:
    """One ``raftspec check`` process; ``root``: another checkout, run by its own .venv."""
    before_load = load()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    python = sys.executable if root == ROOT else str(root / ".venv" / "bin" / "python")
    proc = subprocess.run(
        [python, "-m", "raftspec", "check", str(model), "--workers", str(workers),
         "--json", "--quiet", "--max-memory", "0", *extra],
        capture_output=True, text=True, cwd=root, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"check --workers {workers} failed on {model}:\n{proc.stderr}")
    report = json.loads(proc.stdout)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return {"report": report, "wall": wall, "cpu": cpu, "load": (before_load, load())}


RAY_RUN = """
import json, sys, time, resource
import ray
from raftspec.checker.explore import explore
from functools import partial
from raftspec.checker.parallel_ray import ray_backend
from raftspec.checker.system import ProtocolSystem
from raftspec.commands.check import model_system
from raftspec.spec.model import load_model
path, counts = sys.argv[1], [int(w) for w in sys.argv[2].split(",")]
t = time.perf_counter()
ray.init(num_cpus=max(counts), include_dashboard=False, log_to_driver=False,
         configure_logging=False)
startup = time.perf_counter() - t
out = {"startup": startup, "runs": []}
system = ProtocolSystem(load_model(path))
for workers in counts:
    t = time.perf_counter()
    r = explore(system, workers=workers, parallel_from=1,
                backend=ray_backend(None, partial(model_system, path, None)))
    out["runs"].append([workers, r.distinct_states, r.states_generated, r.depth,
                        time.perf_counter() - t])
ray.shutdown()
print(json.dumps(out))
"""

MEMORY_RUN = """
import json, resource, sys, time
from raftspec.checker.explore import explore
from raftspec.checker.system import ProtocolSystem
from raftspec.commands._contract import rss_bytes
from raftspec.spec.model import load_model
system = ProtocolSystem(load_model(sys.argv[1]))
spill = None if sys.argv[2] == "none" else int(sys.argv[2])
workers = int(sys.argv[3])
if workers > 1:
    import numpy  # imported before the fork, as the command does (not counted in the growth)
before = rss_bytes()
t = time.perf_counter()
r = explore(system, spill_from=spill, workers=workers)
seconds = time.perf_counter() - t
who = resource.RUSAGE_SELF if workers == 1 else resource.RUSAGE_CHILDREN   # the largest worker
peak = resource.getrusage(who).ru_maxrss * 1024
print(json.dumps({"distinct": r.distinct_states, "generated": r.states_generated,
                  "growth": peak - before, "seconds": seconds}))
"""


def speed(models: list[str], repeat: int) -> None:
    print(f"{'model':<9} {'workers':>7} {'distinct':>10} {'generated':>11} {'explore s':>9} "
          f"{'speed-up':>8} {'CPU s':>7} {'CPU ratio':>9} {'load before/after':>17}")
    for name in models:
        runs: dict[int, list[dict]] = {1: [], 2: []}
        for _ in range(repeat):
            for workers in (1, 2):
                runs[workers].append(run_check(MODELS[name], workers))
        best = {w: min(rs, key=lambda r: r["report"]["seconds"]) for w, rs in runs.items()}
        reference = best[1]["report"]
        for w, rs in runs.items():
            for r in rs:
                got = r["report"]
                for key in ("distinct_states", "states_generated", "depth", "violated"):
                    if got[key] != reference[key]:
                        raise SystemExit(f"{name}: {key} {got[key]} with {w} workers, "
                                         f"{reference[key]} with 1")
        for w in (1, 2):
            r = best[w]
            rep = r["report"]
            print(f"{name:<9} {w:>7} {rep['distinct_states']:>10,} {rep['states_generated']:>11,} "
                  f"{rep['seconds']:>9.2f} {reference['seconds'] / rep['seconds']:>8.2f} "
                  f"{r['cpu']:>7.2f} {r['cpu'] / best[1]['cpu']:>9.2f} "
                  f"{r['load'][0]:>8.2f}/{r['load'][1]:<8.2f}")


def _check_counts(name: str, runs: list[dict], reference: dict) -> None:
    for r in runs:
        got = r["report"]
        for key in ("distinct_states", "states_generated", "depth", "violated"):
            if got[key] != reference[key]:
                raise SystemExit(f"{name}: {key} {got[key]} in one run, {reference[key]} in "
                                 "another")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def pairs(models: list[str], count: int, extra: tuple[str, ...] = (),
          against: Path | None = None) -> dict[str, dict]:
    """N adjacent (1 worker, 2 workers) pairs per model, order alternating; each pair's ratios
    and the median pair ratio (see the module's docstring). Returns the summary per model.
    ``against``: another checkout whose 2-worker run joins each pair (``compared``)."""
    if against is not None:
        return compared(models, count, extra, against)
    summary = {}
    print(f"{'model':<9} {'pair':>4} {'order':>5} {'1w s':>7} {'2w s':>7} {'speed-up':>8} "
          f"{'1w CPU':>7} {'2w CPU':>7} {'CPU ratio':>9} {'load before/after':>17}")
    for name in models:
        speedups, cpus, runs = [], [], []
        for k in range(count):
            order = (1, 2) if k % 2 == 0 else (2, 1)
            before = load()
            got = {w: run_check(MODELS[name], w, extra) for w in order}
            runs += got.values()
            one, two = got[1], got[2]
            speedup = one["report"]["seconds"] / two["report"]["seconds"]
            ratio = two["cpu"] / one["cpu"]
            speedups.append(speedup)
            cpus.append(ratio)
            print(f"{name:<9} {k + 1:>4} {'-'.join(map(str, order)):>5} "
                  f"{one['report']['seconds']:>7.2f} {two['report']['seconds']:>7.2f} "
                  f"{speedup:>8.2f} {one['cpu']:>7.2f} {two['cpu']:>7.2f} {ratio:>9.2f} "
                  f"{before:>8.2f}/{load():<8.2f}", flush=True)
        _check_counts(name, runs, runs[0]["report"])
        summary[name] = {"median": _median(speedups), "min": min(speedups),
                         "max": max(speedups), "cpu_median": _median(cpus)}
        print(f"{name:<9} median speed-up {summary[name]['median']:.2f} (min "
              f"{summary[name]['min']:.2f}, max {summary[name]['max']:.2f}) over {count} pairs; "
              f"median CPU ratio {summary[name]['cpu_median']:.2f}; "
              f"{runs[0]['report']['distinct_states']:,} distinct, "
              f"{runs[0]['report']['states_generated']:,} generated", flush=True)
    return summary


def compared(models: list[str], count: int, extra: tuple[str, ...], against: Path
             ) -> dict[str, dict]:
    """``--pairs N --against DIR``: N adjacent triples (1 worker here, 2 workers here, 2
    workers with DIR's code), the order rotating; per triple both speed-ups over the same
    1-worker run and the ratio of the two 2-worker times, then their medians."""
    summary = {}
    print(f"{'model':<9} {'run':>3} {'1w s':>7} {'2w s':>7} {'2w there':>8} {'speed-up':>8} "
          f"{'there':>6} {'there/here':>10} {'2w CPU':>7} {'there':>6} {'load before/after':>17}")
    kinds = [(1, ROOT), (2, ROOT), (2, against)]
    for name in models:
        here, there, ratio, runs = [], [], [], []
        for k in range(count):
            before = load()
            got = {kind: run_check(MODELS[name], kind[0], extra, root=kind[1])
                   for kind in kinds[k % 3:] + kinds[:k % 3]}
            runs += got.values()
            one, two, other = got[kinds[0]], got[kinds[1]], got[kinds[2]]
            here.append(one["report"]["seconds"] / two["report"]["seconds"])
            there.append(one["report"]["seconds"] / other["report"]["seconds"])
            ratio.append(other["report"]["seconds"] / two["report"]["seconds"])
            print(f"{name:<9} {k + 1:>3} {one['report']['seconds']:>7.2f} "
                  f"{two['report']['seconds']:>7.2f} {other['report']['seconds']:>8.2f} "
                  f"{here[-1]:>8.2f} {there[-1]:>6.2f} {ratio[-1]:>10.3f} {two['cpu']:>7.2f} "
                  f"{other['cpu']:>6.2f} {before:>8.2f}/{load():<8.2f}", flush=True)
        _check_counts(name, runs, runs[0]["report"])
        summary[name] = {"median": _median(here), "against": _median(there),
                         "ratio": _median(ratio)}
        print(f"{name:<9} median speed-up {summary[name]['median']:.2f} here, "
              f"{summary[name]['against']:.2f} with {against}; median 2-worker time there/here "
              f"{summary[name]['ratio']:.3f} (min {min(ratio):.3f}, max {max(ratio):.3f}) over "
              f"{count} runs", flush=True)
    return summary


def ray_speed(models: list[str]) -> None:
    print(f"\n{'model':<9} {'Ray actors':>10} {'distinct':>10} {'generated':>11} "
          f"{'explore s':>9} {'speed-up':>8} {'load before/after':>17}")
    for name in models:
        before = load()
        proc = subprocess.run([sys.executable, "-c", RAY_RUN, str(MODELS[name]), "1,2"],
                              capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"Ray run failed:\n{proc.stderr[-2000:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        after = load()
        one = out["runs"][0][4]
        for workers, distinct, generated, _depth, seconds in out["runs"]:
            print(f"{name:<9} {workers:>10} {distinct:>10,} {generated:>11,} {seconds:>9.2f} "
                  f"{one / seconds:>8.2f} {before:>8.2f}/{after:<8.2f}")
        print(f"{'':<9} (Ray start-up, not counted above: {out['startup']:.1f} s)")


def memory(model: str, spill_from: str) -> None:
    print(f"\n{'model':<9} {'frontier':<32} {'distinct':>10} {'peak MiB':>8} "
          f"{'peak B/distinct':>15} {'explore s':>9} {'load':>5}")
    runs = [(spill, workers, f"{'1 process' if workers == 1 else '2 workers'}, "
             f"{'in memory' if spill == 'none' else f'spilled ({int(spill):,})'}")
            for workers in (1, 2) for spill in ("none", spill_from)]
    for spill, workers, label in runs:
        before = load()
        proc = subprocess.run([sys.executable, "-c", MEMORY_RUN, str(MODELS[model]), spill,
                               str(workers)], capture_output=True, text=True, cwd=ROOT, check=True)
        out = json.loads(proc.stdout)
        share = out["distinct"] / workers
        print(f"{model:<9} {label:<32} {out['distinct']:>10,} {out['growth'] / 2**20:>8.1f} "
              f"{out['growth'] / share:>15.1f} {out['seconds']:>9.2f} {before:>5.2f}")
    print("(2 workers: the largest worker's peak, per state of its share, a half)")


PROFILE_RUN = """
import cProfile, json, pstats, sys, time
from raftspec.checker import parallel
from raftspec.checker.explore import explore
from raftspec.checker.system import ProtocolSystem
from raftspec.spec.model import load_model
path, workers, depth, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
system = ProtocolSystem(load_model(path))
depth = None if depth == "none" else int(depth)
worker = parallel._worker
def profiled(me, *args):
    p = cProfile.Profile(time.process_time)
    p.enable()
    try:
        worker(me, *args)
    finally:
        p.disable()
        p.dump_stats(f"{out}.{me}")
if workers == 1:
    p = cProfile.Profile(time.process_time)
    p.enable()
    r = explore(system, max_depth=depth)
    p.disable()
    p.dump_stats(f"{out}.0")
else:
    parallel._worker = profiled
    r = explore(system, max_depth=depth, workers=workers)
print(json.dumps([r.distinct_states, r.states_generated, r.depth]))
"""


def _profile_totals(prefix: Path, files: int) -> dict[str, list[float]]:
    """Calls and own seconds per function (file:line:name), summed over the profiles."""
    import pstats

    totals: dict[str, list[float]] = {}
    for k in range(files):
        for (file, line, func), (_, calls, own, _, _) in pstats.Stats(
                f"{prefix}.{k}").stats.items():
            if file == "~":   # a builtin: its name holds an address that differs by process
                func = func.split(" at 0x")[0]
            entry = totals.setdefault(f"{Path(file).name}:{line}:{func}", [0, 0.0])
            entry[0] += calls
            entry[1] += own
    return totals


def profile(models: list[str], max_depth: int | None) -> None:
    """Call counts and seconds per call, one process against 2 workers summed."""
    import tempfile

    depth = "none" if max_depth is None else str(max_depth)
    for name in models:
        with tempfile.TemporaryDirectory() as tmp:
            got = {}
            for workers in (1, 2):
                before = load()
                proc = subprocess.run(
                    [sys.executable, "-c", PROFILE_RUN, str(MODELS[name]), str(workers), depth,
                     str(Path(tmp) / f"w{workers}")],
                    capture_output=True, text=True, cwd=ROOT)
                if proc.returncode != 0:
                    raise SystemExit(f"profiled run failed:\n{proc.stderr[-2000:]}")
                got[workers] = (json.loads(proc.stdout), before, load(),
                                _profile_totals(Path(tmp) / f"w{workers}", workers))
        if got[1][0] != got[2][0]:
            raise SystemExit(f"{name}: counts differ: {got[1][0]} and {got[2][0]}")
        one, two = got[1][3], got[2][3]
        own1, own2 = sum(v[1] for v in one.values()), sum(v[1] for v in two.values())
        print(f"\n{name} (max depth {max_depth}): distinct, generated, depth {got[1][0]}; "
              f"profiled CPU s: 1 process {own1:.2f} (load {got[1][1]:.2f}/{got[1][2]:.2f}), "
              f"2 workers {own2:.2f} (load {got[2][1]:.2f}/{got[2][2]:.2f}), ratio "
              f"{own2 / own1:.2f}")
        print(f"  {'calls 1':>11} {'calls 2':>11} {'ratio':>6} {'us/call 1':>9} "
              f"{'us/call 2':>9} {'ratio':>6}  function (by own seconds, 1 process)")
        for key, (calls, own) in sorted(one.items(), key=lambda kv: -kv[1][1])[:20]:
            calls2, own2 = two.get(key, (0, 0.0))
            per1 = 1e6 * own / calls if calls else 0.0
            per2 = 1e6 * own2 / calls2 if calls2 else 0.0
            print(f"  {calls:>11,} {calls2:>11,} {calls2 / calls if calls else 0:>6.3f} "
                  f"{per1:>9.2f} {per2:>9.2f} {per2 / per1 if per1 else 0:>6.2f}  {key}")
        extra = sorted(((v[1] - one.get(k, (0, 0.0))[1], k, v[0]) for k, v in two.items()
                        if k not in one), reverse=True)[:8]
        print("  only in the workers (own seconds, calls): " + ", ".join(
            f"{k} {s:.2f} s {c:,}" for s, k, c in extra))


STEPS = ("balance", "advance", "expand", "wait_claims", "arbitrate", "wait_awards", "finish",
         "idle")


def stats(models: list[str], max_depth: int | None) -> None:
    """Where each worker's time goes (``parallel.STATS_ENV``), against one worker's run."""
    import tempfile

    extra = () if max_depth is None else ("--max-depth", str(max_depth))
    for name in models:
        one = run_check(MODELS[name], 1, extra)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "stats.json"
            cores_before = _core_times()
            two = run_check(MODELS[name], 2, extra,
                            env={**os.environ, "RAFTSPEC_PARALLEL_STATS": str(path)})
            cores_after = _core_times()
            data = json.loads(path.read_text())
        rep1, rep2 = one["report"], two["report"]
        if (rep1["distinct_states"], rep1["states_generated"]) != (
                rep2["distinct_states"], rep2["states_generated"]):
            raise SystemExit(f"{name}: counts differ between 1 and 2 workers")
        c = data["coordinator"]
        levels = c["levels"]
        print(f"\n{name} (max depth {max_depth}): {rep1['distinct_states']:,} distinct, "
              f"{len(levels)} levels sharded")
        print(f"  1 worker : explore {rep1['seconds']:.2f} s, CPU {one['cpu']:.2f} s, "
              f"load {one['load'][0]:.2f}/{one['load'][1]:.2f}")
        print(f"  2 workers: explore {rep2['seconds']:.2f} s, CPU {two['cpu']:.2f} s "
              f"(ratio {two['cpu'] / one['cpu']:.2f}), wall ratio "
              f"{rep1['seconds'] / rep2['seconds']:.2f}, load "
              f"{two['load'][0]:.2f}/{two['load'][1]:.2f}")
        print(f"  coordinator: one process {c['one_process_s']:.3f} s, starting workers "
              f"{c['start_workers_s']:.3f} s, load {c.get('load_s', 0):.3f} s, levels "
              f"{sum(lv.get('level_wall', 0) for lv in levels):.3f} s, between levels "
              f"{sum(lv['between_wall'] for lv in levels):.3f} s wall "
              f"({sum(lv['between_cpu'] for lv in levels):.3f} s CPU)")
        print(f"  {'worker':<7}" + "".join(f"{step:>12}" for step in STEPS)
              + f"{'recv CPU':>10}{'thread CPU':>11}{'proc CPU':>10}{'MB sent':>9}")
        for s, w in enumerate(data["workers"]):
            t = w["totals"]
            cells = "".join(f"{t.get(step + '_wall', 0):>12.3f}" for step in STEPS)
            print(f"  {s:<7}{cells}{t.get('receive_cpu', 0):>10.3f}"
                  f"{t.get('thread_cpu', 0):>11.3f}{t.get('process_cpu', 0):>10.3f}"
                  f"{t.get('bytes_sent', 0) / 1e6:>9.2f}")
        print("  (wall seconds per step; expand includes receiving claims while expanding; "
              "proc CPU - thread CPU = the queues' feeder threads)")
        cpu_steps = [step for step in STEPS if step != "idle"]
        print(f"  {'CPU s':<7}" + "".join(f"{step:>12}" for step in cpu_steps)
              + f"{'own steps':>11}")
        for s, w in enumerate(data["workers"]):
            t = w["totals"]
            own = (sum(t.get(step + "_cpu", 0) for step in ("balance", "advance", "arbitrate"))
                   + t.get("receive_cpu", 0) + t.get("process_cpu", 0) - t.get("thread_cpu", 0))
            print(f"  {s:<7}" + "".join(f"{t.get(step + '_cpu', 0):>12.3f}" for step in cpu_steps)
                  + f"{own:>11.3f}")
        print("  (thread CPU seconds per step; own steps: the sharding's own, i.e. balance, "
              "advance, arbitrate, receiving claims and the feeder threads)")
        per_level = [[lv.get("thread_cpu", 0) for lv in w["levels"]] for w in data["workers"]]
        slowest = sum(max(cpus) for cpus in zip(*per_level, strict=True))
        mean = sum(sum(cpus) for cpus in per_level) / len(per_level)
        serial = (c["one_process_s"] + c["start_workers_s"]
                  + sum(lv["between_cpu"] for lv in levels))
        print(f"  CPU: workers' busiest per level {slowest:.3f} s, mean {mean:.3f} s "
              f"(imbalance {slowest / mean - 1:.1%}); serial part {serial:.3f} s (one process, "
              f"start, coordinator between levels)")
        gen = [[lv.get("generated", 0) for lv in w["levels"]] for w in data["workers"]]
        before = c["one_process_generated"]
        total = before + sum(map(sum, gen))
        busiest = sum(max(g) for g in zip(*gen, strict=True))
        above = busiest / (total - before) * len(gen) - 1
        print(f"  work model (generated steps, independent of the load): {before / total:.1%} "
              f"generated before the hand-off, busiest worker {above:.2%} "
              f"above the mean per level; at most {total / (before + busiest):.2f}x with "
              f"{len(gen)} workers if steps cost as much as in one process and nothing waits")
        idle = [(a[1] - b[1]) / max(1, a[0] - b[0])
                 for b, a in zip(cores_before, cores_after, strict=True)]
        waits = [sum(w["totals"].get(step + "_wall", 0)
                     for step in ("balance", "wait_claims", "wait_awards", "idle"))
                 - w["totals"].get("balance_cpu", 0) for w in data["workers"]]
        busiest_cpu = max(w["totals"].get("process_cpu", 0) for w in data["workers"])
        serial_wall = c["one_process_s"] + c["start_workers_s"] + c.get("load_s", 0)
        startup = two["cpu"] - sum(w["totals"].get("process_cpu", 0) for w in data["workers"]) \
            - serial_wall
        print("  waits (balance, claims, awards, coordinator): "
              + ", ".join(f"worker {s} {wait:.3f} s" for s, wait in enumerate(waits))
              + "; idle CPU per core during the run (all processes): "
              + ", ".join(f"{x:.0%}" for x in idle))
        print(f"  no waits at all (levels pipelined perfectly: the serial part "
              f"{serial_wall:.3f} s, then the busiest worker's CPU {busiest_cpu:.3f} s back to "
              f"back): at most {rep1['seconds'] / (serial_wall + busiest_cpu):.2f}x the "
              f"1-worker explore seconds (load-sensitive), at most "
              f"{(one['cpu'] - startup) / (serial_wall + busiest_cpu):.2f}x its search's CPU "
              f"seconds (its process's minus {startup:.3f} s of start-up: the 2-worker "
              f"process tree's CPU outside the workers and the serial part)")


def _core_times() -> list[tuple[int, int]]:
    """(all, idle + iowait) clock ticks of each core so far (Linux /proc/stat)."""
    out = []
    with open("/proc/stat") as f:
        for line in f:
            name, *ticks = line.split()
            if name.startswith("cpu") and name != "cpu":
                values = [int(t) for t in ticks]
                out.append((sum(values), values[3] + values[4]))
    return out


def _cachegrind(model: Path, workers: int, max_depth: int) -> dict[int, tuple[int, int]]:
    """{pid: (instructions, L1 data misses)} of a ``check`` run under cachegrind; the
    command's own process (the coordinator) under key 0."""
    import re
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            ["valgrind", "--tool=cachegrind", "--cache-sim=yes", "--trace-children=yes",
             f"--cachegrind-out-file={tmp}/cg.%p", sys.executable, "-m", "raftspec", "check",
             str(model), "--workers", str(workers), "--max-depth", str(max_depth), "--json",
             "--quiet", "--max-memory", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        _, err = proc.communicate()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"cachegrind run failed:\n{err[-2000:]}")
    first = re.search(r"==(\d+)==", err)   # the command's process speaks first
    out: dict[int, list[int]] = {}
    for pid, what, number in re.findall(r"==(\d+)== (I   refs|D1  misses):\s+([\d,]+)", err):
        key = 0 if first and pid == first.group(1) else int(pid)
        out.setdefault(key, [0, 0])[what.startswith("D1")] = int(number.replace(",", ""))
    return {k: (v[0], v[1]) for k, v in out.items()}


def instructions(models: list[str], max_depth: int | None) -> None:
    """Instructions and simulated L1 misses after the hand-off: 1 process vs 2 workers."""
    import tempfile

    for name in models:
        model = MODELS[name]
        depth = max_depth or 15
        with tempfile.TemporaryDirectory() as tmp:   # the first level the workers expand
            path = Path(tmp) / "stats.json"
            run_check(model, 2, ("--max-depth", str(depth)),
                      env={**os.environ, "RAFTSPEC_PARALLEL_STATS": str(path)})
            levels = json.loads(path.read_text())["coordinator"]["levels"]
        if not levels:
            raise SystemExit(f"{name}: no level reached the hand-off by depth {depth}")
        base = levels[0]["depth"]
        one = _cachegrind(model, 1, depth)[0]
        one_base = _cachegrind(model, 1, base)[0]
        two, two_base = _cachegrind(model, 2, depth), _cachegrind(model, 2, base)
        workers = [two[k] for k in sorted(two) if k]
        workers_base = [two_base[k] for k in sorted(two_base) if k]
        if len(workers) != 2 or len(workers_base) != 2:
            raise SystemExit(f"{name}: expected 2 worker processes under cachegrind")
        ir1, d1 = one[0] - one_base[0], one[1] - one_base[1]
        ir2 = sum(w[0] - b[0] for w, b in zip(workers, workers_base, strict=True))
        d2 = sum(w[1] - b[1] for w, b in zip(workers, workers_base, strict=True))
        print(f"\n{name} to depth {depth}, from the hand-off (minus runs to depth {base}):")
        print(f"  instructions: 1 process {ir1:,}, 2 workers {ir2:,} (ratio {ir2 / ir1:.3f}); "
              f"coordinator after the hand-off {two[0][0] - two_base[0][0]:,}")
        print(f"  L1 data misses (simulated): 1 process {d1:,}, 2 workers {d2:,} "
              f"(ratio {d2 / d1:.3f})")


CPU_RUN = """
import json, resource, sys
from raftspec.checker.explore import explore
from raftspec.checker.parallel import InlineBackend
from raftspec.checker.system import ProtocolSystem
from raftspec.spec.model import load_model
path, mode = sys.argv[1], sys.argv[2]
depth = None if sys.argv[3] == "none" else int(sys.argv[3])
system = ProtocolSystem(load_model(path))
def cpu():
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))
options = {"one": {}, "inline": {"workers": 2, "backend": InlineBackend}, "workers": {"workers": 2}}
before = cpu()
r = explore(system, max_depth=depth, **options[mode])
print(json.dumps([cpu() - before, r.distinct_states, r.states_generated]))
"""
"""The CPU seconds of one search (the process's and its workers', reaped when the search
ends), model loading and interpreter start-up excluded: ``one`` process, 2 shards ``inline``
in one process (``InlineBackend``), 2 ``workers`` (forked processes)."""


def _cpu_runs(model: Path, modes: list[str], max_depth: int | None) -> list[list]:
    """Run one CPU_RUN process per mode, all at once; [cpu, distinct, generated] of each."""
    procs = [subprocess.Popen([sys.executable, "-c", CPU_RUN, str(model), mode,
                               "none" if max_depth is None else str(max_depth)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT) for mode in modes]
    return [json.loads(proc.communicate()[0]) for proc in procs]


def contention(models: list[str], max_depth: int | None, rounds: int) -> None:
    """Where two workers' extra CPU comes from, in ``rounds`` rounds (the order of the runs
    rotating from round to round; medians over the rounds): one process alone; two
    independent one-process searches at once (the machine: two busy cores slowing each other
    down, whatever the search does); the 2 shards in one process (the sharding's own work);
    2 worker processes (all of it). If the workers' CPU exceeds one process's by more than
    the product of the first two ratios, the rest is in being separate processes."""
    runs = {"alone": ["one"], "two at once": ["one", "one"], "inline": ["inline"],
            "workers": ["workers"]}   # the CPU_RUN processes of each kind, run at once
    kinds = list(runs)
    for name in models:
        print(f"\n{name} (max depth {max_depth}): CPU seconds of the search, {rounds} rounds")
        print(f"{'round':<6} {'alone':>7} {'two at once':>13} {'inline':>7} {'workers':>8} "
              f"{'load':>5}")
        cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
        counts = set()
        for r in range(rounds):
            before = load()
            order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
            for kind in order:
                for seconds, distinct, generated in _cpu_runs(MODELS[name], runs[kind],
                                                              max_depth):
                    cpu[kind].append(seconds)
                    counts.add((distinct, generated))
            if len(counts) != 1:
                raise SystemExit(f"{name}: the counts differ between runs: {sorted(counts)}")
            print(f"{r + 1:<6} {cpu['alone'][-1]:>7.2f} "
                  f"{cpu['two at once'][-2]:>6.2f} {cpu['two at once'][-1]:>6.2f} "
                  f"{cpu['inline'][-1]:>7.2f} {cpu['workers'][-1]:>8.2f} {before:>5.2f}")
        m = {kind: _median(values) for kind, values in cpu.items()}
        machine, own = m["two at once"] / m["alone"], m["inline"] / m["alone"]
        total = m["workers"] / m["alone"]
        print(f"medians: alone {m['alone']:.2f} s, two at once {m['two at once']:.2f} s, "
              f"inline {m['inline']:.2f} s, workers {m['workers']:.2f} s")
        print(f"  the machine (two at once / alone) {machine:.3f}; the sharding's own work "
              f"(inline / alone) {own:.3f}; 2 workers / alone {total:.3f}; "
              f"left for separate processes {total / (machine * own):.3f}")
        print(f"  two independent searches at once do {2 / machine:.2f}x the work of one in "
              f"the same time: the most two workers could reach here")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny3,elect3m2")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--against", metavar="DIR",
                        help="with --pairs: another checkout (with its own .venv) whose 2-worker "
                        "run joins each pair, e.g. a worktree of main")
    parser.add_argument("--pairs", type=int, default=0, metavar="N",
                        help="N adjacent 1-worker/2-worker pairs, order alternating: each "
                        "pair's ratio and the median (instead of the plain table)")
    parser.add_argument("--ray", action="store_true", help="also Ray actors (1 and 2)")
    parser.add_argument("--ray-models", default="tiny3")
    parser.add_argument("--memory", action="store_true", help="memory per state (elect3m2)")
    parser.add_argument("--memory-model", default="elect3m2")
    parser.add_argument("--spill", default="2000", help="spill_from of the spilled run")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--stats", action="store_true",
                        help="where 2 workers' time goes, step by step (then no speed table)")
    parser.add_argument("--profile", action="store_true",
                        help="call counts and time per call: 1 process vs 2 workers (cProfile)")
    parser.add_argument("--instructions", action="store_true",
                        help="instructions and L1 misses: 1 process vs 2 workers (cachegrind)")
    parser.add_argument("--contention", action="store_true",
                        help="CPU of one process alone, two at once, 2 shards inline, "
                        "2 workers, in rounds")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of --contention")
    parser.add_argument("--max-depth", type=int, default=None,
                        help="for --stats, --profile, --instructions (default 15), "
                        "--contention and --pairs")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; Python {sys.version.split()[0]}")
    if args.stats:
        stats(args.models.split(","), args.max_depth)
    if args.contention:
        contention(args.models.split(","), args.max_depth, args.rounds)
    if args.profile:
        profile(args.models.split(","), args.max_depth)
    if args.instructions:
        instructions(args.models.split(","), args.max_depth)
    if args.stats or args.contention or args.profile or args.instructions:
        pass
    elif args.pairs:
        pairs(args.models.split(","), args.pairs,
              () if args.max_depth is None else ("--max-depth", str(args.max_depth)),
              None if args.against is None else Path(args.against).resolve())
    elif not args.no_speed:
        speed(args.models.split(","), args.repeat)
    if args.ray:
        ray_speed(args.ray_models.split(","))
    if args.memory:
        memory(args.memory_model, args.spill)


if __name__ == "__main__":
    main()
