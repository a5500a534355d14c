"""The replicated key-value state machine with exactly-once client sessions (dissertation §6.3).

Commands are log entries ``{"op": "put"|"append"|"get", "key", "value", "cid", "seq"}``. Each
client (``cid``) has at most one outstanding request and numbers them ``seq`` = 1, 2, ...; the
session table remembers the last applied ``seq`` and its result, so a retried command is answered
from the table instead of being applied twice. Reads go through the log too: a ``get`` is
linearizable because it is ordered with every write by the log (§6.4's simplest option).
"""

from __future__ import annotations

import json
import zlib
from typing import Any


class KVStore:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.sessions: dict[str, tuple[int, str]] = {}     # cid -> (last seq, its result)

    def cached(self, cid: str, seq: int) -> str | None:
        """Result of an already applied ``(cid, seq)``, or None if not applied yet."""
        s = self.sessions.get(cid)
        if s is not None and s[0] == seq:
            return s[1]
        return None

    def apply(self, cmd: dict[str, Any]) -> str | None:
        """Apply one committed command; returns its result ("" for a missing key)."""
        op = cmd.get("op")
        if op not in ("put", "append", "get"):
            return None                                     # noop, config
        cid, seq = cmd.get("cid"), cmd.get("seq", 0)
        if cid is not None:
            s = self.sessions.get(cid)
            if s is not None and seq <= s[0]:
                return s[1] if seq == s[0] else None        # duplicate: do not apply again
        key, value = cmd["key"], cmd.get("value") or ""
        if op == "put":
            self.data[key] = value
            result = value
        elif op == "append":
            self.data[key] = self.data.get(key, "") + value
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
