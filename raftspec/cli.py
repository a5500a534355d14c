"""``raftspec``: one entry point, one module per subcommand (see raftspec/commands/).

Exit codes shared by every subcommand: 0 success, 1 a property or check failed
(violation, invalid trace, non-linearizable history), 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from raftspec.node.errors import NodeError
from raftspec.protocol.errors import RaftspecError

# Each module defines register(subparsers) which adds its parser and sets a ``run`` default
# taking the parsed arguments and returning the exit code.
COMMANDS = (
    "raftspec.commands.check", "raftspec.commands.matrix",
    "raftspec.commands.bmc", "raftspec.commands.induct",
    "raftspec.commands.lincheck",
    "raftspec.commands.validate",
    "raftspec.commands.cluster",
    "raftspec.commands.node",
    "raftspec.commands.kv",
    "raftspec.commands.status",
    "raftspec.commands.ctl",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or with just the module ``only`` (so that running one
    command never pays for importing the others: z3, asyncio, ...)."""
    parser = argparse.ArgumentParser(
        prog="raftspec",
        description="An executable reference of the Raft consensus protocol: model checking, "
        "a real cluster, and trace validation on one semantics.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else (only,):
        importlib.import_module(name).register(subparsers)
    return parser


def _command_module(argv: list[str]) -> str | None:
    """The module of the subcommand named first on the command line, if any."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return next((name for name in COMMANDS if name.rsplit(".", 1)[1] == first), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command_module(argv))
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
