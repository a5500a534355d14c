"""UDP on 127.0.0.1 owned by the event loop: drain every readable datagram, then let the
server flush once, so everything that arrived together is persisted with one fsync and sent in
one batch (the batching PySyncObj gets by waiting 100 ms, without the wait).
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable

from raftspec.node.errors import NodeError
from raftspec.node.faults import FaultConfig

Addr = tuple[str, int]


def parse_addr(text: str) -> Addr:
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise NodeError(f"bad address {text!r}: expected HOST:PORT")
    return (host or "127.0.0.1", int(port))


class Transport:
    """A non-blocking UDP socket plus fault injection and partitions for peer traffic."""

    def __init__(self, loop: asyncio.AbstractEventLoop, bind: Addr,
                 on_batch: Callable[[list[tuple[bytes, Addr]]], None], rng: random.Random,
                 faults: FaultConfig | None = None) -> None:
        self.loop = loop
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind(bind)
        except OSError as err:
            self.sock.close()
            raise NodeError(f"cannot bind UDP {bind[0]}:{bind[1]}: {err.strerror}") from err
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.sock.setblocking(False)
        self.on_batch = on_batch
        self.rng = rng
        self.faults = faults or FaultConfig()
        self.blocked: set[int] = set()
        self.peers: dict[int, Addr] = {}
        self.send_errors = 0
        loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        batch = []
        for _ in range(4096):
            try:
                batch.append(self.sock.recvfrom(65_536))
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue                  # e.g. ICMP port unreachable surfaced on Linux
        if batch:
            self.on_batch(batch)

    def send_to(self, data: bytes, addr: Addr) -> None:
        try:
            self.sock.sendto(data, addr)
        except OSError:
            self.send_errors += 1         # UDP: a full buffer or unreachable peer is a loss

    def send_peer(self, peer: int, data: bytes) -> None:
        addr = self.peers.get(peer)
        if addr is None or peer in self.blocked:
            return
        if not self.faults.active:
            self.send_to(data, addr)
            return
        for delay in self.faults.plan(self.rng):
            if delay <= 0:
                self.send_to(data, addr)
            else:
                self.loop.call_later(delay, self.send_to, data, addr)

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
