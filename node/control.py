"""Blocking request/reply over UDP for status and fault control (tests, supervisor, CLI)."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time
from typing import Any

from raftspec.node.transport import parse_addr
from raftspec.node.wire import BadDatagram, decode, encode

RESEND_S = 0.25
_rids = itertools.count(int.from_bytes(os.urandom(3), "little"))


def query(addr: str, body: dict[str, Any], secret: bytes | None = None,
          timeout: float = 0.5) -> dict[str, Any] | None:
    """Send ``body`` to ``addr`` and wait for the reply with the same rid; None on timeout.
    The request is sent again every ``RESEND_S`` (every request here is idempotent): a node
    that is still starting, or a lost datagram, costs a resend, not the whole timeout."""
    rid = next(_rids)
    data = encode(dict(body, rid=rid), secret)
    dest = parse_addr(addr)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        deadline = time.monotonic() + timeout
        resend = 0.0
        while True:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                return None
            if now >= resend:
                with contextlib.suppress(OSError):
                    s.sendto(data, dest)
                resend = now + RESEND_S
            s.settimeout(max(0.001, min(left, resend - now)))
            try:
                got, _ = s.recvfrom(65_536)
            except (TimeoutError, ConnectionRefusedError, OSError):
                continue
            try:
                reply = decode(got, secret)
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
