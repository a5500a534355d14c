"""Command-line options of one node, shared by ``raftspec node`` and ``python -m raftspec.node``."""

from __future__ import annotations

import argparse
import os

from raftspec.node.errors import NodeError
from raftspec.node.faults import FaultConfig
from raftspec.node.server import NodeConfig
from raftspec.node.transport import parse_addr


def parse_peers(text: str) -> dict[int, str]:
    """``1=127.0.0.1:9001,2=...`` or ``127.0.0.1:9001,...`` (ids 1..N by position)."""
    peers: dict[int, str] = {}
    for pos, item in enumerate(filter(None, (s.strip() for s in text.split(","))), 1):
        ident, sep, addr = item.partition("=")
        if not sep:
            ident, addr = str(pos), item
        if not (ident.isascii() and ident.isdigit()) or int(ident) < 1:
            raise NodeError(f"--peers: {item!r}: node ids are positive integers")
        parse_addr(addr)
        if int(ident) in peers:
            raise NodeError(f"--peers: node id {ident} given twice")
        peers[int(ident)] = addr
    if not peers:
        raise NodeError("--peers: empty list")
    return peers


def read_secret(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            secret = f.read().strip()
    except OSError as err:
        raise NodeError(f"--secret {path}: {err.strerror}") from err
    if not secret:
        raise NodeError(f"--secret {path}: file is empty")
    return secret


def add_node_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id", type=int, required=True, help="this node's id (a positive integer)")
    p.add_argument("--peers", required=True,
                   help="the initial cluster: ID=HOST:PORT,... (or HOST:PORT,... numbered "
                   "1..N); this node's own entry gives its port")
    p.add_argument("--data-dir", required=True, help="directory for the WAL and snapshot")
    p.add_argument("--port", type=int, help="UDP port (default: this node's entry in --peers)")
    p.add_argument("--join", action="store_true",
                   help="start outside the cluster and wait to be added "
                   "(raftspec ctl add-node); --peers then only lists where to find others")
    p.add_argument("--trace", metavar="FILE", help="append NDJSON events (docs/trace-schema.md)")
    p.add_argument("--faults", default=None, metavar="SPEC",
                   help="loss=P,dup=P,delay=A-Bms,reorder=P on node-to-node datagrams")
    p.add_argument("--secret", metavar="FILE", help="HMAC key file: sign and require MACs")
    p.add_argument("--tick-ms", type=float, default=10.0, help="tick length (default 10 ms)")
    p.add_argument("--election-ticks", type=int, default=15,
                   help="election timeout is random in [T, 2T) ticks (default 15)")
    p.add_argument("--heartbeat-ticks", type=int, default=3, help="default 3")
    p.add_argument("--snapshot-threshold", type=int, default=10_000,
                   help="compact the log after this many applied entries (default 10000)")
    p.add_argument("--no-check-quorum", action="store_true",
                   help="leaders do not step down when they lose contact with a majority")
    p.add_argument("--seed", type=int, help="seed for election timeouts and fault injection")
    p.add_argument("--accept-lost-entries", action="store_true",
                   help="start even though the WAL lost entries this node had persisted "
                   "(below its high-water mark DATA_DIR/mark; without this flag the node "
                   "refuses, exit 2): it then neither votes nor campaigns until a leader has "
                   "brought its log back to the mark")


def config_from_args(args: argparse.Namespace) -> NodeConfig:
    peers = parse_peers(args.peers)
    if args.port is None:
        if args.id not in peers:
            raise NodeError(f"--id {args.id} is not in --peers and no --port was given")
        port = parse_addr(peers[args.id])[1]
    else:
        port = args.port
    if args.id not in peers:
        peers[args.id] = f"127.0.0.1:{port}"
    if args.tick_ms <= 0 or args.election_ticks < 2 or args.heartbeat_ticks < 1 or \
            args.heartbeat_ticks >= args.election_ticks:
        raise NodeError("timing: need --tick-ms > 0 and 1 <= --heartbeat-ticks < "
                        "--election-ticks")
    if args.snapshot_threshold < 1:
        raise NodeError("--snapshot-threshold must be at least 1")
    if os.path.exists(args.data_dir) and not os.path.isdir(args.data_dir):
        raise NodeError(f"--data-dir {args.data_dir}: not a directory")
    return NodeConfig(id=args.id, peers=peers, data_dir=args.data_dir, port=port,
                      trace=args.trace, faults=FaultConfig.parse(args.faults),
                      secret=read_secret(args.secret), tick_ms=args.tick_ms,
                      election_ticks=args.election_ticks, heartbeat_ticks=args.heartbeat_ticks,
                      snapshot_threshold=args.snapshot_threshold, join=args.join,
                      check_quorum=not args.no_check_quorum, seed=args.seed,
                      accept_lost_entries=args.accept_lost_entries)
