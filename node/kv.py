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
"""

from __future__ import annotations

import json
import zlib
from typing import Any

MAX_VALUE_BYTES = 1 << 20


def value_bytes(value: str) -> int:
    """UTF-8 size of a value (O(1) for ASCII strings)."""
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


class KVStore:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.sessions: dict[str, tuple[int, str]] = {}     # cid -> (last seq, its result)

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
        obj = json.loads(zlib.decompress(blob)) if blob else {"data": {}, "sessions": {}}
        self.data = dict(obj["data"])
        self.sessions = {k: (int(v[0]), v[1]) for k, v in obj["sessions"].items()}
