"""``raftspec ctl``: inject faults into a running cluster, kill/restart nodes, change membership."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from raftspec.commands._cluster_args import (
    cluster_addrs,
    manifest_addrs,
    secret_of,
    silence_hint,
)
from raftspec.commands._contract import seconds
from raftspec.node import control
from raftspec.node.client import ClusterClient, Unavailable
from raftspec.node.errors import NodeError
from raftspec.node.faults import FaultConfig
from raftspec.node.transport import parse_addr
from raftspec.node.wire import MAX_ID, MAX_STR

DESCRIPTION = """\
Act on a running cluster, found by --data-dir (the manifest `raftspec cluster` writes) or by
--cluster HOST:PORT,... (node ids are positions 1..N). Every action is checked before anything
is sent (ids, groups, addresses, a fault spec), the cluster is pinged first (a stopped cluster
is reported at once), and success prints one line saying what was done.

  raftspec ctl --data-dir DIR partition 1,2 3,4,5   # two sides that cannot talk
  raftspec ctl --data-dir DIR heal                   # remove every partition
  raftspec ctl --data-dir DIR faults loss=0.1,delay=5-50ms   # or: faults none
  raftspec ctl --data-dir DIR kill 2                 # SIGKILL node 2 (or: kill leader)
  raftspec ctl --data-dir DIR restart 2              # a killed node; needs `raftspec cluster`
  raftspec ctl --data-dir DIR restart 2 --accept-lost-entries   # its WAL lost entries: rejoin
                                                     # without voting until caught up
  raftspec ctl --data-dir DIR add-node 4 127.0.0.1:9004   # node 4 started with --join
  raftspec ctl --data-dir DIR remove-node 4
Exit status: 0 done (and confirmed); 1 the cluster, a node or the leader did not acknowledge
(stopped, unreachable, or no leader within --timeout; the action may be partly applied);
2 bad arguments, a bad manifest, or an action that makes no sense (restart of a running node,
overlapping partition groups)."""

PING_TIMEOUT = 0.3
"""Seconds each node gets to answer the ping that tells a stopped cluster at once."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ctl", help="partition, heal, faults, kill, restart, "
                                   "add-node, remove-node", description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", help="the directory given to `raftspec cluster`")
    where.add_argument("--cluster", metavar="HOST:PORT,...", help="node addresses, id order")
    parser.add_argument("--secret", metavar="FILE", help="HMAC key file, as given to the nodes")
    parser.add_argument("--timeout", type=seconds, default=5.0, help="seconds (default 5)")
    parser.add_argument("action", choices=("partition", "heal", "faults", "kill", "restart",
                                           "add-node", "remove-node"))
    parser.add_argument("args", nargs="*", help="groups of ids, a fault spec, a node id, ...")
    parser.add_argument("--accept-lost-entries", action="store_true",
                        help="restart only: start the node even if its WAL lost entries below "
                        "its high-water mark (it does not vote until a leader caught it up)")
    parser.set_defaults(run=run)


