"""``raftspec ctl``: inject faults into a running cluster, kill/restart nodes, change membership."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from raftspec.commands._cluster_args import (
    cluster_addrs,
    manifest_addrs,
    secret_of,
)
from raftspec.node import control
from raftspec.node.client import ClusterClient, Unavailable
from raftspec.node.errors import NodeError
from raftspec.node.faults import FaultConfig

DESCRIPTION = """\
Act on a running cluster, found by --data-dir (the manifest `raftspec cluster` writes) or by
--cluster HOST:PORT,... (node ids are positions 1..N).

  raftspec ctl --data-dir DIR partition 1,2 3,4,5   # two sides that cannot talk
  raftspec ctl --data-dir DIR heal                   # remove every partition
  raftspec ctl --data-dir DIR faults loss=0.1,delay=5-50ms   # or: faults none
  raftspec ctl --data-dir DIR kill 2                 # SIGKILL node 2 (or: kill leader)
  raftspec ctl --data-dir DIR restart 2              # needs `raftspec cluster` (the supervisor)
  raftspec ctl --data-dir DIR add-node 4 127.0.0.1:9004   # node 4 started with --join
  raftspec ctl --data-dir DIR remove-node 4
Exit status: 0 done, 1 some node did not acknowledge, 2 bad arguments."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ctl", help="partition, heal, faults, kill, restart, "
                                   "add-node, remove-node", description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", help="the directory given to `raftspec cluster`")
    where.add_argument("--cluster", metavar="HOST:PORT,...", help="node addresses, id order")
    parser.add_argument("--secret", metavar="FILE", help="HMAC key file, as given to the nodes")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument("action", choices=("partition", "heal", "faults", "kill", "restart",
                                           "add-node", "remove-node"))
    parser.add_argument("args", nargs="*", help="groups of ids, a fault spec, a node id, ...")
    parser.set_defaults(run=run)


def _ids(text: str, known: dict[int, str]) -> set[int]:
    out = set()
    for t in text.split(","):
        if not t.strip().isdigit() or int(t) not in known:
            raise NodeError(f"partition: {t!r} is not a node id (known: "
                            f"{', '.join(map(str, sorted(known)))})")
        out.add(int(t))
    return out


def run(args: argparse.Namespace) -> int:
    secret = secret_of(args)
    supervisor = None
    if args.data_dir:
        addrs, supervisor = manifest_addrs(args.data_dir)
    else:
        addrs = cluster_addrs(args.cluster)
    act, rest = args.action, args.args
    failed = []
    if act == "partition":
        if len(rest) < 2:
            raise NodeError("partition needs at least two groups, e.g. partition 1,2 3,4,5")
        groups = [_ids(g, addrs) for g in rest]
        everyone = set().union(*groups)
        for g in groups:
            for i in g:
                if not control.control(addrs[i], "block", secret, args.timeout,
                                       peers=sorted(everyone - g)):
                    failed.append(i)
    elif act in ("heal", "faults"):
        spec = None
        if act == "faults":
            if len(rest) != 1:
                raise NodeError("faults needs one spec, e.g. faults loss=0.1,dup=0.05 "
                                "(or: faults none)")
            spec = rest[0]
            FaultConfig.parse(spec)
        for i, a in addrs.items():
            if not control.control(a, "heal" if act == "heal" else "faults", secret,
                                   args.timeout, **({"spec": spec} if spec else {})):
                failed.append(i)
    elif act in ("kill", "restart"):
        if act == "kill" and rest == ["leader"]:
            rest = [str(_current_leader(addrs, secret, args.timeout))]
        if len(rest) != 1 or not rest[0].isdigit() or int(rest[0]) not in addrs:
            raise NodeError(f"{act} needs one node id (known: "
                            f"{', '.join(map(str, sorted(addrs)))})")
        i = int(rest[0])
        if act == "restart" or supervisor:
            if not supervisor:
                raise NodeError("restart needs --data-dir of a running `raftspec cluster`")
            reply = control.query(supervisor, {"k": "ctl", "action": act, "id": i}, secret,
                                  args.timeout)
            if not reply or not reply.get("ok"):
                raise NodeError(f"the supervisor at {supervisor} did not {act} node {i}: "
                                f"{reply.get('err') if reply else 'no answer'}")
        else:
            st = control.status(addrs[i], secret, args.timeout)
            if not st:
                raise NodeError(f"node {i} at {addrs[i]} does not answer")
            os.kill(int(st["pid"]), signal.SIGKILL)
    else:
        return _membership(act, rest, addrs, secret, args.timeout)
    if failed:
        print(f"raftspec ctl: no acknowledgement from node(s) {sorted(failed)}", file=sys.stderr)
        return 1
    return 0


def _current_leader(addrs: dict[int, str], secret: bytes | None, timeout: float) -> int:
    best: tuple[int, int] | None = None
    for i, a in addrs.items():
        st = control.status(a, secret, min(timeout, 0.5))
        if st and st["role"] == "leader" and (best is None or st["term"] > best[0]):
            best = (st["term"], i)
    if best is None:
        raise NodeError("kill leader: no node says it is leader right now")
    return best[1]


def _membership(act: str, rest: list[str], addrs: dict[int, str], secret: bytes | None,
                timeout: float) -> int:
    if act == "add-node" and (len(rest) != 2 or not rest[0].isdigit()):
        raise NodeError("add-node needs ID HOST:PORT, e.g. add-node 4 127.0.0.1:9004")
    if act == "remove-node" and (len(rest) != 1 or not rest[0].isdigit()):
        raise NodeError("remove-node needs one node id")
    body = {"k": "conf", "action": "add" if act == "add-node" else "remove", "id": int(rest[0])}
    if act == "add-node":
        body["addr"] = rest[1]

    async def go() -> None:
        async with ClusterClient(list(addrs.values()), secret) as client:
            await client.to_leader(body, timeout)

    try:
        asyncio.run(go())
    except Unavailable as err:
        print(f"raftspec ctl: {act} not confirmed: {err}", file=sys.stderr)
        return 1
    return 0
