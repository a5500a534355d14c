"""``raftspec status``: one line per node: id, role, term, commit index, last log index."""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from raftspec.commands._cluster_args import (
    add_cluster_arguments,
    cluster_addrs,
    secret_of,
    silence_hint,
)
from raftspec.node import control

DESCRIPTION = """\
Ask every node of the cluster for its state. Text: one line per node,
  ID ADDRESS ROLE term=T commit=C last=L leader=ID pid=P   (or: ID ADDRESS unreachable)
With --json, one JSON object per node per line:
  {"id", "address", "role", "term", "commit_index", "last_log_index", "leader", "pid"}
("leader": the id this node believes is leader, null if it knows none)
(role "unreachable" with null numbers when a node does not answer within --timeout).
Exit status: 0 if at least one node answered, 1 if none did, 2 on bad arguments."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("status", help="show each node's role, term and log",
                                   description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_cluster_arguments(parser)
    parser.set_defaults(timeout=1.0)
    parser.add_argument("--json", action="store_true", help="one JSON object per node per line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except BrokenPipeError:                       # e.g. `raftspec status ... | head -1`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    addrs = cluster_addrs(args.cluster)
    secret = secret_of(args)
    with ThreadPoolExecutor(max_workers=len(addrs)) as pool:
        replies = dict(zip(addrs, pool.map(
            lambda a: control.status(a, secret, args.timeout), addrs.values()), strict=True))
    for i, addr in addrs.items():
        s = replies[i]
        if args.json:
            obj = {"id": i, "address": addr, "role": "unreachable", "term": None,
                   "commit_index": None, "last_log_index": None, "leader": None, "pid": None}
            if s:
                obj.update(id=s["id"], role=s["role"], term=s["term"],
                           commit_index=s["commit_index"], last_log_index=s["last_log_index"],
                           leader=s.get("leader") or None, pid=s["pid"])
            print(json.dumps(obj))
        elif s:
            print(f"{s['id']} {addr} {s['role']} term={s['term']} commit={s['commit_index']} "
                  f"last={s['last_log_index']} leader={s['leader']} pid={s['pid']}")
        else:
            print(f"{i} {addr} unreachable")
    if not any(replies.values()):
        print(f"raftspec status: no node answered within {args.timeout:g}s"
              f"{silence_hint(args)}", file=sys.stderr)
        return 1
    return 0
