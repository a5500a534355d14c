"""Why partitions cost the membership bug steps: counts of what the command's walks do, with
and without partitions, over a fixed number of walks per seed (counts, not seconds: the same on
any machine).

    python benchmarks/diagnose_partitions.py [--model variants/membership_bug]
        [--seeds 1,2,3,4,5,6] [--walks 600] [--partition 0.9]

Per setting, summed over the seeds (each seed stops early at its first violation):

- cut walks, and those whose stretch outlasts the walk (the walk ends, by its patience or its
  depth, while the party is still cut off: that party never speaks again within its walk);
- elections: each Timeout (not within the last 40 steps of its walk) and whether the same
  server becomes leader in the same term within the walk, by whether the partition was cutting
  the candidate, another server, or nobody at the Timeout;
- for the membership bug, the stages of its scenario (docs/variants.md), in the order a run
  passes them: the restart archive's cells at each stage or a later one, and per stage, the
  walks that start from a cell at that stage and reach a later one.

Diagnosis only: it observes ``checker.simulate``'s private walk functions by wrapping them, so
it follows the command's walks exactly (the same seeds run the same walks).
"""

from __future__ import annotations

import argparse
import collections
import os

from raftspec.checker import simulate as sim
from raftspec.checker.system import MessageLinks, ProtocolSystem
from raftspec.reference.state import Role
from raftspec.spec.model import MODELS_DIR, load_model

STAGES = (
    "0 start",
    "1 a leader of term 2",
    "2 a configuration entry of term 2",
    "3 then another server leads term 3 without it",
    "4 then a configuration entry of term 3 elsewhere",
    "5 then that entry committed, the holder of the term-2 entry still at term <= 3",
    "6 then that holder at term 4",
)


def stage(state) -> int:
    """How far ``state`` is along the membership bug's scenario (docs/variants.md), in the order
    a run passes the stages: the two configuration entries of terms 2 and 3 on disjoint servers,
    the later one committed while the holder of the earlier one can still time out into term 4,
    then that holder in term 4 (where it is elected by a majority of its own configuration)."""
    servers = state.servers

    def holds(s, term: int) -> bool:
        return any(e.term == term and 1 in e.config for e in s.log)

    found = 1 if any(s.current_term == 2 and s.role == Role.LEADER for s in servers) else 0
    with2 = [i for i, s in enumerate(servers) if holds(s, 2)]
    if not with2:
        return found
    found = 2
    if any(s.current_term == 3 and s.role == Role.LEADER and not holds(s, 2) for s in servers):
        found = 3
    with3 = [i for i, s in enumerate(servers) if holds(s, 3)]
    if not with3 or set(with2) & set(with3):
        return found
    if not any(e.term == 3 and 1 in e.config for s in servers for e in s.log[:s.commit_index]):
        return 4
    return 5 if any(servers[i].current_term <= 3 for i in with2) else 6


