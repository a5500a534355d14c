"""The seeds' scenarios against real node processes on loopback UDP."""

from __future__ import annotations

import asyncio
import random
import time
import warnings

import pytest
from conftest import read_keys, run, workload, write_keys

from raftspec.commands._contract import Budget, children_rss_bytes, rss_bytes
from raftspec.node.chaos import append_history_violations
from raftspec.node.client import ClusterClient, Unavailable
from raftspec.traces.lincheck import check_file


def test_five_nodes_elect_exactly_one_leader(make_cluster) -> None:
    c = make_cluster(5)
    leader = c.wait_leader()
    seen: dict[int, set[int]] = {}
    for _ in range(10):
        for i, term in c.leaders().items():
            seen.setdefault(term, set()).add(i)
        time.sleep(0.05)
    assert all(len(ls) == 1 for ls in seen.values()), seen
    assert leader in set().union(*seen.values())


def test_killed_leader_is_replaced(make_cluster) -> None:
    c = make_cluster(3)
    old = c.wait_leader()
    run(write_keys(c, {"a": "1"}))
    c.kill(old)
    t = time.monotonic()
    new = c.wait_leader([i for i in c.addrs if i != old])
    took = time.monotonic() - t
    assert new != old
    assert took < 5.0                              # target is <= 1 s; see the benchmark
    assert run(read_keys(c, ["a"])) == {"a": "1"}


def test_minority_partition_cannot_commit_and_heals_to_one_log(make_cluster) -> None:
    c = make_cluster(5)
    old = c.wait_leader()
    run(write_keys(c, {"x": "before"}))
    minority = {old, (old % 5) + 1}
    majority = set(c.addrs) - minority
    c.partition(minority, majority)
    cap = c.status(old)["commit_index"]        # what the old leader had committed before

    async def write_to_old_leader() -> None:
        async with ClusterClient([c.addrs[old]], try_timeout=0.3) as client:
            await client.session().call("put", "x", "lost", timeout=1.0)

    with pytest.raises(Unavailable):
        run(write_to_old_leader())
    assert c.status(old)["last_log_index"] > cap          # appended, never committed
    new = c.wait_leader(majority)
    run(write_keys(c, {"x": "after"}))
    assert all(c.status(i)["commit_index"] <= cap for i in minority)
    c.heal()
    c.wait_leader()
    c.wait_for(lambda: len({(s["commit_index"], s["last_log_index"], s["last_log_term"])
                            for s in c.statuses().values() if s}) == 1, 20, "logs converge")
    assert new != old
    assert run(read_keys(c, ["x"])) == {"x": "after"}        # "lost" was overwritten


@pytest.mark.parametrize("threshold", [1000, 20], ids=["via-log", "via-snapshot"])
def test_restarted_node_catches_up(make_cluster, threshold) -> None:
    c = make_cluster(3, node_args=["--snapshot-threshold", str(threshold)])
    leader = c.wait_leader()
    follower = next(i for i in c.addrs if i != leader)
    c.kill(follower)
    items = {f"k{i}": f"v{i}" for i in range(60)}
    run(write_keys(c, items))
    c.start([follower])
    lead = c.status(leader)
    c.wait_for(lambda: (c.status(follower) or {}).get("applied", -1) >= lead["commit_index"],
               20, "follower catches up")
    if threshold == 20:
        assert c.status(follower)["snapshot_index"] > 0
        assert c.status(leader)["snapshot_index"] > 0
    c.kill(leader)                                  # now the restarted node must hold the data
    c.wait_leader([i for i in c.addrs if i != leader])
    assert run(read_keys(c, list(items))) == items


def test_no_acknowledged_write_is_lost_across_kill9_of_a_minority(make_cluster, tmp_path) -> None:
    c = make_cluster(5)
    c.wait_leader()
    rng = random.Random(1)
    history = str(tmp_path / "history.ndjson")

    async def scenario() -> dict[str, list[str]]:
        stop = asyncio.Event()
        task = asyncio.create_task(workload(c.cluster_arg.split(","), history, stop))
        for _ in range(3):
            await asyncio.sleep(0.8)
            victims = rng.sample(sorted(c.addrs), 2)
            for v in victims:
                c.kill(v)
            await asyncio.sleep(0.8)
            c.start(victims)
        await asyncio.sleep(0.8)
        stop.set()
        return await task

    acked = run(scenario())
    assert sum(len(v) for v in acked.values()) > 20
    final = run(read_keys(c, list(acked)))
    for key, values in acked.items():
        for v in values:
            assert v in final[key], (key, v)
    assert append_history_violations(history, final) == []
    lincheck(history)


LINCHECK_SECONDS = 60
LINCHECK_MEMORY = 2 * 2**30


def lincheck(path: str) -> None:
    """The client history of the run is linearizable as far as lincheck's general search can
    tell within ``LINCHECK_SECONDS`` and ``LINCHECK_MEMORY`` more than this process and its
    children hold. Its search is exponential in a key's operations of unknown outcome: on a
    CI run's fault history it grew the test process to 24 GiB and the OOM killer ended the
    whole run. A history it cannot decide within the budget is a warning, never a pass in
    silence; the callers' exact check for their workload (node.chaos.append_history_violations:
    unique appended tokens fix the order) decides in linear time either way."""
    budget = Budget(seconds=LINCHECK_SECONDS,
                    memory=rss_bytes() + children_rss_bytes() + LINCHECK_MEMORY)
    result = check_file(path, fmt="ndjson", model="kv", should_stop=budget.exceeded)
    assert result.linearizable is not False, result.to_json()
    if result.linearizable is None:
        warnings.warn(f"lincheck left {result.unknown_keys} of {result.keys} keys of {path} "
                      f"undecided: {result.stopped}", stacklevel=2)
