"""The per-node NDJSON event trace: schema, writer, reader and causal merge.

Written by ``node/`` (``--trace FILE``), read by the trace validator. Self-contained: imports
nothing from reference/ or node/. The full field-by-field description is docs/trace-schema.md.

Every line is one JSON object, an *event*, with the node's state *after* the event:

    {"v": 1, "node": 2, "seq": 17, "event": "recv", "term": 3, "role": "follower",
     "voted_for": 1, "log_len": 12, "last_log_term": 3, "commit_index": 11,
     "snapshot_index": 0, "time_ns": 1718000000000000000, "msg": {...}}

``seq`` increases by one per event in a node's file (it continues across restarts when the node
appends to the same file). A ``send`` event's ``msg.id`` is ``"<node>:<seq>"`` (its own seq); the
datagram carries that id, so the receiver's ``recv`` event names the send it matches.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any, TypeVar

E = TypeVar("E")

SCHEMA_VERSION = 1

MAX_ID = 2 ** 31 - 1
"""Node ids are 1..MAX_ID, as the node takes them (node/wire.py ``MAX_ID``, what --id accepts)."""
MAX_MEMBERS = 1_000
"""At most this many members in a configuration (node/wire.py ``MAX_MEMBERS``)."""

ROLES = ("follower", "candidate", "leader")

# event name -> extra fields (beyond STATE_FIELDS) that it must carry, with their types
EVENTS: dict[str, dict[str, tuple[type, ...]]] = {
    "init": {"members": (dict,)},              # process started (fresh or recovered)
    "timeout": {},                             # election timeout: term+1, candidate, voted self
    "become_leader": {},                       # won the election (before its no-op entry)
    "client_request": {"index": (int,)},       # leader appended an entry (no-op, command, config)
    "advance_commit": {},                      # leader's commit index advanced by counting
    "update_term": {"from_role": (str,)},      # saw a higher term in a message: follower
    "step_down": {"reason": (str,)},           # leader gave up: check_quorum or removed
    "snapshot": {"index": (int,)},             # log compacted up to index (local)
    "send": {"msg": (dict,)},
    "recv": {"msg": (dict,)},
}

# optional fields (added after version 1 shipped; readers must accept their absence)
OPTIONAL_EVENT_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "client_request": {"kind": (str,), "hash": (str,), "members": (dict,)},
}
OPTIONAL_MSG_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "append": {"entry_hashes": (list,), "entry_kinds": (list,)},
}
ENTRY_KINDS = ("noop", "command", "config")

STATE_FIELDS: dict[str, tuple[type, ...]] = {
    "node": (int,), "seq": (int,), "event": (str,), "term": (int,), "role": (str,),
    "voted_for": (int, type(None)), "log_len": (int,), "last_log_term": (int,),
    "commit_index": (int,), "snapshot_index": (int,), "time_ns": (int,),
}

MSG_COMMON: dict[str, tuple[type, ...]] = {
    "id": (str,), "type": (str,), "from": (int,), "to": (int,), "term": (int,),
}

# message type -> its fields in the trace
MSG_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "vote": {"last_log_index": (int,), "last_log_term": (int,)},
    "vote_resp": {"granted": (bool,)},
    "append": {"prev_index": (int,), "prev_term": (int,), "entries": (list,),
               "n_entries": (int,), "commit": (int,)},
    "append_resp": {"success": (bool,), "match_index": (int,), "conflict_index": (int,),
                    "conflict_term": (int,)},
    "snap": {"snap_index": (int,), "snap_term": (int,), "offset": (int,), "size": (int,),
             "done": (bool,)},
    "snap_resp": {"success": (bool,), "snap_index": (int,), "offset": (int,), "done": (bool,),
                  "match_index": (int,)},
}


class TraceSchemaError(ValueError):
    """A trace line that does not follow the schema; the message names file:line: field."""


def command_hash(command: Any) -> str:
    """First 8 hex digits of SHA-256 over the command's canonical JSON (sorted keys, no spaces,
    ASCII escapes): equal commands hash equal in every process, whatever the wire format."""
    text = json.dumps(command, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def command_kind(command: Any) -> str:
    """``noop`` (a new leader's entry), ``config`` (membership change) or ``command`` (kv)."""
    op = command.get("op") if isinstance(command, dict) else None
    return op if op in ("noop", "config") else "command"


def _entry_hash(e: Any) -> str:
    h = getattr(e, "digest", "")
    if not h:
        h = command_hash(e.data)
        with contextlib.suppress(AttributeError):
            e.digest = h                              # cache on the entry when it allows it
    return h


def entry_fields(e: Any) -> dict[str, Any]:
    """The extra fields of a ``client_request`` event for the appended entry ``e``."""
    out: dict[str, Any] = {"kind": command_kind(e.data), "hash": _entry_hash(e)}
    if out["kind"] == "config":
        out["members"] = dict(e.data.get("members", {}))
    return out


def message_fields(m: Any) -> dict[str, Any]:
    """The trace form of a message object with the attributes named in MSG_FIELDS."""
    out: dict[str, Any] = {"id": m.msg_id, "type": m.type, "from": m.src, "to": m.dst,
                           "term": m.term}
    for name in MSG_FIELDS[m.type]:
        if name == "entries":
            out["entries"] = [e.term for e in m.entries]
        elif name == "n_entries":
            out["n_entries"] = len(m.entries)
        elif name == "size":
            out["size"] = len(m.chunk)
        else:
            out[name] = getattr(m, name)
    if m.type == "append":
        out["entry_hashes"] = [_entry_hash(e) for e in m.entries]
        out["entry_kinds"] = [command_kind(e.data) for e in m.entries]
    return out


class TraceWriter:
    """Appends events for one node; continues ``seq`` after the last line of an existing file."""

    def __init__(self, path: str, node: int) -> None:
        self.path = path
        self.node = node
        self.seq = _last_seq(path)
        self._f: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, event: dict[str, Any]) -> int:
        """Write one event (state fields already in it); returns the seq it was given."""
        self.seq += 1
        obj = {"v": SCHEMA_VERSION, "node": self.node, "seq": self.seq}
        obj.update(event)
        obj["time_ns"] = time.time_ns()
        self._f.write(json.dumps(obj, separators=(",", ":")) + "\n")
        return self.seq

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def _last_seq(path: str) -> int:
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return 0
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 65536))
        lines = f.read().splitlines()
    for line in reversed(lines):
        try:
            return int(json.loads(line)["seq"])
        except (ValueError, KeyError, TypeError, RecursionError):
            continue                                  # a torn last line from a SIGKILL
    return 0


