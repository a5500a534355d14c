"""Mutants of etcd-raft's real traces are rejected, at the mutated line or later, never
earlier (traces/etcd/mutate.py: a term, a commit, a vote, a reject flag changed, a receive
deleted, two events of one node swapped). CI runs a fixed-seed sample of the small traces;
``benchmarks/bench_etcd_mutants.py`` runs every trace and prints the distance distribution."""

from __future__ import annotations

from pathlib import Path

import pytest

from raftspec.traces.etcd import EtcdAdapter
from raftspec.traces.etcd.mutate import OPERATORS, Mutant, read_raw, sample
from raftspec.traces.validate import validate_paths

ETCD = Path(__file__).resolve().parents[2].parent / "shared" / "traces" / "etcd-raft"
SKIPPED = {"snapshot_succeed_via_app_resp_behind.ndjson"}   # refused as unsupported
SEED = 14
PER_OPERATOR = 2


def _small_traces() -> list:
    if not ETCD.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"{ETCD} not present (it ships with the project's CI, not with clones)"))]
    return [p for p in sorted(ETCD.glob("interaction/*.ndjson")) if p.name not in SKIPPED] \
        + [ETCD / "concurrent" / "Lossy3.ndjson"]


def rejected_at(mutant: Mutant, tmp: Path) -> int | None:
    path = tmp / "mutant.ndjson"
    path.write_text(mutant.text())
    verdict = validate_paths([str(path)], EtcdAdapter())
    return None if verdict.valid else verdict.event.line


@pytest.mark.parametrize("trace", _small_traces(), ids=lambda p: p.name if p else "absent")
def test_every_sampled_mutant_is_rejected_at_or_after_its_line(trace: Path,
                                                               tmp_path: Path) -> None:
    lines = read_raw(str(trace))
    seen = set()
    for mutant in sample(lines, PER_OPERATOR, SEED):
        seen.add(mutant.operator)
        line = rejected_at(mutant, tmp_path)
        assert line is not None, f"accepted: {mutant.description}"
        assert line >= mutant.line, f"rejected at {line} before the mutation: " \
                                    f"{mutant.description}"
    assert {"term", "commit", "vote"} <= seen


def test_the_sample_covers_every_operator() -> None:
    if not ETCD.is_dir():
        pytest.skip(f"{ETCD} not present (it ships with the project's CI, not with clones)")
    ops = {m.operator for t in _small_traces() for m in sample(read_raw(str(t)), 1, SEED)}
    assert ops == set(OPERATORS)
