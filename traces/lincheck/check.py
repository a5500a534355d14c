"""Checking a history: partition per key, search every partition, explain a failure.

P-compositionality (Herlihy & Wing's locality; Horn & Kroening, "Faster linearizability
checking via P-compositionality", 2015): a history of independent keys is linearizable iff each
key's sub-history is, so each key is searched on its own, which turns one exponential search into
many small ones. The partitions are searched interleaved, a slice at a time, and checking stops
at the end of the first round in which some key is found illegal (Porcupine runs its partitions
in parallel and stops at the first failure for the same reason).

The partitioning comes first, before any search structure is built: a key's search allocates its
event list and memo only when it starts, and frees them when it ends. Checking can be bounded
(``should_stop``: a time or memory budget, asked after every slice of every key): when it runs
out, or on KeyboardInterrupt, the verdict is *unknown* (``linearizable is None``) unless some
key was already found illegal, which is a complete answer by P-compositionality.

A failure is explained by the shortest prefix of the failing key's history that is already not
linearizable (linearizability is prefix-closed: an operation still running at the cut is treated
as having an unknown outcome, which only adds freedom). The operation whose response closes that
prefix is the *culprit*: no order of the operations before it allows the result it returned.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from raftspec.protocol.errors import RaftspecError
from raftspec.traces.lincheck.history import UNKNOWN, Operation
from raftspec.traces.lincheck.models import ILLEGAL, MODELS, Model, Step
from raftspec.traces.lincheck.readers import read_history
from raftspec.traces.lincheck.search import run, search

__all__ = ["Failure", "Result", "check_file", "check_history", "check_key"]

WINDOW_BEFORE = 8
"""Completed operations shown before the culprit, besides those concurrent with it."""

PROBE_STEPS = 20_000
"""Search steps allowed to each prefix probe of a failure's explanation."""


@dataclass(frozen=True)
class Failure:
    """Why a history is not linearizable, on one key.

    ``prefix`` is a prefix (in real time) of the key's operations that is already not
    linearizable, the shortest one when ``minimal``; ``culprit`` is the operation whose
    response ends it. ``window`` is the part worth showing: the operations concurrent with the
    culprit and the last few completed before it. ``witness`` is ``prefix`` exactly as it was
    checked: operations that had not returned by the culprit's response are open (unknown
    outcome, no response), so it is a history of its own that is not linearizable.
    """

    key: str | None
    culprit: Operation
    prefix: tuple[Operation, ...]
    window: tuple[Operation, ...]
    key_operations: int
    minimal: bool = True
    witness: tuple[Operation, ...] = ()


