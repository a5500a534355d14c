"""``raftspec cluster``: run N nodes on 127.0.0.1 in the foreground and report leader changes."""

from __future__ import annotations

import argparse
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from raftspec.commands._contract import check_directory
from raftspec.node import control
from raftspec.node.errors import NodeError
from raftspec.node.faults import FaultConfig
from raftspec.node.supervisor import LocalCluster
from raftspec.node.wire import BadDatagram, decode, encode

DESCRIPTION = """\
Start N node processes bound to 127.0.0.1:P .. P+N-1 (one process per node, data in
DIR/node-ID, stderr in DIR/node-ID.log), print who is leader as it changes, and stop them all
cleanly on Ctrl-C / SIGTERM. Restarting on the same --data-dir recovers the data.

  raftspec cluster --nodes 5 --data-dir /tmp/rs --base-port 9001
  raftspec cluster --nodes 3 --data-dir /tmp/rs --faults loss=0.1,dup=0.05,delay=5-50ms

While it runs, `raftspec ctl --data-dir DIR ...` partitions, heals, kills and restarts nodes.
Exit status: 0 stopped cleanly (Ctrl-C / SIGTERM); 2 bad arguments, ports not free, or a data
or trace directory that cannot be used (checked before any node starts)."""


STARTUP_S = 1.5                     # a restarted node that exits within this is reported


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cluster", help="run a local N-node cluster",
                                   description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    parser.add_argument("--data-dir", required=True, help="parent directory of the nodes' data")
    parser.add_argument("--base-port", type=int, default=None,
                        help="node i listens on P+i-1 (default: a free range)")
    parser.add_argument("--trace-dir", default=None, help="write DIR/node-ID.ndjson traces")
    parser.add_argument("--faults", default=None, metavar="SPEC",
                        help="loss=P,dup=P,delay=A-Bms,reorder=P on node-to-node traffic")
    parser.add_argument("--secret", metavar="FILE", help="HMAC key file for all messages")
    parser.add_argument("--snapshot-threshold", type=int, default=10_000,
                        help="entries applied before a node compacts its log (default 10000)")
    parser.add_argument("--accept-lost-entries", action="store_true",
                        help="pass --accept-lost-entries to every node at this start: a node "
                        "whose WAL lost entries below its high-water mark starts anyway, but "
                        "does not vote or campaign until a leader has caught it up (without "
                        "it such a node refuses to start and is reported)")
    parser.set_defaults(run=run)


def _check_ports(base: int, n: int) -> None:
    for k in range(n):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", base + k))
            except OSError as err:
                raise NodeError(f"--base-port {base}: UDP port {base + k} is not free "
                                f"({err.strerror})") from err


