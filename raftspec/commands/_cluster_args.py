"""Options shared by the commands that talk to a running cluster (kv, status, ctl)."""

from __future__ import annotations

import argparse
import json
import os

from raftspec.commands._contract import seconds
from raftspec.node.errors import NodeError
from raftspec.node.options import read_secret


def add_cluster_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--cluster", metavar="HOST:PORT,...", required=required,
                        help="node addresses, in node-id order (node 1 first)")
    parser.add_argument("--secret", metavar="FILE", help="HMAC key file, as given to the nodes")
    parser.add_argument("--timeout", type=seconds, default=5.0,
                        help="give up after this many seconds (default 5)")


def cluster_addrs(text: str) -> dict[int, str]:
    """--cluster as {node id: address}; ids are positions 1..N (or ID=HOST:PORT items)."""
    from raftspec.node.options import parse_peers
    return parse_peers(text)


def manifest_addrs(data_dir: str) -> tuple[dict[int, str], str | None]:
    path = os.path.join(data_dir, "cluster.json")
    try:
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
    except OSError as err:
        raise NodeError(f"{path}: {err.strerror} (is 'raftspec cluster --data-dir "
                        f"{data_dir}' running?)") from err
    except (ValueError, RecursionError) as err:   # JSONDecodeError, UnicodeDecodeError, deep
        raise NodeError(f"{path}: not a cluster manifest written by `raftspec cluster` "
                        f"({err})") from None
    try:
        nodes = {int(k): str(v) for k, v in m["nodes"].items()}
        supervisor = m.get("supervisor")
        if supervisor is not None and not isinstance(supervisor, str) or not nodes:
            raise ValueError("supervisor")
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise NodeError(f"{path}: not a cluster manifest written by `raftspec cluster` "
                        f"(field {err})") from None
    from raftspec.node.transport import parse_addr
    for i, addr in nodes.items():
        try:
            parse_addr(addr)
        except NodeError as err:
            raise NodeError(f"{path}: nodes.{i}: {err}") from None
    return nodes, supervisor


def silence_hint(args: argparse.Namespace) -> str:
    """Said when no node answered at all: nodes drop requests not signed with their key."""
    if args.secret is None:
        return " (a cluster started with --secret answers only requests signed with its key)"
    return f" (or do its nodes use another key than --secret {args.secret}?)"


def secret_of(args: argparse.Namespace) -> bytes | None:
    return read_secret(args.secret)
