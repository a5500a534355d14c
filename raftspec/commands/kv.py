"""``raftspec kv``: a client of the replicated key-value store (node/client.py)."""

from __future__ import annotations

import argparse
import asyncio

from raftspec.commands._cluster_args import (
    add_cluster_arguments,
    cluster_addrs,
    secret_of,
    silence_hint,
)
from raftspec.commands._contract import check_output
from raftspec.node.client import ClusterClient, History
from raftspec.node.errors import NodeError

DESCRIPTION = """\
Run one operation against the cluster. The client finds the leader (following the nodes'
hints), and retries with the same client id and sequence number until --timeout, so a retried
write takes effect exactly once. Reads go through the Raft log: they are linearizable.

  raftspec kv --cluster 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 put color blue
  raftspec kv --cluster ... append color !
  raftspec kv --cluster ... get color        # prints: blue!   (an empty line if missing)

Exit status: 0 success; 1 no leader answered within --timeout (for put/append the outcome is
then unknown); 2 bad arguments. --history FILE appends invoke/ok/fail/info lines
(docs/cluster.md) for the linearizability checker."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("kv", help="put, append or get a key",
                                   description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cluster_arguments(parser)
    parser.add_argument("--history", metavar="FILE", help="append this operation's history")
    parser.add_argument("--process", type=int, default=None,
                        help="process id in the history (default: this OS process id)")
    parser.add_argument("op", choices=("put", "append", "get"), help="operation")
    parser.add_argument("key", help="the key")
    parser.add_argument("value", nargs="?", help="the value (put and append)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.op in ("put", "append") and args.value is None:
        raise NodeError(f"kv {args.op} needs a VALUE: raftspec kv --cluster ... "
                        f"{args.op} KEY VALUE")
    if args.op == "get" and args.value is not None:
        raise NodeError("kv get takes only a KEY")
    addrs = list(cluster_addrs(args.cluster).values())
    check_output(args.history, "--history")
    history = History(args.history) if args.history else None
    try:
        return asyncio.run(_run(args, addrs, secret_of(args), history))
    finally:
        if history:
            history.close()


async def _run(args: argparse.Namespace, addrs: list[str], secret: bytes | None,
               history: History | None) -> int:
    import os

    from raftspec.node.client import Unavailable
    async with ClusterClient(addrs, secret, history=history) as client:
        session = client.session()
        session.process = args.process if args.process is not None else os.getpid()
        try:
            value = await session.call(args.op, args.key, args.value, timeout=args.timeout)
        except Unavailable as err:
            import sys
            hint = silence_hint(args) if err.silent else ""
            print(f"raftspec kv: error: {err}{hint}", file=sys.stderr)
            return 1
    if args.op == "get":
        print(value)
    return 0
