"""Readers: Jepsen register logs, Porcupine's kv histories and raftspec's client NDJSON.

Each reader pairs every invocation with the next completion of the same process (a process has
at most one operation outstanding) and applies the interpretation that Porcupine's tests use for
the shared corpus (see ``../shared/linearizability/porcupine/README.md`` and docs/lincheck.md):

* ``ok``: completed; the result is checked.
* ``fail``: did not take effect, so the operation is dropped, except a Jepsen ``:fail :cas``,
  which is a completed cas that returned false (the compare did not match).
* ``info``, or no completion at all: unknown outcome; the response time is +infinity.

Jepsen and Porcupine kv files have no timestamps: the line number is the clock. Malformed input
raises :class:`~raftspec.protocol.errors.RaftspecError` naming the file, line and field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from raftspec.protocol.errors import RaftspecError
from raftspec.traces.lincheck.history import (
    KV_FUNCTIONS,
    REGISTER_FUNCTIONS,
    UNKNOWN,
    History,
    Operation,
)

__all__ = ["FORMATS", "detect_format", "parse", "read_history"]

FORMATS = ("jepsen", "porcupine-kv", "ndjson")
_DEFAULT_MODEL = {"jepsen": "register", "porcupine-kv": "kv"}
_TYPES = ("invoke", "ok", "fail", "info")

_JEPSEN = re.compile(r"INFO\s+jepsen\.util\s+-\s+(\S+)\s+(\S+)\s+(\S+)\s*(.*?)\s*$")
_EDN_STRING = r'"(?:[^"\\]|\\.)*"'
_EDN = re.compile(
    r"\{\s*:process\s+(\S+?),\s*:type\s+(\S+?),\s*:f\s+(\S+?),\s*:key\s+(" + _EDN_STRING
    + r"),\s*:value\s+(nil|" + _EDN_STRING + r")\s*\}\s*$"
)


class _Pairing:
    """Matches invocations with completions, per process, and builds the operations."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.pending: dict[int, tuple[int, str, str | None, Any, float]] = {}
        self.ops: list[tuple[int, Operation]] = []

    def invoke(self, line: int, process: int, f: str, key: str | None, arg: Any,
               time: float) -> None:
        if process in self.pending:
            first = self.pending[process][0]
            raise RaftspecError(
                f"process {process} invokes again while its operation from line {first} "
                "is still outstanding", path=self.path, line=line, field="process")
        self.pending[process] = (line, f, key, arg, time)

    def complete(self, line: int, process: int, f: str, key: str | None,
                 time: float) -> tuple[int, str, str | None, Any, float]:
        call = self.pending.pop(process, None)
        if call is None:
            raise RaftspecError(f"process {process} completes an operation it never invoked",
                                path=self.path, line=line, field="process")
        if call[1] != f:
            raise RaftspecError(
                f"completion is {f!r} but process {process} invoked {call[1]!r} on line "
                f"{call[0]}", path=self.path, line=line, field="f")
        if key is not None and call[2] != key:
            raise RaftspecError(
                f"completion is for key {key!r} but process {process} invoked key "
                f"{call[2]!r} on line {call[0]}", path=self.path, line=line, field="key")
        if time < call[4]:
            raise RaftspecError(f"completion time {time} is before its invocation ({call[4]})",
                                path=self.path, line=line, field="time")
        return call

    def add(self, call: tuple[int, str, str | None, Any, float], process: int, out: Any,
            ret: float, ret_line: int | None) -> None:
        line, f, key, arg, time = call
        self.ops.append((line, Operation(process, f, key, arg, out, time, ret, line, ret_line)))

    def finish(self) -> tuple[Operation, ...]:
        """Operations never completed stay open: their outcome is unknown."""
        for process, call in self.pending.items():
            self.add(call, process, UNKNOWN, math.inf, None)
        self.pending.clear()
        self.ops.sort(key=lambda item: item[0])
        return tuple(op for _, op in self.ops)


