"""Blocking request/reply over UDP for status and fault control (tests, supervisor, CLI)."""

from __future__ import annotations

import itertools
import os
import socket
import time
from typing import Any

from raftspec.node.transport import parse_addr
from raftspec.node.wire import BadDatagram, decode, encode

_rids = itertools.count(int.from_bytes(os.urandom(3), "little"))


def query(addr: str, body: dict[str, Any], secret: bytes | None = None,
          timeout: float = 0.5) -> dict[str, Any] | None:
    """Send ``body`` to ``addr`` and wait for the reply with the same rid; None on timeout."""
    rid = next(_rids)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.sendto(encode(dict(body, rid=rid), secret), parse_addr(addr))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            s.settimeout(left)
            try:
                data, _ = s.recvfrom(65_536)
            except (TimeoutError, ConnectionRefusedError, OSError):
                if time.monotonic() >= deadline:
                    return None
                continue
            try:
                reply = decode(data, secret)
            except BadDatagram:
                continue
            if reply.get("rid") == rid:
                return reply


def status(addr: str, secret: bytes | None = None, timeout: float = 0.5) -> dict[str, Any] | None:
    return query(addr, {"k": "status"}, secret, timeout)


def control(addr: str, action: str, secret: bytes | None = None, timeout: float = 0.5,
            **fields: Any) -> bool:
    reply = query(addr, {"k": "ctl", "action": action, **fields}, secret, timeout)
    return bool(reply and reply.get("ok"))
