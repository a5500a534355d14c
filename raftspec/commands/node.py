"""``raftspec node``: run one Raft node in the foreground (node/)."""

from __future__ import annotations

import argparse
import sys

from raftspec.commands._contract import INCOMPLETE, check_directory, check_output
from raftspec.node.options import add_node_arguments, config_from_args
from raftspec.node.server import run_node
from raftspec.node.storage import DiskFailure

DESCRIPTION = """\
Run one Raft node on 127.0.0.1 until SIGINT/SIGTERM. Its term, vote and log are kept (fsync'd)
in --data-dir; restarting with the same directory recovers them.

Example (a 3-node cluster, one command per terminal):
  raftspec node --id 1 --peers 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 --data-dir d/1
  raftspec node --id 2 --peers 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 --data-dir d/2
  raftspec node --id 3 --peers 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 --data-dir d/3
Exit status: 0 stopped cleanly (SIGINT/SIGTERM); 2 bad arguments or an unusable --data-dir /
--trace file (checked before the node starts); 3 fail-stop on a disk error: a write or fsync of
--data-dir failed, so the node stopped at once, sending nothing more (nothing unpersisted was
acknowledged; restart it when the disk is writable, it recovers from what was fsync'd); 4 an
internal error (a bug in raftspec; please report it)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("node", help="run one Raft node",
                                   description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_node_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    check_directory(args.data_dir, "--data-dir")
    check_output(args.trace, "--trace")
    try:
        return run_node(config)
    except DiskFailure as err:      # a NodeError, but not the user's mistake (exit 2)
        print(f"raftspec node {args.id}: error: cannot persist, stopping (nothing unpersisted "
              f"was acknowledged; restart when the disk is writable): {err}", file=sys.stderr)
        return INCOMPLETE
