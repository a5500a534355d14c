"""``raftspec``: one entry point, one module per subcommand (see raftspec/commands/).

Exit codes shared by every subcommand: 0 success, 1 a property or check failed
(violation, invalid trace, non-linearizable history), 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from node.errors import NodeError
from reference.errors import RaftspecError

# Each module defines register(subparsers) which adds its parser and sets a ``run`` default
# taking the parsed arguments and returning the exit code.
COMMANDS = (
    "raftspec.commands.check",
    "raftspec.commands.bmc", "raftspec.commands.induct",
    "raftspec.commands.lincheck",
    "raftspec.commands.validate",
    "raftspec.commands.cluster",
    "raftspec.commands.node",
    "raftspec.commands.kv",
    "raftspec.commands.status",
    "raftspec.commands.ctl",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raftspec",
        description="An executable reference of the Raft consensus protocol: model checking, "
        "a real cluster, and trace validation on one semantics.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (RaftspecError, NodeError) as err:
        print(f"raftspec {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"raftspec {args.command}: interrupted", file=sys.stderr)
        return 130