def _int(text: str, path: str, line: int, field: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RaftspecError(f"expected an integer, got {text!r}", path=path, line=line,
                            field=field) from None


def _keyword(text: str, allowed: Iterable[str], path: str, line: int, field: str) -> str:
    name = text[1:] if text.startswith(":") else ""
    if name not in allowed:
        raise RaftspecError(f"expected one of {', '.join(':' + a for a in allowed)}, got "
                            f"{text!r}", path=path, line=line, field=field)
    return name


def _jepsen_value(text: str, f: str, path: str, line: int) -> Any:
    """nil, an integer, or ``[a b]`` for cas."""
    if f == "cas":
        parts = text.strip("[]").split()
        if not (text.startswith("[") and text.endswith("]") and len(parts) == 2):
            raise RaftspecError(f"expected [from to], got {text!r}", path=path, line=line,
                                field="value")
        return (_int(parts[0], path, line, "value"), _int(parts[1], path, line, "value"))
    if text == "nil":
        return None
    return _int(text, path, line, "value")


def parse_jepsen(lines: Iterable[str], path: str) -> tuple[Operation, ...]:
    """Jepsen/log4j lines ``INFO  jepsen.util - <process> <type> <f> <value>`` (a register)."""
    pairing = _Pairing(path)
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        found = _JEPSEN.match(text)
        if found is None:
            raise RaftspecError("expected 'INFO  jepsen.util - <process> <type> <f> <value>'",
                                path=path, line=line, field="line")
        process = _int(found[1], path, line, "process")
        kind = _keyword(found[2], _TYPES, path, line, "type")
        f = _keyword(found[3], ("read", "write", "cas"), path, line, "f")
        value = found[4]
        if kind == "invoke":
            arg = None if f == "read" else _jepsen_value(value, f, path, line)
            pairing.invoke(line, process, f, None, arg, line)
            continue
        call = pairing.complete(line, process, f, None, line)
        if kind == "info":
            pairing.add(call, process, UNKNOWN, math.inf, line)
            continue
        if kind == "fail":
            if f == "cas":
                pairing.add(call, process, False, line, line)
            continue
        out = None  # write: nothing to check
        if f == "read":
            out = _jepsen_value(value, f, path, line)
        elif f == "cas":
            out = True
        pairing.add(call, process, out, line, line)
    return pairing.finish()


def _edn_string(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def parse_porcupine_kv(lines: Iterable[str], path: str) -> tuple[Operation, ...]:
    """Porcupine kv lines ``{:process P, :type T, :f F, :key "K", :value V}``."""
    pairing = _Pairing(path)
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        found = _EDN.match(text.strip())
        if found is None:
            raise RaftspecError('expected {:process P, :type T, :f F, :key "K", :value V}',
                                path=path, line=line, field="line")
        process = _int(found[1], path, line, "process")
        kind = _keyword(found[2], _TYPES, path, line, "type")
        f = _keyword(found[3], ("get", "put", "append"), path, line, "f")
        key = _edn_string(found[4])
        value = None if found[5] == "nil" else _edn_string(found[5])
        if kind == "invoke":
            if f != "get" and value is None:
                raise RaftspecError(f"{f} needs a string value", path=path, line=line,
                                    field="value")
            pairing.invoke(line, process, f, key, value, line)
            continue
        call = pairing.complete(line, process, f, key, line)
        if kind == "info":
            pairing.add(call, process, UNKNOWN, math.inf, line)
            continue
        if kind == "fail":
            continue
        if f == "get" and value is None:
            raise RaftspecError("an ok get needs the string it read", path=path, line=line,
                                field="value")
        pairing.add(call, process, value if f == "get" else None, line, line)
    return pairing.finish()


MAX_TIME = 2**63
"""The largest ``time`` magnitude taken: a signed 64-bit count of nanoseconds."""


def _field(obj: dict[str, Any], name: str, kinds: tuple[type, ...], path: str, line: int,
           what: str) -> Any:
    if name not in obj:
        raise RaftspecError("missing field", path=path, line=line, field=name)
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise RaftspecError(f"expected {what}, got {json.dumps(value)}", path=path, line=line,
                            field=name)
    return value


def _register_value(value: Any, f: str, path: str, line: int) -> Any:
    if f == "cas":
        if (isinstance(value, list) and len(value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            return (value[0], value[1])
        raise RaftspecError(f"expected [from, to], got {json.dumps(value)}", path=path,
                            line=line, field="value")
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise RaftspecError(f"expected an integer or null, got {json.dumps(value)}", path=path,
                        line=line, field="value")


def parse_ndjson(lines: Iterable[str], path: str) -> tuple[Operation, ...]:
    """raftspec client histories: one JSON object per line (schema in docs/lincheck.md)."""
    pairing = _Pairing(path)
    functions = sorted(KV_FUNCTIONS | REGISTER_FUNCTIONS)
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as err:   # RecursionError: nested too deep
            raise RaftspecError(f"not valid JSON ({err.args[0].split(':')[0]})", path=path,
                                line=line, field="line") from None
        if not isinstance(obj, dict):
            raise RaftspecError("expected a JSON object", path=path, line=line, field="line")
        process = _field(obj, "process", (int,), path, line, "an integer")
        kind = _field(obj, "type", (str,), path, line, "a string")
        if kind not in _TYPES:
            raise RaftspecError(f"expected one of {', '.join(_TYPES)}, got {kind!r}", path=path,
                                line=line, field="type")
        f = _field(obj, "f", (str,), path, line, "a string")
        if f not in functions:
            raise RaftspecError(f"expected one of {', '.join(functions)}, got {f!r}", path=path,
                                line=line, field="f")
        time = _field(obj, "time", (int, float), path, line, "a number (nanoseconds)")
        if not abs(time) <= MAX_TIME:   # and NaN: "before" and "after" mean nothing then
            raise RaftspecError(f"expected a finite number of nanoseconds within ±2^63, got "
                                f"{json.dumps(time)[:40]}", path=path, line=line, field="time")
        if f in KV_FUNCTIONS:
            key = _field(obj, "key", (str,), path, line, "a string")
            value = obj.get("value")
            if value is not None and not isinstance(value, str):
                raise RaftspecError(f"expected a string or null, got {json.dumps(value)}",
                                    path=path, line=line, field="value")
        else:
            key = obj.get("key")
            if key is not None and not isinstance(key, str):
                raise RaftspecError(f"expected a string, got {json.dumps(key)}", path=path,
                                    line=line, field="key")
            value = _register_value(obj.get("value"), f, path, line)
        if kind == "invoke":
            if f in ("put", "append", "write", "cas") and value is None:
                raise RaftspecError(f"invoke of {f} needs its argument", path=path, line=line,
                                    field="value")
            pairing.invoke(line, process, f, key, value, time)
            continue
        if kind == "info":
            call = pairing.complete(line, process, f, key, time)
            pairing.add(call, process, UNKNOWN, math.inf, line)
            continue
        call = pairing.complete(line, process, f, key, time)
        if kind == "fail":
            continue
        if f in ("get", "read"):
            if f == "get" and value is None:
                raise RaftspecError('an ok get needs the string it read ("" for a missing key)',
                                    path=path, line=line, field="value")
            out = value
        else:
            out = True if f == "cas" else None
        pairing.add(call, process, out, time, line)
    return pairing.finish()


_PARSERS: dict[str, Callable[[Iterable[str], str], tuple[Operation, ...]]] = {
    "jepsen": parse_jepsen,
    "porcupine-kv": parse_porcupine_kv,
    "ndjson": parse_ndjson,
}


def detect_format(text: str, path: str) -> str:
    """Recognise the format from the first non-blank line (or, for an empty file, the suffix)."""
    for line in text.splitlines():
        head = line.lstrip()
        if not head:
            continue
        if head.startswith("INFO") and "jepsen.util" in head:
            return "jepsen"
        if head.startswith("{:"):
            return "porcupine-kv"
        if head.startswith("{"):
            return "ndjson"
        raise RaftspecError("unrecognised history format (expected a Jepsen log, Porcupine kv "
                            "lines or NDJSON); use --format", path=path, line=1, field="format")
    suffix = Path(path).suffix
    if suffix == ".log":
        return "jepsen"
    return "porcupine-kv" if suffix == ".txt" else "ndjson"


def _implied_model(fmt: str, ops: tuple[Operation, ...], path: str) -> str:
    if fmt in _DEFAULT_MODEL:
        return _DEFAULT_MODEL[fmt]
    kinds = {op.f in KV_FUNCTIONS for op in ops}
    if len(kinds) > 1:
        first = next(op for op in ops if op.f in REGISTER_FUNCTIONS)
        raise RaftspecError(f"mixes kv (get/put/append) and register ({first.f}) operations",
                            path=path, line=first.line, field="f")
    return "register" if kinds == {False} else "kv"


def parse(text: str, path: str, fmt: str | None = None, model: str | None = None) -> History:
    """Parse a history held in memory. ``fmt`` and ``model`` are detected when None."""
    fmt = fmt or detect_format(text, path)
    if fmt not in _PARSERS:
        raise RaftspecError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})",
                            path=path, field="format")
    ops = _PARSERS[fmt](text.splitlines(), path)
    implied = _implied_model(fmt, ops, path)
    if model is None:
        model = implied
    wanted = KV_FUNCTIONS if model == "kv" else REGISTER_FUNCTIONS
    for op in ops:
        if op.f not in wanted:
            raise RaftspecError(f"operation {op.f!r} is not part of the {model} model",
                                path=path, line=op.line, field="f")
    return History(path, fmt, model, ops)


def read_history(path: str | Path, fmt: str | None = None, model: str | None = None) -> History:
    """Read and parse a history file; unreadable files raise RaftspecError, not OSError."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise RaftspecError(f"cannot read history: {reason}", path=name) from None
    return parse(text, name, fmt, model)
