"""The kv client: find the leader, retry with the same (client id, seq) so each operation takes
effect at most once, and optionally record an invoke/ok/fail/info history for the
linearizability checker (format in docs/cluster.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import socket
import time
import uuid
from typing import IO, Any

from raftspec.node.errors import NodeError
from raftspec.node.transport import Addr, parse_addr
from raftspec.node.wire import (
    MAX_MESSAGE,
    MAX_STR,
    BadDatagram,
    Reassembler,
    encode,
    encode_batches,
)

SWEEP_S = 0.01                      # request timeouts are checked this often


class Unavailable(NodeError):
    """No leader answered in time. For a write the outcome is unknown. ``silent``: no node
    answered anything (stopped, unreachable, or it drops this client's unsigned or wrongly
    signed requests)."""

    silent = False


class Rejected(NodeError):
    """The cluster refused the operation (e.g. ``value_too_large``): it had no effect."""


class StaleSession(Unavailable):
    """The session's sequence number is behind the cluster's (someone else used its id): the
    outcome of the operation is unknown and the session is finished."""


# errors after which retrying cannot help; everything else is retried until the timeout
REFUSALS = ("value_too_large", "reply_too_large", "message_too_large")
REFUSED_CHANGES = ("cannot remove", "bad node id", "bad address", "a configuration has")
"""How a node words its refusal of a membership change (no use retrying it elsewhere)."""


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: ClusterClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.client._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        pass


class History:
    """Appends client history lines: {"process","type","f","key","value","time"}."""

    def __init__(self, path_or_file: str | IO[str]) -> None:
        self._own = isinstance(path_or_file, str)
        self._f: IO[str] = (open(path_or_file, "a", encoding="utf-8")  # noqa: SIM115
                            if isinstance(path_or_file, str) else path_or_file)

    def record(self, process: int, typ: str, f: str, key: str, value: str | None) -> None:
        self._f.write(json.dumps({"process": process, "type": typ, "f": f, "key": key,
                                  "value": value, "time": time.monotonic_ns()}) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._own:
            self._f.close()


class ClusterClient:
    """One UDP socket multiplexing many sessions' requests, routed back by request id."""

    def __init__(self, cluster: list[str], secret: bytes | None = None,
                 try_timeout: float = 0.5, history: History | None = None) -> None:
        if not cluster:
            raise NodeError("--cluster: give at least one HOST:PORT")
        self.addrs = [parse_addr(a) for a in cluster]
        self.secret = secret
        self.try_timeout = try_timeout
        self.history = history
        self.leader: Addr | None = None
        self._next = 0
        self._rids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._processes = itertools.count(0)
        self._outbox: dict[Addr, list[dict[str, Any]]] = {}
        self._flush_scheduled = False
        self._deadlines: list[tuple[float, int]] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._reassembler = Reassembler()

    async def __aenter__(self) -> ClusterClient:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=("127.0.0.1", 0))
        sock = self._transport.get_extra_info("socket")
        if sock is not None:                       # room for a fragmented 1 MiB reply
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._transport is not None:
            self._transport.close()

    def _on_datagram(self, data: bytes, addr: Addr) -> None:
        try:
            body = self._reassembler.feed(data, addr, self.secret)
        except BadDatagram:
            return
        if body is None:
            return
        bodies = body.get("m") if body.get("k") == "batch" else [body]
        for b in bodies if isinstance(bodies, list) else ():
            fut = self._waiting.pop(b.get("rid"), None) if isinstance(b, dict) else None
            if fut is not None and not fut.done():
                fut.set_result(b)

    def _send_outbox(self) -> None:
        """Send the requests queued this loop turn: kv requests to one node share datagrams."""
        self._flush_scheduled = False
        assert self._transport is not None
        for addr, bodies in self._outbox.items():
            for data in encode_batches(bodies, self.secret):
                self._transport.sendto(data, addr)
        self._outbox.clear()

    async def ask(self, addr: Addr, body: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send one request to one node; its reply or None on timeout."""
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        rid = next(self._rids)
        fut: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._waiting[rid] = fut
        if body.get("k") == "req":
            self._outbox.setdefault(addr, []).append(dict(body, rid=rid))
            if not self._flush_scheduled:
                self._flush_scheduled = True
                loop.call_soon(self._send_outbox)
        else:
            self._transport.sendto(encode(dict(body, rid=rid), self.secret), addr)
        heapq.heappush(self._deadlines, (loop.time() + timeout, rid))
        if self._sweeper is None:
            self._sweeper = loop.call_later(SWEEP_S, self._sweep)
        try:
            return await fut
        finally:
            self._waiting.pop(rid, None)

    def _sweep(self) -> None:
        """Time out overdue requests: one timer for all of them, not one per request (asyncio's
        timer heap compares in Python; this heap of tuples compares in C)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, rid = heapq.heappop(heap)
            fut = self._waiting.get(rid)
            if fut is not None and not fut.done():
                fut.set_result(None)
        self._sweeper = loop.call_later(SWEEP_S, self._sweep) if heap else None

    async def to_leader(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send ``body`` to the leader, following hints and rotating through nodes until an
        ``ok`` reply or ``timeout`` seconds; raise Unavailable then."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_err = "no reply"
        heard = False
        while True:
            left = deadline - loop.time()
            if left <= 0:
                err = Unavailable(f"no leader answered within {timeout:g}s ({last_err}); "
                                  f"tried {', '.join(f'{h}:{p}' for h, p in self.addrs)}")
                err.silent = not heard
                raise err
            addr = self.leader or self.addrs[self._next % len(self.addrs)]
            reply = await self.ask(addr, body, min(self.try_timeout, left))
            if reply is not None and reply.get("ok"):
                self.leader = addr
                return reply
            last_err = "timed out" if reply is None else str(reply.get("err"))
            heard = heard or reply is not None
            if last_err in REFUSALS or last_err.startswith(REFUSED_CHANGES):
                what = body.get("op") or body.get("action") or body.get("k")
                raise Rejected(f"{what}: refused by the cluster: {last_err}"
                               + (f" (limit {reply['limit']} bytes)"
                                  if reply and "limit" in reply else ""))
            if last_err == "stale_seq":
                raise StaleSession("the cluster has applied a later request of this session "
                                   "(its id was reused); outcome unknown")
            self.leader = None
            hint = reply.get("leader") if reply else None
            if hint:
                try:
                    self.leader = parse_addr(hint)
                except NodeError:
                    self.leader = None
            if self.leader is None:
                self._next += 1
                if reply is not None:
                    await asyncio.sleep(min(0.02, max(0.0, deadline - loop.time())))

    async def status(self, addr: Addr, timeout: float = 0.5) -> dict[str, Any] | None:
        return await self.ask(addr, {"k": "status"}, timeout)

    def session(self) -> Session:
        return Session(self, next(self._processes))


class Session:
    """One logical client: a fresh id, sequence numbers, one outstanding operation.

    ``process`` is the history's process id. After an unknown outcome (``info``) the session is
    finished and must not be used again (open a new one).
    """

    def __init__(self, client: ClusterClient, process: int) -> None:
        self.client = client
        self.process = process
        self.cid = uuid.uuid4().hex[:16]
        self.seq = 0
        self.dead = False

    async def call(self, f: str, key: str, value: str | None = None,
                   timeout: float = 5.0) -> str:
        """Run one operation; returns the value (get) or echoes the argument (put/append)."""
        if self.dead:
            raise NodeError("session finished after an unknown outcome; open a new session")
        if len(key) > MAX_STR:     # the nodes drop such a request unanswered
            raise NodeError(f"{f}: the key is longer than {MAX_STR} characters")
        for what, text in (("key", key), ("value", value or "")):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:   # e.g. a command-line argument of other bytes
                raise NodeError(f"{f}: the {what} is not valid UTF-8 text") from None
        self.seq += 1
        h = self.client.history
        if h:
            h.record(self.process, "invoke", f, key, value if f != "get" else None)
        body = {"k": "req", "cid": self.cid, "seq": self.seq, "op": f, "key": key,
                "value": value}
        try:
            if value is not None and len(value) > MAX_MESSAGE // 8:
                encode_batches([body], None)      # too large even to send?
        except BadDatagram:
            if h:
                h.record(self.process, "fail", f, key, value if f != "get" else None)
            raise Rejected(f"{f} {key}: request larger than {MAX_MESSAGE} bytes") from None
        try:
            reply = await self.client.to_leader(body, timeout)
        except Rejected:
            if h:
                h.record(self.process, "fail", f, key, value if f != "get" else None)
            raise
        except Unavailable:
            if f == "get":
                if h:
                    h.record(self.process, "fail", f, key, None)   # a read has no effect
            else:
                self.dead = True
                if h:
                    h.record(self.process, "info", f, key, value)
            raise
        result = reply.get("value") or ""
        if h:
            h.record(self.process, "ok", f, key, result if f == "get" else value)
        return result