class Observer:
    """Wraps the walk functions of ``checker.simulate`` and counts."""

    def __init__(self, stages: bool) -> None:
        self.stages = stages
        self.counts: collections.Counter = collections.Counter()
        self.victim = None
        self.archives: list = []
        self._cut_off, self._random_walk = sim._cut_off, sim._random_walk
        self._archive = sim._Archive
        kept = self.archives

        class Kept(sim._Archive):  # the same archive, kept for counting its cells
            def __init__(self, cell_of) -> None:
                super().__init__(cell_of)
                kept.append(self)

        sim._cut_off, sim._random_walk, sim._Archive = self.cut_off, self.random_walk, Kept

    def restore(self) -> None:
        sim._cut_off, sim._random_walk = self._cut_off, self._random_walk
        sim._Archive = self._archive

    def cut_off(self, by_name, links, victim, state):
        if self.victim is None:
            self.victim = victim
        return self._cut_off(by_name, links, victim, state)

    def random_walk(self, system, inits, config, settings, action_name, deadline, rng, trace,
                    archive=None, links=None):
        self.victim = None
        start = len(trace)
        begin = stage(trace[-1][1]) if self.stages and trace else 0
        n = None  # a violation ends the walk with an exception
        try:
            n = self._random_walk(system, inits, config, settings, action_name, deadline, rng,
                                  trace, archive, links)
        finally:
            self.count(config, trace, start, begin, n, links)
        return n

    def count(self, config, trace, start, begin, n, links) -> None:
        c = self.counts
        offset = max(start, 1)  # trace index of the walk's first step
        cut = links is not None and self.victim is not None
        if cut:
            c["cut walks"] += 1
            if n is not None and n <= config.cut_until:
                c["cut walks that end cut"] += 1
        for k in range(offset, len(trace) - 40):
            action, state = trace[k]
            if action.name != "Timeout":
                continue
            i = action.args[0]
            term = state.server(i).current_term
            step = k - offset
            cutting = cut and config.cut_from <= step < config.cut_until
            who = ("candidate cut" if self.victim == i else "other cut") if cutting else "no cut"
            won = any(s.server(i).current_term == term and s.server(i).role == Role.LEADER
                      for _, s in trace[k:])
            c[f"elections {who}"] += 1
            c[f"elections {who} won"] += won
        if self.stages:
            end = max(stage(s) for _, s in trace[max(start - 1, 0):])
            c[f"walks from stage {begin}"] += 1
            c[f"walks from stage {begin} advancing"] += end > begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="variants/membership_bug")
    parser.add_argument("--seeds", default="1,2,3,4,5,6")
    parser.add_argument("--walks", type=int, default=600)
    parser.add_argument("--partition", type=float, default=sim.SwarmSettings().partition)
    args = parser.parse_args()
    model = load_model(MODELS_DIR / f"{args.model}.yaml")
    system = ProtocolSystem(model, symmetry=False)
    hints = model.protocol.simulation
    stages = "membership" in model.protocol.edits
    print(f"{args.model}, seeds {args.seeds}, at most {args.walks} walks each; "
          f"load average {os.getloadavg()[0]:.1f}")
    for partition in (args.partition, 0.0):
        observer = Observer(stages)
        cells: collections.Counter = collections.Counter()
        found, walks, steps = [], 0, 0
        for seed in (int(s) for s in args.seeds.split(",")):
            r = sim.simulate(system, seed=seed, max_walks=args.walks, time_limit=None,
                             action_name=ProtocolSystem.action_name, shrink=False,
                             settings=sim.SwarmSettings(omit_by_name=hints.rare,
                                                        partition=partition),
                             cells=hints.cell, links=MessageLinks(model.protocol.schema))
            walks, steps = walks + r.walks, steps + r.steps
            if r.violated:
                found.append(f"seed {seed}: walk {r.walk}, {r.steps:,} steps")
            if stages:
                for trace in observer.archives[-1]._traces:
                    reached = stage(trace[-1][1])
                    for k in range(1, reached + 1):
                        cells[k] += 1
        observer.restore()
        c = observer.counts
        print(f"\npartition {partition:g}: {walks:,} walks, {steps:,} steps; found: "
              f"{'; '.join(found) or 'none'}")
        print(f"  cut walks {c['cut walks']:,}, of which end cut {c['cut walks that end cut']:,}")
        for who in ("no cut", "candidate cut", "other cut"):
            total = c[f"elections {who}"]
            if total:
                print(f"  elections, {who}: {c[f'elections {who} won']:,} won of {total:,} "
                      f"({c[f'elections {who} won'] / total:.2f})")
        if stages:
            for k, name in enumerate(STAGES):
                starts = c[f"walks from stage {k}"]
                line = (f"  stage {name}: {cells[k]:,} cells at it or later" if k
                        else f"  stage {name}:")
                if starts:
                    line += (f"; walks from it {starts:,}, reaching a later stage "
                             f"{c[f'walks from stage {k} advancing']:,}")
                print(line)


if __name__ == "__main__":
    main()
