"""Fixtures for real-process cluster tests: every started process is stopped by a finalizer."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from raftspec.node.client import ClusterClient, History, Unavailable
from raftspec.node.supervisor import LocalCluster

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture
def make_cluster(tmp_path):
    """Factory: ``make_cluster(n, **kw)`` starts n nodes; all are stopped after the test."""
    made: list[LocalCluster] = []

    def make(n: int, start: bool = True, **kw) -> LocalCluster:
        kw.setdefault("node_args", [])
        c = LocalCluster(n, str(tmp_path / f"c{len(made)}"), **kw)
        made.append(c)
        if start:
            c.start()
        return c

    yield make
    for c in made:
        c.stop()


def run(coro):
    return asyncio.run(coro)


async def write_keys(cluster: LocalCluster, items: dict[str, str], timeout: float = 10.0,
                     secret: bytes | None = None) -> None:
    async with ClusterClient(cluster.cluster_arg.split(","), secret) as c:
        s = c.session()
        for k, v in items.items():
            await s.call("put", k, v, timeout=timeout)


async def read_keys(cluster: LocalCluster, keys, timeout: float = 10.0) -> dict[str, str]:
    async with ClusterClient(cluster.cluster_arg.split(","), cluster.secret) as c:
        s = c.session()
        return {k: await s.call("get", k, timeout=timeout) for k in keys}


async def workload(addrs: list[str], history_path: str, stop: asyncio.Event, writers: int = 4,
                   keys: int = 3, op_timeout: float = 2.0) -> dict[str, list[str]]:
    """Concurrent appends (unique values) and gets with a history; returns acked appends."""
    acked: dict[str, list[str]] = {}
    history = History(history_path)
    async with ClusterClient(addrs, try_timeout=0.3, history=history) as client:

        async def writer(w: int) -> None:
            s = client.session()
            n = 0
            while not stop.is_set():
                n += 1
                key = f"k{(w + n) % keys}"
                try:
                    if n % 3 == 0:
                        await s.call("get", key, timeout=op_timeout)
                    else:
                        v = f"<{w}.{n}>"
                        await s.call("append", key, v, timeout=op_timeout)
                        acked.setdefault(key, []).append(v)
                except Unavailable:
                    if s.dead:
                        s = client.session()
                await asyncio.sleep(0.005)

        await asyncio.gather(*(writer(w) for w in range(writers)))
    history.close()
    return acked
