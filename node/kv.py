"""The replicated key-value state machine with exactly-once client sessions (dissertation §6.3).

Commands are log entries ``{"op": "put"|"append"|"get", "key", "value", "cid", "seq"}``. Each
client (``cid``) has at most one outstanding request and numbers them ``seq`` = 1, 2, ...; the
session table remembers the last applied ``seq`` and its result, so a retried command is answered
from the table instead of being applied twice. Reads go through the log too: a ``get`` is
linearizable because it is ordered with every write by the log (§6.4's simplest option).

A key's value is at most ``MAX_VALUE_BYTES`` (UTF-8): an append that would grow it beyond is
refused — deterministically, at apply time, on every replica — with the result
``{"err": "value_too_large"}`` and changes nothing. A command whose ``seq`` is older than the
session's last one is not applied and returns None: the server never answers it "ok".

A snapshot image (``snapshot``) is zlib-compressed JSON ``{"data": {key: value}, "sessions":
{cid: [seq, result]}}``; ``read_image`` checks one from a peer or the disk before it is used.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from raftspec.node.wire import MAX_INDEX, MAX_STR

MAX_VALUE_BYTES = 1 << 20
Sessions = dict[str, tuple[int, str | dict]]


class BadImage(ValueError):
    """Bytes that are not a kv snapshot image; ``str(err)`` says why."""


def read_image(blob: bytes) -> tuple[dict[str, str], Sessions]:
    """The data and sessions of a snapshot image, every field checked as the wire checks a
    command's (keys and client ids of at most MAX_STR characters, string values, seq
    0..MAX_INDEX, a result a string or a refusal); raises ``BadImage``."""
    if not blob:
        return {}, {}
    try:
        obj = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError, RecursionError) as err:
        raise BadImage(f"not a kv snapshot image (zlib-compressed JSON): {err}") from None
    data = obj.get("data") if isinstance(obj, dict) else None
    sessions = obj.get("sessions") if isinstance(obj, dict) else None
    if not (isinstance(data, dict)
            and all(len(k) <= MAX_STR and isinstance(v, str) for k, v in data.items())):
        raise BadImage('kv snapshot image: "data" is not {key: string value}')
    if not (isinstance(sessions, dict)
            and all(len(cid) <= MAX_STR and _is_session(s) for cid, s in sessions.items())):
        raise BadImage('kv snapshot image: "sessions" is not {client id: [seq, result]}')
    return data, {cid: (seq, result) for cid, (seq, result) in sessions.items()}


def _is_session(s: Any) -> bool:
    if not (isinstance(s, list) and len(s) == 2):
        return False
    seq, result = s
    return (type(seq) is int and 0 <= seq <= MAX_INDEX
            and (isinstance(result, str) or _is_refusal(result)))


def _is_refusal(result: Any) -> bool:
    """``{"err": ..., "limit"?: ...}`` as ``apply`` returns it (the server sends its fields)."""
    return (isinstance(result, dict) and isinstance(result.get("err"), str)
            and set(result) <= {"err", "limit"} and type(result.get("limit", 0)) is int)


def value_bytes(value: str) -> int:
    """UTF-8 size of a value (O(1) for ASCII strings)."""
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


class KVStore:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.sessions: Sessions = {}            # cid -> (last seq, its result)

    def last_seq(self, cid: str) -> int | None:
        """The last applied sequence number of session ``cid``."""
        s = self.sessions.get(cid)
        return s[0] if s is not None else None

    def cached(self, cid: str, seq: int) -> str | dict | None:
        """Result of an already applied ``(cid, seq)``, or None if not applied yet."""
        s = self.sessions.get(cid)
        if s is not None and s[0] == seq:
            return s[1]
        return None

    def apply(self, cmd: dict[str, Any]) -> str | dict | None:
        """Apply one committed command; returns its result ("" for a missing key), a refusal
        ``{"err": ...}``, or None (noop, config, or a stale duplicate: not applied)."""
        op = cmd.get("op")
        if op not in ("put", "append", "get"):
            return None                                     # noop, config
        cid, seq = cmd.get("cid"), cmd.get("seq", 0)
        if cid is not None:
            s = self.sessions.get(cid)
            if s is not None and seq <= s[0]:
                return s[1] if seq == s[0] else None        # duplicate: do not apply again
        key, value = cmd.get("key"), cmd.get("value") or ""
        if not isinstance(key, str) or not isinstance(value, str):
            return {"err": "bad_command"}                   # checked on decode: never here
        result: str | dict
        if op == "put":
            if value_bytes(value) > MAX_VALUE_BYTES:
                result = {"err": "value_too_large", "limit": MAX_VALUE_BYTES}
            else:
                self.data[key] = value
                result = value
        elif op == "append":
            old = self.data.get(key, "")
            if value_bytes(old) + value_bytes(value) > MAX_VALUE_BYTES:
                result = {"err": "value_too_large", "limit": MAX_VALUE_BYTES}
            else:
                self.data[key] = old + value
                result = value
        else:
            result = self.data.get(key, "")
        if cid is not None:
            self.sessions[cid] = (seq, result)
        return result

    def snapshot(self) -> bytes:
        return zlib.compress(json.dumps({"data": self.data, "sessions": self.sessions}).encode())

    def restore(self, blob: bytes) -> None:
        """Replace the state by a snapshot image; raises ``BadImage`` (nothing changed)."""
        self.data, self.sessions = read_image(blob)
