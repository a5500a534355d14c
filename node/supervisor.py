"""Run N node processes on 127.0.0.1 and act on them: start, kill -9, restart, partition, heal.

Used by ``raftspec cluster``, the tests and the benchmark. Each node is
``python -m raftspec.node`` in its own process with its own data dir ``DIR/node-<id>`` and
stderr in ``DIR/node-<id>.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from raftspec.node import control
from raftspec.node.errors import NodeError

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_base_port(n: int, attempts: int = 200) -> int:
    """A port P such that UDP P..P+n-1 on 127.0.0.1 are all free right now."""
    rng = random.Random()
    for _ in range(attempts):
        base = rng.randrange(20_000, 60_000 - n)
        socks = []
        try:
            for k in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", base + k))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise NodeError(f"could not find {n} free consecutive UDP ports")


class LocalCluster:
    """N node processes; ``ids`` are 1..n, node i listens on base_port + i - 1."""

    def __init__(self, n: int, data_dir: str, base_port: int | None = None,
                 trace_dir: str | None = None, faults: str | None = None,
                 secret_file: str | None = None, node_args: Iterable[str] = ()) -> None:
        if n < 1:
            raise NodeError("--nodes must be at least 1")
        self.n = n
        self.data_dir = data_dir
        self.base_port = base_port if base_port is not None else free_base_port(n)
        if not 0 < self.base_port <= 65535 - n:
            raise NodeError(f"--base-port {self.base_port}: ports must stay within 1..65535")
        self.trace_dir = trace_dir
        self.faults = faults
        self.secret_file = secret_file
        self.secret = control_secret(secret_file)
        self.node_args = list(node_args)
        self.addrs = {i: f"127.0.0.1:{self.base_port + i - 1}" for i in range(1, n + 1)}
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        os.makedirs(data_dir, exist_ok=True)
        if trace_dir:
            os.makedirs(trace_dir, exist_ok=True)

    @property
    def cluster_arg(self) -> str:
        return ",".join(self.addrs[i] for i in sorted(self.addrs))

    def peers_arg(self) -> str:
        return ",".join(f"{i}={a}" for i, a in sorted(self.addrs.items()))

    def command(self, i: int, join: bool = False, extra: Iterable[str] = ()) -> list[str]:
        cmd = [sys.executable, "-m", "raftspec.node", "--id", str(i), "--peers", self.peers_arg(),
               "--data-dir", os.path.join(self.data_dir, f"node-{i}")]
        if join:
            cmd.append("--join")
        if self.trace_dir:
            cmd += ["--trace", os.path.join(self.trace_dir, f"node-{i}.ndjson")]
        if self.faults:
            cmd += ["--faults", self.faults]
        if self.secret_file:
            cmd += ["--secret", self.secret_file]
        return cmd + self.node_args + list(extra)

    def start(self, ids: Iterable[int] | None = None, join: bool = False,
              extra: Iterable[str] = ()) -> None:
        """Start nodes ``ids`` (default all) not running; ``extra``: more node arguments for
        this start only (e.g. ``--accept-lost-entries``)."""
        extra = list(extra)
        for i in (ids if ids is not None else sorted(self.addrs)):
            if i in self.procs and self.procs[i].poll() is None:
                continue
            if i not in self.addrs:
                self.addrs[i] = f"127.0.0.1:{self.base_port + i - 1}"
            logf = open(os.path.join(self.data_dir, f"node-{i}.log"), "ab")  # noqa: SIM115
            env = dict(os.environ)
            env["PYTHONPATH"] = _REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
            self.procs[i] = subprocess.Popen(self.command(i, join, extra), stdout=logf,
                                             stderr=logf, stdin=subprocess.DEVNULL, env=env)
            logf.close()

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        p = self.procs.get(i)
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=10)

    def wait_exit(self, i: int, timeout: float) -> int | None:
        """Node i's exit code if it exits within ``timeout`` seconds, else None."""
        p = self.procs.get(i)
        if p is None:
            return None
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def last_log_line(self, i: int) -> str:
        """The last ``error:`` line of node i's log (else its last line): why it stopped."""
        try:
            with open(os.path.join(self.data_dir, f"node-{i}.log"), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16_384))
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no log)"
        lines = [ln.strip() for ln in lines if ln.strip()]
        errors = [ln for ln in lines if "error:" in ln]
        return (errors or lines or ["(empty log)"])[-1]

    def set_disk_fail(self, i: int, fail: bool) -> bool:
        """Fault injection: node i's writes and fsyncs fail with EIO while ``fail``."""
        return control.control(self.addrs[i], "disk", self.secret, fail=fail)

    def alive(self, i: int) -> bool:
        p = self.procs.get(i)
        return p is not None and p.poll() is None

    def stop(self) -> None:
        """SIGTERM everyone, then SIGKILL whoever is still there after 5 s."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    # ------------------------------------------------------------------ observing
    def status(self, i: int, timeout: float = 0.3) -> dict[str, Any] | None:
        return control.status(self.addrs[i], self.secret, timeout)

    def statuses(self, ids: Iterable[int] | None = None) -> dict[int, dict[str, Any] | None]:
        return {i: self.status(i) for i in (ids if ids is not None else sorted(self.addrs))}

    def leaders(self, ids: Iterable[int] | None = None) -> dict[int, int]:
        """Node id -> term, for every reachable node that says it is leader."""
        return {i: s["term"] for i, s in self.statuses(ids).items()
                if s and s["role"] == "leader"}

    def wait_for(self, cond: Callable[[], Any], timeout: float = 20.0,
                 what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}; "
                           f"statuses: {self.statuses()}")

    def wait_leader(self, ids: Iterable[int] | None = None, timeout: float = 20.0) -> int:
        """Wait until exactly one of ``ids`` is leader in the highest term seen; return it."""
        ids = list(ids) if ids is not None else sorted(self.addrs)

        def one() -> int | None:
            st = {i: s for i, s in self.statuses(ids).items() if s}
            ls = [i for i, s in st.items() if s["role"] == "leader"]
            top = max((s["term"] for s in st.values()), default=0)
            ls = [i for i in ls if st[i]["term"] == top]
            return ls[0] if len(ls) == 1 else None

        return self.wait_for(one, timeout, f"one leader among {ids}")

    # ------------------------------------------------------------------ faults
    def block(self, i: int, peers: Iterable[int]) -> bool:
        return control.control(self.addrs[i], "block", self.secret, peers=sorted(peers))

    def partition(self, *groups: Iterable[int]) -> None:
        """Cut the cluster into groups; nodes talk only inside their group."""
        gs = [set(g) for g in groups]
        everyone = set().union(*gs)
        for g in gs:
            for i in g:
                self.block(i, everyone - g)

    def heal(self) -> None:
        for i in self.addrs:
            control.control(self.addrs[i], "heal", self.secret)

    def set_faults(self, spec: str) -> None:
        for i in self.addrs:
            control.control(self.addrs[i], "faults", self.secret, spec=spec)

    def write_manifest(self, supervisor_addr: str | None = None) -> str:
        path = os.path.join(self.data_dir, "cluster.json")
        with open(path, "w") as f:
            json.dump({"nodes": {str(i): a for i, a in self.addrs.items()},
                       "pids": {str(i): p.pid for i, p in self.procs.items()},
                       "supervisor": supervisor_addr}, f)
        return path

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def control_secret(path: str | None) -> bytes | None:
    if path is None:
        return None
    from raftspec.node.options import read_secret
    return read_secret(path)
