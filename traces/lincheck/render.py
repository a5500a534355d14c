"""Showing a verdict: a summary line, the operations involved, a text or HTML timeline.

Only the failing part is drawn (the culprit, the operations concurrent with it and the last few
before it), on a compressed time axis: each distinct invocation or response time gets one
column, so that overlaps, which are all that linearizability cares about, stay visible whatever
the clock's scale.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from raftspec.traces.lincheck.check import Failure, Result
from raftspec.traces.lincheck.history import Operation

__all__ = ["html_report", "summary", "text_timeline"]

_COLUMN = 3


def _key(key: str | None) -> str:
    return "the register" if key is None else f"key {key!r}"


def _lines(op: Operation) -> str:
    if op.ret_line is None:
        return f"{op.line}-"
    return f"{op.line}-{op.ret_line}"


def summary(result: Result) -> str:
    """The verdict, and for a failure the culprit and the operations involved, as text."""
    name = result.path or "<history>"
    if result.operations == 0:
        return f"{name}: linearizable (empty history: no operations)"
    stats = (f"{result.operations} operations, {result.keys} "
             f"{'key' if result.keys == 1 else 'keys'}, {result.model} model, "
             f"{result.seconds:.3f} s")
    if result.linearizable:
        return f"{name}: linearizable ({stats})"
    if result.linearizable is None:
        return (f"{name}: UNKNOWN, stopped before a verdict: {result.stopped} ({stats}; "
                f"{result.keys - result.unknown_keys} of {result.keys} keys decided, none "
                "illegal)")
    out = [f"{name}: NOT linearizable ({stats})"]
    others = result.failing_keys[1:]
    fail = result.failure
    if fail is None:
        out.append(f"  failing: {', '.join(_key(k) for k in result.failing_keys)}")
        return "\n".join(out)
    culprit = fail.culprit
    where = f"  on {_key(fail.key)} ({fail.key_operations} operations): "
    if fail.minimal:
        out.append(
            f"{where}process {culprit.process} {culprit.describe()} (lines {_lines(culprit)}) "
            f"has a result that no order of the {len(fail.prefix) - 1} operations invoked "
            "before it returned allows")
    else:
        out.append(
            f"{where}the {len(fail.prefix)} operations invoked up to the return of process "
            f"{culprit.process} {culprit.describe()} (lines {_lines(culprit)}) have no legal "
            "order (a shorter failing prefix may exist: the search for it was cut short)")
    if others:
        out.append(f"  also failing: {', '.join(_key(k) for k in others)}")
    out.append("  operations involved (lines, process, operation):")
    for op in fail.window:
        mark = "   <- culprit" if op is culprit else ""
        if op.open:
            mark = "   (outcome unknown: may take effect at any time after its call)"
        elif op.ret > culprit.ret:
            mark = "   (returns after the culprit)"
        out.append(f"    {_lines(op):>11}  p{op.process:<4} {op.describe()}{mark}")
    return "\n".join(out)


def _columns(ops: Sequence[Operation]) -> dict[float, int]:
    times = sorted({t for op in ops for t in (op.call, op.ret) if not math.isinf(t)})
    return {t: i for i, t in enumerate(times)}


def text_timeline(failure: Failure) -> str:
    """An ASCII timeline of the failing window: one row per operation, bars over time."""
    ops = failure.window
    col = _columns(ops)
    width = (len(col) + 1) * _COLUMN
    rows = [f"  timeline of {_key(failure.key)} (time runs left to right):"]
    for op in ops:
        start = col[op.call] * _COLUMN
        if math.isinf(op.ret):
            bar = " " * start + "|" + "-" * (width - start - 2) + ">"
        else:
            end = col[op.ret] * _COLUMN
            bar = " " * start + "|" + "-" * max(end - start - 1, 0) + "|"
        mark = "  <- culprit" if op is failure.culprit else ""
        rows.append(f"  p{op.process:<4} {bar:<{width}}  {op.describe()}{mark}")
    return "\n".join(rows)


def html_report(results: Sequence[Result]) -> str:
    """A self-contained HTML page with one timeline per failing history."""
    parts = ["<!doctype html><meta charset='utf-8'><title>raftspec lincheck</title>",
             "<style>body{font:14px sans-serif;margin:2em}.tl{position:relative;margin:1em 0 3em}"
             ".op{position:absolute;height:22px;background:#cde;border:1px solid #579;"
             "border-radius:3px;font:12px monospace;white-space:nowrap;overflow:visible;"
             "padding:2px 4px;box-sizing:border-box}.culprit{background:#f9c;border-color:#b04}"
             ".open{border-right:3px dashed #579}.p{position:absolute;left:0;font:12px monospace}"
             "</style>",
             "<h1>raftspec lincheck</h1>"]
    for result in results:
        name = html.escape(result.path or "<history>")
        if result.linearizable:
            parts.append(f"<p><b>{name}</b>: linearizable</p>")
            continue
        if result.linearizable is None:
            parts.append(f"<p><b>{name}</b>: unknown ({html.escape(str(result.stopped))})</p>")
            continue
        fail = result.failure
        parts.append(f"<h2>{name}: not linearizable</h2>")
        if fail is None:
            continue
        parts.append("<pre>" + html.escape(summary(result)) + "</pre>")
        parts.append(_html_timeline(fail))
    return "\n".join(parts) + "\n"


def _html_timeline(failure: Failure) -> str:
    ops = failure.window
    col = _columns(ops)
    scale = 60
    end = (len(col) + 2) * scale
    rows = []
    for row, op in enumerate(ops):
        left = 60 + col[op.call] * scale
        right = end if math.isinf(op.ret) else 60 + col[op.ret] * scale
        classes = "op" + (" culprit" if op is failure.culprit else "")
        classes += " open" if math.isinf(op.ret) else ""
        title = html.escape(f"process {op.process}, lines {_lines(op)}: {op.describe()}")
        top = row * 28
        rows.append(f"<div class='p' style='top:{top}px'>p{op.process}</div>"
                    f"<div class='{classes}' title='{title}' style='top:{top}px;left:{left}px;"
                    f"width:{max(right - left, 8)}px'>{html.escape(op.describe())}</div>")
    height = len(ops) * 28
    return (f"<div class='tl' style='height:{height}px;min-width:{end + 300}px'>"
            + "".join(rows) + "</div>")