def _decimal(text: str) -> bool:
    """Digits 0-9 only (``str.isdigit`` also takes e.g. "²", which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def _ids(text: str, known: dict[int, str]) -> set[int]:
    out = set()
    for t in text.split(","):
        if not _decimal(t.strip()) or int(t) not in known:
            raise NodeError(f"partition: {t!r} is not a node id (known: "
                            f"{', '.join(map(str, sorted(known)))})")
        out.add(int(t))
    return out


def _groups(rest: list[str], addrs: dict[int, str]) -> list[set[int]]:
    if len(rest) < 2:
        raise NodeError("partition needs at least two groups, e.g. partition 1,2 3,4,5")
    groups = [_ids(g, addrs) for g in rest]
    for a in range(len(groups)):
        for b in range(a + 1, len(groups)):
            if both := groups[a] & groups[b]:
                raise NodeError(f"partition: node(s) {', '.join(map(str, sorted(both)))} in two "
                                f"groups ({rest[a]} and {rest[b]}); groups must not overlap")
    return groups


def _node_id(act: str, rest: list[str], addrs: dict[int, str]) -> int:
    if len(rest) != 1 or not _decimal(rest[0]) or int(rest[0]) not in addrs:
        raise NodeError(f"{act} needs one node id (known: "
                        f"{', '.join(map(str, sorted(addrs)))})")
    return int(rest[0])


def _validate(act: str, rest: list[str], addrs: dict[int, str]) -> None:
    """Every argument checked before anything is sent (exit 2 on a mistake)."""
    if act == "partition":
        _groups(rest, addrs)
    elif act == "heal" and rest:
        raise NodeError("heal takes no arguments")
    elif act == "faults":
        if len(rest) != 1:
            raise NodeError("faults needs one spec, e.g. faults loss=0.1,dup=0.05 "
                            "(or: faults none)")
        FaultConfig.parse(rest[0])
    elif act in ("kill", "restart"):
        if not (act == "kill" and rest == ["leader"]):
            _node_id(act, rest, addrs)
    elif act == "add-node":
        if len(rest) != 2 or not _decimal(rest[0]) or not 0 < int(rest[0]) <= MAX_ID:
            raise NodeError(f"add-node needs ID HOST:PORT (ID 1..{MAX_ID}), e.g. add-node 4 "
                            "127.0.0.1:9004")
        parse_addr(rest[1])
        if len(rest[1]) > MAX_STR:   # the nodes would not carry it in their messages
            raise NodeError(f"add-node: the address is longer than {MAX_STR} characters")
        if int(rest[0]) in addrs:
            raise NodeError(f"add-node: node {rest[0]} is already a member")
    elif act == "remove-node" and (len(rest) != 1 or not _decimal(rest[0])
                                   or not 0 < int(rest[0]) <= MAX_ID):
        raise NodeError(f"remove-node needs one node id (1..{MAX_ID})")


def _ping(addrs: dict[int, str], secret: bytes | None) -> dict[int, dict[str, Any] | None]:
    with ThreadPoolExecutor(max_workers=len(addrs)) as pool:
        return dict(zip(addrs, pool.map(lambda a: control.status(a, secret, PING_TIMEOUT),
                                        addrs.values()), strict=True))


def _fail(message: str) -> int:
    print(f"raftspec ctl: {message}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    secret = secret_of(args)
    supervisor = None
    if args.data_dir:
        addrs, supervisor = manifest_addrs(args.data_dir)
    else:
        addrs = cluster_addrs(args.cluster)
    act, rest = args.action, args.args
    _validate(act, rest, addrs)
    if args.accept_lost_entries and act != "restart":
        raise NodeError("--accept-lost-entries goes with restart only")
    if act == "restart" and not supervisor:
        raise NodeError("restart needs --data-dir of a running `raftspec cluster`")
    alive = _ping(addrs, secret)
    up = sorted(i for i, s in alive.items() if s)
    if not up and act != "restart":
        return _fail(f"no node answers ({', '.join(addrs.values())}): is the cluster running?"
                     + silence_hint(args))
    if act == "partition":
        groups = _groups(rest, addrs)
        everyone = set().union(*groups)
        failed = [i for g in groups for i in sorted(g)
                  if not control.control(addrs[i], "block", secret, args.timeout,
                                         peers=sorted(everyone - g))]
        return _report(failed, "partitioned: " + " | ".join(
            ",".join(map(str, sorted(g))) for g in groups))
    if act in ("heal", "faults"):
        spec = rest[0] if act == "faults" else None
        failed = [i for i, a in addrs.items()
                  if not control.control(a, act, secret, args.timeout,
                                         **({"spec": spec} if spec else {}))]
        what = "healed every partition" if act == "heal" else f"faults set to {spec}"
        return _report(failed, f"{what} on node(s) {', '.join(map(str, sorted(addrs)))}")
    if act == "kill":
        i = _current_leader(alive) if rest == ["leader"] else int(rest[0])
        if i is None:
            return _fail("kill leader: no node says it is leader right now")
        return _kill(i, addrs, alive, supervisor, secret, args.timeout)
    if act == "restart":
        return _restart(int(rest[0]), addrs, alive, supervisor, secret, args.timeout,
                        args.accept_lost_entries)
    return _membership(act, rest, addrs, secret, args.timeout)


def _report(failed: list[int], done: str) -> int:
    if failed:
        return _fail(f"no acknowledgement from node(s) {sorted(failed)} "
                     f"(the others applied it): {done}")
    print(done)
    return 0


def _current_leader(alive: dict[int, dict[str, Any] | None]) -> int | None:
    best: tuple[int, int] | None = None
    for i, st in alive.items():
        if st and st["role"] == "leader" and (best is None or st["term"] > best[0]):
            best = (st["term"], i)
    return None if best is None else best[1]


def _kill(i: int, addrs: dict[int, str], alive: dict[int, dict[str, Any] | None],
          supervisor: str | None, secret: bytes | None, timeout: float) -> int:
    st = alive.get(i)
    if not st:
        return _fail(f"node {i} at {addrs[i]} does not answer (already stopped?)")
    if supervisor:
        reply = control.query(supervisor, {"k": "ctl", "action": "kill", "id": i}, secret,
                              timeout)
        if not reply or not reply.get("ok"):
            return _fail(f"the supervisor at {supervisor} did not kill node {i}: "
                         f"{reply.get('err') if reply else 'no answer'}")
    else:
        try:
            os.kill(int(st["pid"]), signal.SIGKILL)
        except (ProcessLookupError, PermissionError, ValueError, TypeError) as err:
            return _fail(f"cannot kill node {i} (pid {st.get('pid')}): {err}")
    print(f"killed node {i} (pid {st['pid']}, was {st['role']} in term {st['term']})")
    return 0


def _restart(i: int, addrs: dict[int, str], alive: dict[int, dict[str, Any] | None],
             supervisor: str | None, secret: bytes | None, timeout: float,
             accept_lost: bool = False) -> int:
    st = alive.get(i)
    if st:
        raise NodeError(f"restart: node {i} is running (pid {st['pid']}); "
                        f"`raftspec ctl kill {i}` first")
    assert supervisor is not None
    request: dict[str, Any] = {"k": "ctl", "action": "restart", "id": i}
    if accept_lost:
        request["accept_lost"] = True
    reply = control.query(supervisor, request, secret, min(timeout, 2.0))
    if not reply:
        return _fail(f"the supervisor at {supervisor} does not answer: is `raftspec cluster` "
                     "running?")
    if not reply.get("ok"):
        return _fail(f"the supervisor did not restart node {i}: {reply.get('err')}")
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = control.status(addrs[i], secret, 0.3)
        if st:
            print(f"restarted node {i} (pid {st['pid']}, {st['role']} in term {st['term']})")
            return 0
    return _fail(f"node {i} was started but does not answer within {timeout:g} s "
                 "(see its log in the data dir)")


def _membership(act: str, rest: list[str], addrs: dict[int, str], secret: bytes | None,
                timeout: float) -> int:
    body = {"k": "conf", "action": "add" if act == "add-node" else "remove", "id": int(rest[0])}
    if act == "add-node":
        body["addr"] = rest[1]

    async def go() -> None:
        async with ClusterClient(list(addrs.values()), secret) as client:
            await client.to_leader(body, timeout)

    try:
        asyncio.run(go())
    except Unavailable as err:
        return _fail(f"{act} not confirmed: {err}")
    print(f"{'added' if act == 'add-node' else 'removed'} node {rest[0]}"
          + (f" at {rest[1]}" if act == "add-node" else "") + " (committed by the leader)")
    return 0