def run(args: argparse.Namespace) -> int:
    if args.nodes < 1 or args.nodes > 99:
        raise NodeError("--nodes must be between 1 and 99")
    FaultConfig.parse(args.faults)
    if args.base_port is not None:
        if not 0 < args.base_port <= 65535 - args.nodes:
            raise NodeError(f"--base-port {args.base_port}: ports must stay within 1..65535")
        _check_ports(args.base_port, args.nodes)
    if args.snapshot_threshold < 1:
        raise NodeError("--snapshot-threshold must be at least 1")
    check_directory(args.data_dir, "--data-dir")
    check_directory(args.trace_dir, "--trace-dir")
    cluster = LocalCluster(args.nodes, args.data_dir, args.base_port, args.trace_dir,
                           args.faults, args.secret,
                           node_args=["--snapshot-threshold", str(args.snapshot_threshold)])
    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ctl.bind(("127.0.0.1", 0))
    ctl.setblocking(False)
    stopping = []
    prev = {sig: signal.signal(sig, lambda *_: stopping.append(1))
            for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        cluster.start(extra=["--accept-lost-entries"] if args.accept_lost_entries else [])
        manifest = cluster.write_manifest(f"127.0.0.1:{ctl.getsockname()[1]}")
        for i, a in sorted(cluster.addrs.items()):
            print(f"node {i}: {a} pid {cluster.procs[i].pid}", flush=True)
        print(f"cluster: --cluster {cluster.cluster_arg}  (manifest {manifest}); "
              "Ctrl-C stops", flush=True)
        _supervise(cluster, ctl, stopping)
    finally:
        for sig, h in prev.items():
            signal.signal(sig, h)
        print("stopping all nodes", flush=True)
        cluster.stop()
        ctl.close()
    return 0


def _supervise(cluster: LocalCluster, ctl: socket.socket, stopping: list[int]) -> None:
    last: tuple[int, int] | None | str = "start"
    exited: set[int] = set()
    pool = ThreadPoolExecutor(max_workers=len(cluster.addrs) + 1)
    answered: dict[object, bytes] = {}
    while not stopping:
        _serve_control(cluster, ctl, answered)
        ids = sorted(cluster.addrs)
        sts = dict(zip(ids, pool.map(lambda i: control.status(cluster.addrs[i], cluster.secret,
                                                               0.2), ids), strict=True))
        leaders = sorted(((s["term"], i) for i, s in sts.items()
                          if s and s["role"] == "leader"), reverse=True)
        now: tuple[int, int] | None = (leaders[0][1], leaders[0][0]) if leaders else None
        if now != last and not (now is None and last == "start"):
            stamp = time.strftime("%H:%M:%S")
            if now is None:
                print(f"{stamp} no leader", flush=True)
            else:
                print(f"{stamp} leader: node {now[0]} (term {now[1]})", flush=True)
            last = now
        for i, p in cluster.procs.items():
            if p.poll() is not None and i not in exited:
                exited.add(i)
                print(f"{time.strftime('%H:%M:%S')} node {i} exited with code {p.returncode}"
                      f": {cluster.last_log_line(i)} (see {cluster.data_dir}/node-{i}.log)",
                      flush=True)
            elif p.poll() is None:
                exited.discard(i)
        time.sleep(0.1)
    pool.shutdown(wait=False)


def _serve_control(cluster: LocalCluster, ctl: socket.socket,
                   answered: dict[object, bytes]) -> None:
    """Requests from ``raftspec ctl``: kill / restart a node (the supervisor owns processes).
    ``ctl`` resends until answered: a repeated request id gets the first answer again."""
    while True:
        try:
            data, addr = ctl.recvfrom(65_536)
        except (BlockingIOError, InterruptedError):
            return
        try:
            body = decode(data, cluster.secret)
            action, i = body["action"], int(body["id"])
        except (BadDatagram, KeyError, TypeError, ValueError, OverflowError):   # id: inf
            continue
        key = (addr, repr(body.get("rid")))
        if key in answered:
            ctl.sendto(answered[key], addr)
            continue
        ok, err = True, None
        if i not in cluster.addrs:
            ok, err = False, f"no node {i}"
        elif action == "kill":
            cluster.kill(i)
            print(f"{time.strftime('%H:%M:%S')} node {i} killed (SIGKILL)", flush=True)
        elif action == "restart" and cluster.alive(i):
            ok, err = False, f"node {i} is running (pid {cluster.procs[i].pid}); kill it first"
        elif action == "restart":
            cluster.start([i], extra=["--accept-lost-entries"] if body.get("accept_lost")
                          is True else [])
            code = cluster.wait_exit(i, STARTUP_S)
            if code is None:
                print(f"{time.strftime('%H:%M:%S')} node {i} restarted, pid "
                      f"{cluster.procs[i].pid}", flush=True)
            else:                         # e.g. it refuses a corrupt WAL: say so, and why
                ok, err = False, (f"node {i} exited at once with code {code}: "
                                  f"{cluster.last_log_line(i)}")
                print(f"{time.strftime('%H:%M:%S')} {err}", flush=True)
            cluster.write_manifest(f"127.0.0.1:{ctl.getsockname()[1]}")
        else:
            ok, err = False, f"unknown action {action}"
        answered[key] = encode({"k": "ctl_resp", "rid": body.get("rid"), "ok": ok, "err": err},
                               cluster.secret)
        while len(answered) > 256:
            del answered[next(iter(answered))]
        ctl.sendto(answered[key], addr)