def _has_type(value: Any, types: tuple[type, ...]) -> bool:
    """isinstance, except that a bool is not an int: JSON ``true`` is not the number 1."""
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


def check_event(obj: Any, where: str = "") -> dict[str, Any]:
    """Validate one decoded event; raise TraceSchemaError naming ``where`` and the field."""
    def bad(field: str, why: str) -> TraceSchemaError:
        return TraceSchemaError(f"{where}: {field}: {why}" if where else f"{field}: {why}")

    def check_id(field: str, node: int) -> None:
        if not 0 < node <= MAX_ID:
            raise bad(field, f"node id {node} is not in 1..{MAX_ID}")

    if not isinstance(obj, dict):
        raise bad("event", "not a JSON object")
    if obj.get("v") != SCHEMA_VERSION:
        raise bad("v", f"expected schema version {SCHEMA_VERSION}, got {obj.get('v')!r}")
    for name, types in STATE_FIELDS.items():
        if name not in obj:
            raise bad(name, "missing")
        if not _has_type(obj[name], types):
            raise bad(name, f"wrong type {type(obj[name]).__name__}")
    check_id("node", obj["node"])
    if obj["voted_for"] is not None:
        check_id("voted_for", obj["voted_for"])
    if obj["role"] not in ROLES:
        raise bad("role", f"unknown role {obj['role']!r}")
    kind = obj["event"]
    if kind not in EVENTS:
        raise bad("event", f"unknown event {kind!r}")
    for name, types in EVENTS[kind].items():
        if not _has_type(obj.get(name), types):
            raise bad(name, "missing or wrong type")
    for name, types in OPTIONAL_EVENT_FIELDS.get(kind, {}).items():
        if name in obj and not _has_type(obj[name], types):
            raise bad(name, "wrong type")
    if "kind" in obj and kind == "client_request" and obj["kind"] not in ENTRY_KINDS:
        raise bad("kind", f"unknown entry kind {obj['kind']!r}")
    declared = EVENTS[kind].keys() | OPTIONAL_EVENT_FIELDS.get(kind, {}).keys()
    if "members" in declared and "members" in obj:
        if len(obj["members"]) > MAX_MEMBERS:
            raise bad("members", f"more than {MAX_MEMBERS} members")
        for k in obj["members"]:
            if not (k.isascii() and k.isdigit() and len(k) <= 10 and 0 < int(k) <= MAX_ID):
                raise bad("members", f"node id {k!r} is not in 1..{MAX_ID}")
    if kind in ("send", "recv"):
        msg = obj["msg"]
        for name, types in MSG_COMMON.items():
            if not _has_type(msg.get(name), types):
                raise bad(f"msg.{name}", "missing or wrong type")
        check_id("msg.from", msg["from"])
        check_id("msg.to", msg["to"])
        if msg["type"] not in MSG_FIELDS:
            raise bad("msg.type", f"unknown message type {msg['type']!r}")
        for name, types in MSG_FIELDS[msg["type"]].items():
            if not _has_type(msg.get(name), types):
                raise bad(f"msg.{name}", "missing or wrong type")
        if msg["type"] == "append" and not all(_has_type(t, (int,)) for t in msg["entries"]):
            raise bad("msg.entries", "not a list of terms (ints)")
        for name, types in OPTIONAL_MSG_FIELDS.get(msg["type"], {}).items():
            if name not in msg:
                continue
            if not _has_type(msg[name], types) or len(msg[name]) != len(msg["entries"]):
                raise bad(f"msg.{name}", "wrong type or not one per entry")
            if name == "entry_kinds" and not all(k in ENTRY_KINDS for k in msg[name]):
                raise bad(f"msg.{name}", "unknown entry kind")
            if name == "entry_hashes" and not all(isinstance(h, str) for h in msg[name]):
                raise bad(f"msg.{name}", "not a list of strings")
    return obj


