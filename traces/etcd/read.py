"""Reading etcd-raft's trace files (``with_tla`` build tag + a TraceLogger, one JSON object a
line; format in docs/etcd.md): recognising them, gzip, and checking every field before use.

A line may carry a logger's prefix before its first ``{`` (upstream's ``validate.sh`` strips it
too); lines whose ``tag`` is not ``trace`` are someone else's log lines and are skipped.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

from raftspec.protocol.errors import RaftspecError
from raftspec.traces.validate.files import open_text

EVENT_NAMES = frozenset((
    "InitState", "BecomeCandidate", "BecomeFollower", "BecomeLeader", "Commit", "Replicate",
    "ChangeConf", "ApplyConfChange", "Ready", "SendAppendEntriesRequest",
    "ReceiveAppendEntriesRequest", "SendAppendEntriesResponse", "ReceiveAppendEntriesResponse",
    "SendRequestVoteRequest", "ReceiveRequestVoteRequest", "SendRequestVoteResponse",
    "ReceiveRequestVoteResponse", "SendSnapshot", "ReceiveSnapshot"))
ROLES = frozenset(("StateFollower", "StatePreCandidate", "StateCandidate", "StateLeader"))
MESSAGE_TYPES = {
    "SendAppendEntriesRequest": ("MsgApp", "MsgHeartbeat", "MsgSnap"),
    "ReceiveAppendEntriesRequest": ("MsgApp", "MsgHeartbeat", "MsgSnap"),
    "SendAppendEntriesResponse": ("MsgAppResp", "MsgHeartbeatResp"),
    "ReceiveAppendEntriesResponse": ("MsgAppResp", "MsgHeartbeatResp"),
    "SendRequestVoteRequest": ("MsgVote",), "ReceiveRequestVoteRequest": ("MsgVote",),
    "SendRequestVoteResponse": ("MsgVoteResp",), "ReceiveRequestVoteResponse": ("MsgVoteResp",),
}
CONF_ACTIONS = ("AddNewServer", "RemoveServer", "AddLearner")
MAX_UINT64 = 2 ** 64 - 1
"""etcd's node ids, terms and indexes are Go ``uint64`` (raftpb); a larger number is not etcd's.
Node ids are not bounded by our node's ``MAX_ID``: etcd's server draws 64-bit member ids."""
NODE_ID = f"a node id is required (a string of ASCII digits, 1..{MAX_UINT64})"
VOTE = f"a node id or \"0\" (none) is required (a string of ASCII digits, 0..{MAX_UINT64})"
NAT = f"a whole number 0..{MAX_UINT64} is required"


def looks_like_etcd(path: str) -> bool:
    """Whether the first JSON line is an etcd-raft trace line (an ``event`` object with a
    ``name`` and ``nid``), as opposed to our cluster's schema (``v``, ``node``, ``event``)."""
    try:
        with open_text(path) as f:
            for n, line in zip(range(1, 51), f, strict=False):
                start = line.find("{")
                if start < 0:
                    continue
                try:
                    obj = _loads(line[start:], path, n)
                except ValueError:
                    return False
                ev = obj.get("event") if isinstance(obj, dict) else None
                return isinstance(ev, dict) and "nid" in ev and "name" in ev
    except (OSError, UnicodeDecodeError, EOFError, zlib.error):
        return False      # not etcd's; the cluster reader then reports what is wrong
    return False


def read_lines(path: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, checked ``event`` object) for every trace line of the file."""
    out = []
    try:
        with open_text(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                start = line.find("{")
                if start < 0:
                    continue            # a log line of someone else
                try:
                    obj = _loads(line[start:], path, n)
                except ValueError:
                    raise RaftspecError("not valid JSON", path=path, line=n) from None
                if not isinstance(obj, dict) or obj.get("tag") != "trace":
                    continue
                out.append((n, check_event(obj.get("event"), path, n)))
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise bad_gzip(path, err) from None
    except (UnicodeDecodeError, OSError) as err:
        raise RaftspecError(f"cannot read trace file: {err}", path=path) from None
    return out


def _loads(text: str, path: str, n: int) -> Any:
    """``json.loads``, but a line nested too deeply for Python's parser (e.g. 100,000 ``[``:
    ``RecursionError``) is refused here, naming the line: no reader could read it."""
    try:
        return json.loads(text)
    except RecursionError:
        raise RaftspecError("not valid JSON: nested too deeply", path=path, line=n) from None


def bad_gzip(path: str, err: Exception) -> RaftspecError:
    """A file with gzip's magic bytes that does not decompress (corrupt or cut short): zlib's
    and gzip's own exceptions name neither the file nor the problem a user can act on."""
    why = "cut short" if isinstance(err, EOFError) else str(err) or type(err).__name__
    return RaftspecError(f"not a valid gzip file: {path} ({why})")


