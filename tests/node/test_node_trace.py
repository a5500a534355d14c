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
