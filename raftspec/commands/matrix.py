"""``raftspec matrix``: check several models and print one row per model, one column per
property (invariants, step properties and reachability properties)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import attrs

from raftspec.checker.explore import explore
from raftspec.checker.system import ProtocolSystem
from raftspec.spec.model import Model, load_model

HELP = """\
Model-check each MODEL exhaustively (BFS, as `raftspec check`) and print a table: one row per
model (its protocol: variant + mutants, and its bounds), one column per property named by any
of the models. A cell is

  ok (N states)        the property holds in all N distinct states of the model
  violated at depth D  the shortest counterexample has D states
  reached at depth D   a reachability property: the shortest witness has D states
  never reached        a reachability property true in no reachable state (a failure)
  not checked          the model does not list the property

A model stops at its first violation, so to fill every cell a model with a violated property is
explored again without it, until a run finds no violation: each violation is then reported at its
shortest depth (BFS visits states in the same order every run), and "ok (N states)" counts the
states of the last, complete run. The time column is the total over a model's runs.

Exit status: 0 every cell ok or reached, 1 some property violated or never reached,
2 bad model file or usage.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "matrix", help="check several models; print a property matrix", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("models", nargs="+", type=Path, metavar="MODEL", help="model files")
    parser.add_argument("--json", action="store_true",
                        help="print exactly one JSON object (for scripts and CI)")
    parser.set_defaults(run=run)


@attrs.frozen
class Cell:
    """One property of one model: ``status`` is ok, violated, reached, never reached or not
    checked; ``states`` (ok) and ``depth`` (violated, reached) as the text says."""

    status: str
    states: int | None = None
    depth: int | None = None

    def text(self) -> str:
        if self.status == "ok":
            return f"ok ({self.states:,} states)"
        if self.status in ("violated", "reached"):
            return f"{self.status} at depth {self.depth}"
        return self.status

    @property
    def failed(self) -> bool:
        return self.status in ("violated", "never reached")


@attrs.frozen
class ModelRow:
    model: Model
    cells: dict[str, Cell]
    seconds: float
    runs: int
    distinct_states: int

    @property
    def label(self) -> str:
        return self.model.name

    @property
    def bounds(self) -> str:
        c = self.model.config
        text = (f"{c.servers} servers, term {c.max_term}, log {c.max_log_length}, "
                f"msgs {c.max_messages}")
        if any(r.name == "Partition" for r in self.model.protocol.rows):
            text += f", partitions {c.max_partitions}"
        return text


def check_model(model: Model) -> ModelRow:
    """Every property of the model, exploring again without each violated one (see HELP)."""
    cells: dict[str, Cell] = {}
    remaining = list(model.invariants)
    to_reach = list(model.reachable)
    seconds = 0.0
    runs = 0
    started = time.perf_counter()
    while True:
        runs += 1
        system = ProtocolSystem(attrs.evolve(model, invariants=tuple(remaining),
                                             reachable=tuple(to_reach)))
        result = explore(system, reachable=system.reachable)
        for name, trace in (result.witnesses or {}).items():
            cells[name] = Cell("reached", depth=len(trace))
            to_reach.remove(name)
        if result.violated is None:
            break
        cells[result.violated] = Cell("violated", depth=result.depth)
        remaining.remove(result.violated)
    seconds = time.perf_counter() - started
    for name in remaining:
        cells[name] = Cell("ok", states=result.distinct_states)
    for name in to_reach:
        cells[name] = Cell("never reached")
    return ModelRow(model, cells, seconds, runs, result.distinct_states)


def columns(rows: list[ModelRow]) -> list[str]:
    """Every property named by some model, invariants first, in first-seen order."""
    names: list[str] = []
    for row in rows:
        names.extend(n for n in row.model.invariants if n not in names)
    for row in rows:
        names.extend(n for n in row.model.reachable if n not in names)
    return names


def cell(row: ModelRow, name: str) -> Cell:
    return row.cells.get(name, Cell("not checked"))


def matrix_text(rows: list[ModelRow]) -> str:
    """The matrix as a plain table, one line per model (wide; for terminals and logs)."""
    names = columns(rows)
    reach = {n for row in rows for n in row.model.reachable}
    header = ["model", "protocol", "bounds", *(f"{n} (reach)" if n in reach else n
                                              for n in names), "time"]
    body = [[row.label, row.model.protocol.describe(), row.bounds,
             *(cell(row, n).text() for n in names), f"{row.seconds:.1f} s"] for row in rows]
    widths = [max(len(r[k]) for r in [header, *body]) for k in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def matrix_json(rows: list[ModelRow]) -> dict[str, Any]:
    names = columns(rows)
    return {
        "properties": names,
        "models": [{
            "model": row.model.name,
            "path": row.model.path,
            "protocol": row.model.protocol.describe(),
            "bounds": row.bounds,
            "symmetry": row.model.symmetry,
            "distinct_states": row.distinct_states,
            "runs": row.runs,
            "seconds": round(row.seconds, 3),
            "cells": {n: {**attrs.asdict(cell(row, n)), "text": cell(row, n).text()}
                      for n in names},
        } for row in rows],
    }


def run(args: argparse.Namespace) -> int:
    models = [load_model(path) for path in args.models]  # every file's mistakes before work
    rows = [check_model(model) for model in models]
    if args.json:
        print(json.dumps(matrix_json(rows)))
    else:
        print(matrix_text(rows))
    failed = any(c.failed for row in rows for c in row.cells.values())
    return 1 if failed else 0