def _need(cond: bool, why: str, path: str, n: int, field: str) -> None:
    if not cond:
        raise RaftspecError(why, path=path, line=n, field=field)


def _node(v: Any, lowest: int = 1) -> bool:
    """A uint64 id as etcd writes it (``strconv.FormatUint``): ``str.isdigit`` alone took
    "²" (which ``int`` refuses) and "٣" (read as 3); a length check keeps ``int`` off 5000-digit
    strings (Python refuses beyond 4300)."""
    return (isinstance(v, str) and v.isascii() and v.isdigit() and len(v) <= 20
            and lowest <= int(v) <= MAX_UINT64)


def _nat(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_UINT64


def check_event(ev: Any, path: str, n: int) -> dict[str, Any]:
    """Every field the validator reads, with its type; a bad one is named (file:line: field)."""
    _need(isinstance(ev, dict), "a trace line needs an 'event' object", path, n, "event")
    name = ev.get("name")
    _need(isinstance(name, str) and name in EVENT_NAMES, f"unknown event name {name!r}", path,
          n, "event.name")
    _need(_node(ev.get("nid")), NODE_ID, path, n, "event.nid")
    st = ev.get("state")
    _need(isinstance(st, dict), "an object {term, vote, commit} is required", path, n,
          "event.state")
    _need(_nat(st.get("term")), NAT, path, n, "event.state.term")
    _need(_node(st.get("vote"), 0), VOTE, path, n, "event.state.vote")
    _need(_nat(st.get("commit")), NAT, path, n, "event.state.commit")
    role = ev.get("role")
    _need(isinstance(role, str) and role in ROLES, f"unknown role {role!r}", path, n,
          "event.role")
    _need(_nat(ev.get("log")), NAT, path, n, "event.log")
    conf = ev.get("conf")
    _need(isinstance(conf, list) and len(conf) == 2
          and all(isinstance(c, list) and all(_node(x) for x in c) for c in conf),
          f"two lists of node ids are required (strings of ASCII digits, 1..{MAX_UINT64})",
          path, n, "event.conf")
    if name in MESSAGE_TYPES:
        m = ev.get("msg")
        _need(isinstance(m, dict), "a message object is required", path, n, "event.msg")
        _need(m.get("type") in MESSAGE_TYPES[name],
              f"message type {m.get('type')!r} is not one of {MESSAGE_TYPES[name]}", path, n,
              "event.msg.type")
        for key in ("term", "entries", "logTerm", "index", "commit", "rejectHint"):
            _need(_nat(m.get(key)), NAT, path, n, f"event.msg.{key}")
        for key in ("from", "to"):
            _need(_node(m.get(key)), NODE_ID, path, n, f"event.msg.{key}")
        _need(isinstance(m.get("reject"), bool), "true or false is required", path, n,
              "event.msg.reject")
    if name in ("ChangeConf", "ApplyConfChange"):
        prop = ev.get("prop")
        cc = prop.get("cc") if isinstance(prop, dict) else None
        _need(isinstance(cc, dict), "a conf change object is required", path, n,
              "event.prop.cc")
        if name == "ChangeConf":
            ch = cc.get("changes")
            _need(isinstance(ch, list) and ch and all(
                isinstance(c, dict) and _node(c.get("nid")) and c.get("action") in CONF_ACTIONS
                for c in ch), f"a list of {{nid, action}} with nid a node id (a string of ASCII "
                f"digits, 1..{MAX_UINT64}) and action in {CONF_ACTIONS} is required", path, n,
                "event.prop.cc.changes")
        else:
            new = cc.get("newconf", [])
            _need(isinstance(new, list) and all(_node(x) for x in new),
                  f"a list of node ids is required (strings of ASCII digits, 1..{MAX_UINT64})",
                  path, n, "event.prop.cc.newconf")
    return ev
