"""Faults on real clusters: a seeded random schedule, bad datagrams, HMAC, membership, traces."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys

import msgpack
import pytest
from conftest import read_keys, run, workload, write_keys
from test_node_cluster import lincheck

from raftspec.node.client import ClusterClient, Unavailable
from raftspec.node.storage import DiskLog
from raftspec.node.wire import _frame
from raftspec.traces.schema import merge_by_causality, read_trace


def committed_logs_agree(c, commits: dict[int, int]) -> None:
    """Every pair of nodes has the same entry terms and commands at each index both committed."""
    logs = {}
    for i in c.addrs:
        rec = DiskLog(os.path.join(c.data_dir, f"node-{i}")).load()
        base = rec.snapshot.index if rec.snapshot else 0
        logs[i] = {base + k + 1: (e.term, repr(e.data)) for k, e in enumerate(rec.entries)}
    ids = sorted(logs)
    for a in ids:
        for b in ids:
            upto = min(commits[a], commits[b])
            for idx in range(1, upto + 1):
                if idx in logs[a] and idx in logs[b]:
                    assert logs[a][idx] == logs[b][idx], (a, b, idx)


@pytest.mark.parametrize("seed", [11, 12])
def test_random_fault_schedule_keeps_committed_prefixes_equal(make_cluster, tmp_path,
                                                               seed) -> None:
    """Loss, duplication, delay and reordering on every link, plus random partitions and
    kill -9 / restart; at the end the history is linearizable and committed logs agree."""
    c = make_cluster(5, faults="loss=0.05,dup=0.05,delay=0-8ms,reorder=0.1",
                     node_args=["--snapshot-threshold", "150", "--seed", str(seed)])
    c.wait_leader()
    rng = random.Random(seed)
    history = str(tmp_path / "history.ndjson")

    async def scenario() -> dict[str, list[str]]:
        stop = asyncio.Event()
        task = asyncio.create_task(workload(c.cluster_arg.split(","), history, stop,
                                            writers=3, op_timeout=3.0))
        for _ in range(5):
            await asyncio.sleep(rng.uniform(0.3, 0.8))
            what = rng.choice(["partition", "kill", "heal"])
            if what == "partition":
                ids = sorted(c.addrs)
                rng.shuffle(ids)
                cut = rng.randint(1, 2)
                c.partition(ids[:cut], ids[cut:])
            elif what == "kill":
                victim = rng.choice(sorted(c.addrs))
                c.kill(victim)
                await asyncio.sleep(0.4)
                c.start([victim])
            else:
                c.heal()
        c.heal()
        c.set_faults("none")
        await asyncio.sleep(1.0)
        stop.set()
        return await task

    acked = run(scenario())
    c.wait_leader()
    c.wait_for(lambda: len({(s["commit_index"], s["last_log_index"])
                            for s in c.statuses().values() if s}) == 1, 30, "convergence")
    final = run(read_keys(c, list(acked)))
    for key, values in acked.items():
        assert all(v in final[key] for v in values), key
    commits = {i: s["commit_index"] for i, s in c.statuses().items()}
    c.stop()
    committed_logs_agree(c, commits)
    lincheck(history)


def test_bad_datagrams_are_counted_and_dropped(make_cluster) -> None:
    c = make_cluster(3)
    c.wait_leader()
    port = int(c.addrs[1].rsplit(":", 1)[1])
    def v3(payload: bytes) -> bytes:
        return _frame(payload, None, 0)

    junk = [b"", b"RS", b"hello", b"RS\x07\x00{}", b'RS\x01\x00{"k":"status"}', v3(b"\xc1"),
            v3(msgpack.packb([])), v3(msgpack.packb({"k": "append", "s": "x", "d": 1, "t": 1})),
            v3(msgpack.packb({"k": "req", "rid": 1})), v3(msgpack.packb({"k": "zzz"})),
            v3(msgpack.packb({"k": "append", "s": 2, "d": 1, "t": 1, "e": [[1, 5]]})),
            b"RS\x02\x00" + msgpack.packb({"k": "status"}), os.urandom(60_000)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(20):
            for j in junk:
                s.sendto(j, ("127.0.0.1", port))
    c.wait_for(lambda: sum((c.status(1) or {}).get("bad_datagrams", {}).values()) >= 150,
               10, "bad datagrams counted")
    assert c.alive(1)
    run(write_keys(c, {"still": "works"}))
    assert run(read_keys(c, ["still"])) == {"still": "works"}


def test_hmac_secret_drops_unauthenticated_messages(make_cluster, tmp_path) -> None:
    key = tmp_path / "secret"
    key.write_text("s3cr3t-key\n")
    c = make_cluster(3, secret_file=str(key))
    c.wait_leader()
    run(write_keys(c, {"a": "1"}, secret=b"s3cr3t-key"))

    async def unauthenticated() -> None:
        async with ClusterClient(c.cluster_arg.split(","), None, try_timeout=0.2) as client:
            await client.session().call("put", "a", "evil", timeout=1.0)

    with pytest.raises(Unavailable):
        run(unauthenticated())
    assert run(read_keys(c, ["a"])) == {"a": "1"}
    assert c.status(1)["bad_datagrams"].get("missing_mac", 0) > 0
    # the commands say why nothing answers (before: "unreachable", "no leader answered")
    wrong = tmp_path / "wrong"
    wrong.write_text("other-key\n")
    for args, hint in ((["status"], "a cluster started with --secret answers only"),
                       (["kv", "--secret", str(wrong), "get", "a"],
                        f"another key than --secret {wrong}"),
                       (["ctl", "heal"], "a cluster started with --secret answers only")):
        proc = subprocess.run([sys.executable, "-m", "raftspec", args[0], "--cluster",
                               c.cluster_arg, "--timeout", "1", *args[1:]],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and hint in proc.stderr, proc


def test_add_and_remove_one_server_at_a_time(make_cluster) -> None:
    c = make_cluster(3)
    leader = c.wait_leader()
    run(write_keys(c, {f"k{i}": str(i) for i in range(20)}))
    c.start([4], join=True)

    async def change(action: str, nid: int) -> None:
        body = {"k": "conf", "action": action, "id": nid}
        if action == "add":
            body["addr"] = c.addrs[nid]
        async with ClusterClient(c.cluster_arg.split(",")) as client:
            await client.to_leader(body, 10.0)

    run(change("add", 4))
    c.wait_for(lambda: (c.status(4) or {}).get("applied", 0) >= c.status(leader)["commit_index"]
               and "4" in c.status(4)["members"], 20, "node 4 catches up")
    run(change("remove", leader))
    rest = [i for i in c.addrs if i != leader]
    new = c.wait_leader(rest)
    assert new != leader
    assert sorted(c.status(new)["members"]) == [str(i) for i in rest]
    c.kill(leader)
    run(write_keys(c, {"after": "change"}))
    assert run(read_keys(c, ["k7", "after"])) == {"k7": "7", "after": "change"}


def test_traces_follow_the_schema_and_every_receive_names_its_send(make_cluster,
                                                                   tmp_path) -> None:
    tdir = tmp_path / "traces"
    c = make_cluster(3, trace_dir=str(tdir))
    old = c.wait_leader()
    run(write_keys(c, {f"k{i}": "v" for i in range(10)}))
    c.kill(old)
    new = c.wait_leader([i for i in c.addrs if i != old])
    run(write_keys(c, {f"m{i}": "v" for i in range(10)}))      # the old leader misses these
    c.start([old])
    run(write_keys(c, {"z": "1"}))
    c.wait_for(lambda: (c.status(old) or {}).get("commit_index") ==
               c.status(new)["commit_index"], 20, "restarted node catches up")
    c.stop()
    traces = [list(read_trace(str(tdir / f"node-{i}.ndjson"))) for i in sorted(c.addrs)]
    sends = {e["msg"]["id"]: e["msg"] for t in traces for e in t if e["event"] == "send"}
    recvs = [e for t in traces for e in t if e["event"] == "recv"]
    assert recvs and all(e["msg"] == sends[e["msg"]["id"]] for e in recvs)
    for t in traces:
        assert [e["seq"] for e in t] == list(range(1, len(t) + 1))   # continues after restart
    merged = merge_by_causality(traces)
    assert len(merged) == sum(map(len, traces))
    position = {(e["node"], e["seq"]): k for k, e in enumerate(merged)}
    send_pos = {e["msg"]["id"]: position[(e["node"], e["seq"])] for e in merged
                if e["event"] == "send"}
    assert all(send_pos[e["msg"]["id"]] < position[(e["node"], e["seq"])] for e in recvs)
    leaders = {}
    for e in merged:
        if e["event"] == "become_leader":
            assert leaders.setdefault(e["term"], e["node"]) == e["node"]
    appends = [e for e in merged if e["event"] == "send" and e["msg"]["type"] == "append"]
    assert any(e["msg"]["n_entries"] > 1 for e in appends)   # many entries per AppendEntries


def test_traces_name_every_entry_and_survive_a_leader_kill_mid_load(make_cluster,
                                                                    tmp_path) -> None:
    """Entries carry a command hash and kind; after SIGKILL of a busy leader every receive
    still finds its send in the killed node's file (the trace is flushed before sending)."""
    tdir = tmp_path / "traces"
    c = make_cluster(3, trace_dir=str(tdir))
    old = c.wait_leader()

    async def load_then_kill() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(workload(c.cluster_arg.split(","),
                                            str(tmp_path / "h.ndjson"), stop, writers=8))
        await asyncio.sleep(1.0)
        c.kill(old)
        await asyncio.sleep(1.5)
        stop.set()
        await task

    run(load_then_kill())
    c.stop()
    traces = [list(read_trace(str(tdir / f"node-{i}.ndjson"))) for i in sorted(c.addrs)]
    sends = {e["msg"]["id"]: e["msg"] for t in traces for e in t if e["event"] == "send"}
    recvs = [e for t in traces for e in t if e["event"] == "recv"]
    assert all(e["msg"] == sends[e["msg"]["id"]] for e in recvs)
    from_old = [e for e in recvs if e["msg"]["from"] == old]
    assert from_old and all(e["msg"]["id"] in sends for e in from_old)
    at: dict[tuple[int, int], str] = {}                       # (index, term) -> hash
    kinds: dict[tuple[int, int], str] = {}
    for m in sends.values():
        if m["type"] == "append":
            assert len(m["entry_hashes"]) == len(m["entry_kinds"]) == m["n_entries"]
            for k, (t, h, kind) in enumerate(zip(m["entries"], m["entry_hashes"],
                                                 m["entry_kinds"], strict=True)):
                assert at.setdefault((m["prev_index"] + k + 1, t), h) == h
                kinds[(m["prev_index"] + k + 1, t)] = kind
    for t in traces:
        after_win = False
        for e in t:
            if e["event"] == "become_leader":
                after_win = True
            elif e["event"] == "client_request":
                assert e["kind"] == ("noop" if after_win else "command")
                after_win = False
                key = (e["index"], e["term"])
                assert at.get(key, e["hash"]) == e["hash"]
                assert kinds.get(key, e["kind"]) == e["kind"]
    assert "command" in kinds.values() and "noop" in kinds.values()
