"""The event trace as the loop writes it: every send is on disk before its datagram leaves."""

from __future__ import annotations

import json

from raftspec.node.messages import VOTE_RESP, Message
from raftspec.node.server import NodeConfig, NodeServer
from raftspec.node.wire import decode


class RecordingTransport:
    """Stands in for the UDP transport; at each send, reads the trace file as a crash would."""

    def __init__(self, trace_path: str) -> None:
        self.trace_path = trace_path
        self.blocked: set[int] = set()
        self.peers: dict[int, tuple[str, int]] = {}
        self.sent: list[str] = []
        self.on_disk_at_send: list[bool] = []

    def send_peer(self, peer: int, data: bytes) -> None:
        mid = decode(data, None)["mid"]
        with open(self.trace_path, encoding="utf-8") as f:
            ids = {json.loads(line)["msg"]["id"] for line in f if '"send"' in line}
        self.sent.append(mid)
        self.on_disk_at_send.append(mid in ids)

    def send_to(self, data: bytes, addr: tuple[str, int]) -> None:
        pass

    def close(self) -> None:
        pass


def test_send_events_reach_the_file_before_the_datagram_leaves(tmp_path) -> None:
    trace = str(tmp_path / "n1.ndjson")
    peers = {1: "127.0.0.1:1", 2: "127.0.0.1:2", 3: "127.0.0.1:3"}
    server = NodeServer(NodeConfig(id=1, peers=peers, data_dir=str(tmp_path / "d"), port=0,
                                   trace=trace, seed=1))
    transport = RecordingTransport(trace)
    server.transport = transport                              # type: ignore[assignment]
    server.core.timeout()                                     # RequestVote to both peers
    server._flush()
    server.core.step(Message(VOTE_RESP, 2, 1, server.core.term, granted=True))
    server._flush()                                           # leader: no-op AppendEntries
    server.close()
    assert len(transport.sent) == 4 and all(transport.on_disk_at_send)


def test_an_exception_in_a_handler_or_a_tick_is_counted_and_the_node_keeps_going(
        tmp_path) -> None:
    """Issue 11 item 5: an exception used to escape the tick callback (the timer died, the
    process stayed: a zombie) or the receive handler (the rest of the batch was dropped)."""
    import asyncio

    from raftspec.node.wire import encode

    peers = {1: "127.0.0.1:1", 2: "127.0.0.1:2", 3: "127.0.0.1:3"}
    server = NodeServer(NodeConfig(id=1, peers=peers, data_dir=str(tmp_path / "d"), port=0,
                                   seed=1, tick_ms=5))
    ticks = []

    def broken_tick() -> None:
        ticks.append(1)
        raise RuntimeError("boom in tick")

    def broken_step(m: Message) -> None:
        raise RuntimeError("boom in step")

    server.core.tick = broken_tick                              # type: ignore[method-assign]
    server.core.step = broken_step                              # type: ignore[method-assign]

    async def go() -> None:
        task = asyncio.create_task(server.serve())
        await asyncio.sleep(0.2)
        replies = []
        transport = server.transport
        assert transport is not None
        transport.send_to = lambda data, addr: replies.append(decode(data, None))
        server._on_batch([(encode({"k": "vote", "s": 2, "d": 1, "t": 1}, None), ("h", 1)),
                          (encode({"k": "status", "rid": 5}, None), ("h", 1))])
        assert [r["rid"] for r in replies] == [5]               # the rest of the batch ran
        n = len(ticks)
        await asyncio.sleep(0.2)
        assert len(ticks) > n + 5                               # the timer kept running
        server.stop()
        await task

    asyncio.run(go())
    assert server.bad["handler_error"] >= 10
