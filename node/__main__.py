"""``python -m raftspec.node --id ...``: one node, without the rest of the raftspec CLI."""

import argparse
import sys

from raftspec.node.errors import NodeError
from raftspec.node.options import add_node_arguments, config_from_args
from raftspec.node.server import run_node
from raftspec.node.storage import DiskFailure


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m raftspec.node",
                                     description="Run one Raft node.")
    add_node_arguments(parser)
    args = parser.parse_args()
    try:
        return run_node(config_from_args(args))
    except DiskFailure as err:
        print(f"node {args.id}: error: cannot persist, stopping (nothing unpersisted was "
              f"acknowledged; restart when the disk is writable): {err}", file=sys.stderr)
        return 3
    except NodeError as err:
        print(f"node {args.id}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


sys.exit(main())