def read_trace(path: str, *, allow_torn_tail: bool = True) -> Iterator[dict[str, Any]]:
    """Yield validated events from one node's file. A torn last line (SIGKILL mid-write) is
    skipped when ``allow_torn_tail``; any other bad line raises TraceSchemaError."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for n, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):   # RecursionError: nested too deep
            if allow_torn_tail and n == len(lines):
                return
            raise TraceSchemaError(f"{path}:{n}: not valid JSON") from None
        yield check_event(obj, f"{path}:{n}")


def causal_order(
    files: Sequence[Sequence[E]],
    *,
    send_id: Callable[[E], str | None],
    waits_for: Callable[[E], str | None],
    key: Callable[[E], Any],
) -> tuple[list[E], list[int]]:
    """Merge per-node event sequences into one order that keeps each node's order and puts every
    event after the send it waits for (``waits_for``: a message id, or None).

    Among events that are ready, the lowest ``key`` (a clock) goes first: a tie-break only;
    clocks never override causality. An event waiting for a send that no file contains is
    ready. Returns the merged events and, per file, how far the merge got: short of the end
    only when events wait for each other's sends in a cycle (a corrupted trace).
    """
    sent = {i for events in files for e in events if (i := send_id(e)) is not None}
    done: set[str] = set()
    pos = [0] * len(files)
    heap: list[tuple[Any, int]] = []
    waiting: dict[str, list[int]] = {}
    out: list[E] = []

    def offer(k: int) -> None:
        if pos[k] < len(files[k]):
            e = files[k][pos[k]]
            w = waits_for(e)
            if w is not None and w in sent and w not in done:
                waiting.setdefault(w, []).append(k)
            else:
                heapq.heappush(heap, (key(e), k))

    for k in range(len(files)):
        offer(k)
    while heap:
        _, k = heapq.heappop(heap)
        e = files[k][pos[k]]
        out.append(e)
        pos[k] += 1
        sid = send_id(e)
        if sid is not None:
            done.add(sid)
            for j in waiting.pop(sid, []):
                heapq.heappush(heap, (key(files[j][pos[j]]), j))
        offer(k)
    return out, pos


def merge_by_causality(traces: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One total order consistent with each node's seq order and send-before-receive.

    Among events that are ready, the lowest ``time_ns`` goes first (a tie-break only; clocks
    never override causality). A recv whose send is missing from the inputs (e.g. truncated
    file) is treated as ready. Receives that wait for each other's sends in a cycle are an
    error (TraceSchemaError).
    """
    files = [list(t) for t in traces]
    merged, pos = causal_order(
        files,
        send_id=lambda e: e["msg"]["id"] if e["event"] == "send" else None,
        waits_for=lambda e: e["msg"]["id"] if e["event"] == "recv" else None,
        key=lambda e: e["time_ns"],
    )
    stuck = [events[k] for events, k in zip(files, pos, strict=True) if k < len(events)]
    if stuck:
        raise TraceSchemaError(
            "receives wait for each other's sends in a cycle: "
            + ", ".join(f"node {e['node']} seq {e['seq']}" for e in stuck)
        )
    return merged
