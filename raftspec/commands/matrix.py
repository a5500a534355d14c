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
from raftspec.commands._contract import (
    FINDING,
    INCOMPLETE,
    OK,
    Budget,
    add_budget_arguments,
    budget_of,
    exit_status,
)
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
  unknown (N states)   the run stopped (budget, Ctrl-C, SIGTERM) before deciding it: N states
                       explored, none violating it; NOT a pass

A model stops at its first violation, so to fill every cell a model with a violated property is
explored again without it, until a run finds no violation: each violation is then reported at its
shortest depth (BFS visits states in the same order every run), and "ok (N states)" counts the
states of the last, complete run. The time column is the total over a model's runs.

Budgets: --time-limit and --max-memory cover the whole command (all models); when one runs out,
or on Ctrl-C or SIGTERM, the model being checked keeps the cells decided so far, its other cells
and the models not yet started are "unknown", and the exit status is 3 (unless some property
is violated: a violation found is a finding, exit 1, whatever else was left undecided).

""" + exit_status("some property violated, or never reached after a complete search; 0 = every "
                  "cell ok or reached", '; --json then has "complete": false and "stopped" '
                  "(overall and per model)") + "\n"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "matrix", help="check several models; print a property matrix", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("models", nargs="+", type=Path, metavar="MODEL", help="model files")
    parser.add_argument("--json", action="store_true",
                        help="print exactly one JSON object (for scripts and CI)")
    add_budget_arguments(parser)
    parser.set_defaults(run=run)


@attrs.frozen
class Cell:
    """One property of one model: ``status`` is ok, violated, reached, never reached, unknown
    (the run stopped before deciding it) or not checked; ``states`` (ok: all of them; unknown:
    those explored) and ``depth`` (violated, reached) as the text says."""

    status: str
    states: int | None = None
    depth: int | None = None

    def text(self) -> str:
        if self.status == "ok":
            return f"ok ({self.states:,} states)"
        if self.status == "unknown":
            return f"unknown ({self.states or 0:,} states)"
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
    stopped: str | None = None
    """Why the model's check stopped before deciding every cell (None: it is complete)."""

    @property
    def complete(self) -> bool:
        return self.stopped is None

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


def check_model(model: Model, budget: Budget | None = None) -> ModelRow:
    """Every property of the model, exploring again without each violated one (see HELP).

    A run stopped by ``budget`` or a Ctrl-C (``explore`` returns it incomplete) decides nothing
    more: the properties not yet violated or reached are "unknown", never "ok"."""
    cells: dict[str, Cell] = {}
    remaining = list(model.invariants)
    to_reach = list(model.reachable)
    runs = 0
    distinct = 0
    stopped = None
    started = time.perf_counter()
    while True:
        runs += 1
        try:
            system = ProtocolSystem(attrs.evolve(model, invariants=tuple(remaining),
                                                 reachable=tuple(to_reach)))
            result = explore(system, reachable=system.reachable,
                             should_stop=None if budget is None else budget.exceeded)
        except KeyboardInterrupt:           # outside the search itself (building the system)
            stopped = "interrupted"
            break
        distinct = result.distinct_states
        for name, trace in (result.witnesses or {}).items():
            cells[name] = Cell("reached", depth=len(trace))
            to_reach.remove(name)
        if result.violated is not None:
            cells[result.violated] = Cell("violated", depth=result.depth)
            remaining.remove(result.violated)
            continue
        if not result.complete:
            stopped = result.stopped or "stopped"
        break
    seconds = time.perf_counter() - started
    undecided = "ok" if stopped is None else "unknown"
    for name in remaining:
        cells[name] = Cell(undecided, states=distinct)
    for name in to_reach:
        cells[name] = Cell("never reached") if stopped is None else Cell("unknown",
                                                                         states=distinct)
    return ModelRow(model, cells, seconds, runs, distinct, stopped)


def not_run(model: Model, why: str) -> ModelRow:
    """A model the command never started (an earlier one used up the budget or was
    interrupted): every property unknown."""
    cells = {n: Cell("unknown", states=0) for n in (*model.invariants, *model.reachable)}
    return ModelRow(model, cells, 0.0, 0, 0, f"not started: {why}")


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
    for row in rows:
        if not row.complete:
            lines.append(f"{row.label}: stopped before a verdict: {row.stopped}; its unknown "
                         "cells are not a pass (exit 3)")
    return "\n".join(lines)


def matrix_json(rows: list[ModelRow]) -> dict[str, Any]:
    names = columns(rows)
    incomplete = [row for row in rows if not row.complete]
    return {
        "complete": not incomplete,
        "stopped": incomplete[0].stopped if incomplete else None,
        "properties": names,
        "models": [{
            "model": row.model.name,
            "path": row.model.path,
            "protocol": row.model.protocol.describe(),
            "bounds": row.bounds,
            "symmetry": row.model.symmetry,
            "distinct_states": row.distinct_states,
            "runs": row.runs,
            "complete": row.complete,
            "stopped": row.stopped,
            "seconds": round(row.seconds, 3),
            "cells": {n: {**attrs.asdict(cell(row, n)), "text": cell(row, n).text()}
                      for n in names},
        } for row in rows],
    }


def run(args: argparse.Namespace) -> int:
    budget = budget_of(args)
    models = [load_model(path) for path in args.models]  # every file's mistakes before work
    rows: list[ModelRow] = []
    for model in models:
        if rows and not rows[-1].complete:
            rows.append(not_run(model, rows[-1].stopped.removeprefix("not started: ")))
            continue
        try:
            rows.append(check_model(model, budget))
        except KeyboardInterrupt:           # between two runs of a model's check
            rows.append(not_run(model, "interrupted"))
    if args.json:
        print(json.dumps(matrix_json(rows)))
    else:
        print(matrix_text(rows))
    if any(c.failed for row in rows for c in row.cells.values()):
        return FINDING
    return OK if all(row.complete for row in rows) else INCOMPLETE
