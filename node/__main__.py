"""``python -m node --id ...``: one node, without the rest of the raftspec CLI."""

import argparse
import sys

from node.errors import NodeError
from node.options import add_node_arguments, config_from_args
from node.server import run_node


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m node", description="Run one Raft node.")
    add_node_arguments(parser)
    args = parser.parse_args()
    try:
        return run_node(config_from_args(args))
    except NodeError as err:
        print(f"node {args.id}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


sys.exit(main())