@dataclass(frozen=True)
class Result:
    """The verdict on one history; ``linearizable is None``: unknown (stopped before every key
    was decided, ``stopped`` says why, ``unknown_keys`` how many were left)."""

    linearizable: bool | None
    model: str
    operations: int
    keys: int
    seconds: float
    path: str | None = None
    failure: Failure | None = None
    failing_keys: tuple[str | None, ...] = field(default=())
    stopped: str | None = None
    unknown_keys: int = 0

    @property
    def complete(self) -> bool:
        return self.linearizable is not None

    @property
    def verdict(self) -> str:
        if self.linearizable is None:
            return "unknown"
        return "linearizable" if self.linearizable else "not linearizable"

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: file, model, linearizable (null: unknown), verdict, complete,
        seconds, how far an unknown got, and the failure if any."""
        out: dict[str, Any] = {
            "file": self.path,
            "model": self.model,
            "linearizable": self.linearizable,
            "verdict": self.verdict,
            "complete": self.complete,
            "seconds": round(self.seconds, 6),
            "operations": self.operations,
            "keys": self.keys,
        }
        if not self.complete:
            out["stopped"] = self.stopped
            out["keys_decided"] = self.keys - self.unknown_keys
            out["keys_unknown"] = self.unknown_keys
        if self.failure is not None:
            fail = self.failure
            out["failing_key"] = fail.key
            out["culprit"] = _op_json(fail.culprit)
            out["prefix_operations"] = len(fail.prefix)
            out["prefix_minimal"] = fail.minimal
            out["window"] = [_op_json(op) for op in fail.window]
        return out


def _op_json(op: Operation) -> dict[str, Any]:
    return {"process": op.process, "op": op.describe(), "line": op.line,
            "return_line": op.ret_line}


def _model(model: str | Model) -> Model:
    if isinstance(model, Model):
        return model
    if model not in MODELS:
        raise RaftspecError(f"unknown model {model!r} (expected one of {', '.join(MODELS)})",
                            field="model")
    return MODELS[model]


def _partition(ops: Iterable[Operation]) -> dict[str | None, list[Operation]]:
    parts: dict[str | None, list[Operation]] = {}
    for op in ops:
        parts.setdefault(op.key, []).append(op)
    return parts


def _product(model: Model, ops: Sequence[Operation]) -> tuple[Any, list[Step]]:
    """The whole history as one object: a tuple of per-key states (no partitioning)."""
    keys = list(dict.fromkeys(op.key for op in ops))
    index = {key: i for i, key in enumerate(keys)}

    def lift(step: Step, k: int) -> Step:
        def whole(states: tuple[Any, ...]) -> Any:
            new = step(states[k])
            if new is ILLEGAL:
                return ILLEGAL
            return states[:k] + (new,) + states[k + 1:]
        return whole

    steps = [lift(model.compile(op), index[op.key]) for op in ops]
    return tuple(model.init for _ in keys), steps


def _search_ops(model: Model, ops: Sequence[Operation], max_steps: int | None = None):
    return search(model.init, [model.compile(op) for op in ops], [op.call for op in ops],
                  [op.ret for op in ops], max_steps=max_steps)


def check_key(ops: Sequence[Operation], model: str | Model = "kv") -> bool:
    """Is this sequence of operations (one key, no partitioning) linearizable?"""
    verdict = run(_search_ops(_model(model), ops))
    assert verdict is not None
    return verdict


def check_history(ops: Sequence[Operation], model: str | Model = "kv", *,
                  partition: bool = True, explain: bool = True,
                  path: str | None = None,
                  should_stop: Callable[[], str | None] | None = None) -> Result:
    """Check a list of operations for linearizability against ``model`` ("kv" or "register").

    With ``partition`` (the default) each key is checked separately (P-compositionality);
    without it the whole history is searched as one object whose state is a tuple of per-key
    states, which is exponentially slower and exists to cross-check the partitioning. With
    ``explain`` a failure carries the culprit and the shortest failing prefix of its key.
    ``should_stop`` (a reason to stop, or None) is asked after every search slice.
    """
    spec = _model(model)
    started = time.perf_counter()
    ops = list(ops)
    parts = _partition(ops)
    if not partition:
        init, steps = _product(spec, ops)
        gen = search(init, steps, [op.call for op in ops], [op.ret for op in ops])
        ok = run(gen)
        return Result(bool(ok), spec.name, len(ops), len(parts), time.perf_counter() - started,
                      path)
    running = {key: _search_ops(spec, part)
               for key, part in sorted(parts.items(), key=lambda item: len(item[1]))}
    failing: list[str | None] = []
    stopped = None
    try:
        while running and not failing and stopped is None:
            for key in list(running):
                try:
                    next(running[key])
                except StopIteration as stop:
                    del running[key]
                    if stop.value is False:
                        failing.append(key)
                if should_stop is not None and (stopped := should_stop()):
                    break
    except KeyboardInterrupt:
        stopped = "interrupted"
    if stopped is not None and not failing and running:
        unknown = len(running)
        running.clear()          # free the searches' memos now
        return Result(None, spec.name, len(ops), len(parts), time.perf_counter() - started,
                      path, stopped=stopped, unknown_keys=unknown)
    failure = None
    if failing:
        failing.sort(key=lambda key: len(parts[key]))
        if explain:
            failure = _explain(spec, failing[0], parts[failing[0]])
    return Result(not failing, spec.name, len(ops), len(parts), time.perf_counter() - started,
                  path, failure, tuple(failing))


def check_file(path: str | Path, *, fmt: str | None = None, model: str | None = None,
               explain: bool = True,
               should_stop: Callable[[], str | None] | None = None) -> Result:
    """Read a history file (format and model detected unless given) and check it."""
    started = time.perf_counter()
    history = read_history(path, fmt, model)
    result = check_history(history.operations, history.model, explain=explain,
                           path=str(path), should_stop=should_stop)
    return replace(result, seconds=time.perf_counter() - started)


def _events(ops: Sequence[Operation]) -> list[tuple[float, int, int]]:
    """Call (0) and return (1) events in the order the search uses."""
    return sorted([(op.call, 0, i) for i, op in enumerate(ops)]
                  + [(op.ret, 1, i) for i, op in enumerate(ops)])


def _prefix(ops: Sequence[Operation], events: list[tuple[float, int, int]],
            m: int) -> list[Operation]:
    """The operations invoked among the first ``m`` events; those not yet returned are open."""
    returned = {i for _, kind, i in events[:m] if kind}
    invoked = [i for _, kind, i in events[:m] if not kind]
    return [ops[i] if i in returned else replace(ops[i], out=UNKNOWN, ret=math.inf)
            for i in invoked]


def _explain(spec: Model, key: str | None, ops: Sequence[Operation]) -> Failure:
    """Binary search for the shortest non-linearizable prefix (prefix-closure makes it sound).

    Each probe gets a step budget: refuting a prefix whose open operations have unknown
    outcomes can cost far more than refuting the whole key. A probe that runs out counts as
    "not shown illegal", so the prefix found is always illegal, and ``minimal`` says whether the
    one just shorter was proved legal.
    """
    events = _events(ops)
    lo, hi = 0, len(events)
    if all(op.out is UNKNOWN for op in ops if op.open):
        # Then the events after the last real response (calls of operations that never return,
        # and their +infinity "responses") cannot matter: those can always be ordered last.
        hi = max((n for n, (t, kind, _) in enumerate(events, start=1) if kind and t != math.inf),
                 default=hi)
    verdicts: dict[int, bool | None] = {0: True}
    while hi - lo > 1:
        mid = (lo + hi) // 2
        verdicts[mid] = run(_search_ops(spec, _prefix(ops, events, mid), max_steps=PROBE_STEPS))
        if verdicts[mid] is False:
            hi = mid
        else:
            lo = mid
    minimal = verdicts[lo] is True
    while not events[hi - 1][1]:
        hi -= 1  # after an exhausted probe only: an extra open operation changes nothing
    culprit = ops[events[hi - 1][2]]
    invoked = [i for _, kind, i in events[:hi] if not kind]
    prefix = tuple(ops[i] for i in invoked)
    witness = tuple(_prefix(ops, events, hi))
    concurrent = [op for op in prefix if op.ret >= culprit.call and op is not culprit]
    before = sorted((op for op in prefix if op.ret < culprit.call), key=lambda op: op.ret)
    shown = set(map(id, before[-WINDOW_BEFORE:] + concurrent)) | {id(culprit)}
    window = tuple(op for op in prefix if id(op) in shown)
    return Failure(key, culprit, prefix, window, len(ops), minimal, witness)
