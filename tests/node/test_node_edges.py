"""The cluster at its edges, through real processes (issue 11): big values, a disk that stops
taking writes, a damaged WAL, hostile and corrupted datagrams, bad membership requests."""

from __future__ import annotations

import asyncio
import os
import pathlib
import random
import shutil
import socket
import struct
import subprocess
import sys
import time
import zlib

import msgpack
import pytest
from conftest import read_keys, run, workload, write_keys
from test_node_cluster import lincheck
from test_node_faults import committed_logs_agree

from raftspec.node import control
from raftspec.node.client import ClusterClient, Rejected, StaleSession
from raftspec.node.faults import FaultConfig
from raftspec.node.kv import MAX_VALUE_BYTES
from raftspec.node.messages import SNAP, Message, Snapshot
from raftspec.node.server import NodeConfig, NodeServer
from raftspec.node.storage import HEADER, DiskLog, read_mark
from raftspec.node.wire import _frame, decode, encode, encode_batches, encode_message


def converge(c, ids=None) -> None:
    ids = list(ids or c.addrs)
    c.wait_for(lambda: len({(s["commit_index"], s["last_log_index"], s["applied"])
                            for s in c.statuses(ids).values() if s}) == 1
               and all(c.statuses(ids).values()), 30, "convergence")


def test_values_up_to_one_mib_are_put_appended_read_and_replicated(make_cluster) -> None:
    """Item 1. Before: a get reply over one datagram was dropped ("no leader answered"), and a
    64,920-byte put was accepted but its AppendEntries dropped by every follower as oversized,
    so the commit index never moved again."""
    c = make_cluster(3)
    c.wait_leader()
    head = "h" * 64_920
    big = "b" * (MAX_VALUE_BYTES - 1_000)

    async def scenario() -> dict[str, str]:
        async with ClusterClient(c.cluster_arg.split(",")) as client:
            s = client.session()
            await s.call("put", "edge", head, timeout=10)
            await s.call("put", "small", "1", timeout=10)        # replication still moves
            await s.call("put", "big", big, timeout=10)
            await s.call("append", "big", "t" * 1_000, timeout=10)   # exactly the limit
            with pytest.raises(Rejected, match=f"value_too_large.*{MAX_VALUE_BYTES}"):
                await s.call("append", "big", "!", timeout=10)
            with pytest.raises(Rejected, match="value_too_large"):
                await s.call("put", "other", "o" * (MAX_VALUE_BYTES + 1), timeout=10)
            await s.call("append", "small", "2", timeout=10)
            return {k: await s.call("get", k, timeout=10) for k in ("edge", "big", "small",
                                                                    "other")}

    got = run(scenario())
    assert got == {"edge": head, "big": big + "t" * 1_000, "small": "12", "other": ""}
    converge(c)
    for i in c.addrs:                    # every replica holds the entries and reads them back
        c.kill(i)
    c.start()
    c.wait_leader()
    assert run(read_keys(c, ["big"]))["big"] == big + "t" * 1_000


def test_a_node_whose_disk_fails_stops_and_no_acknowledged_write_is_lost(make_cluster,
                                                                         tmp_path) -> None:
    """Item 2. Before: a follower whose writes failed stayed up answering nothing, logged
    thousands of tracebacks, then served state that differed from its log (entries were
    marked stable and applied before they were persisted). The disk failure is injected in
    the node's storage layer (control action "disk": every write and fsync fails with EIO),
    since chmod does not stop root."""
    c = make_cluster(3, node_args=["--snapshot-threshold", "300"])
    leader = c.wait_leader()
    follower = next(i for i in c.addrs if i != leader)
    history = str(tmp_path / "h.ndjson")

    async def scenario() -> dict[str, list[str]]:
        stop = asyncio.Event()
        task = asyncio.create_task(workload(c.cluster_arg.split(","), history, stop,
                                            writers=3))
        await asyncio.sleep(0.8)
        for victim in (follower, leader):
            assert control.control(c.addrs[victim], "disk", fail=True)
            deadline = time.monotonic() + 10
            while c.alive(victim) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert not c.alive(victim)
            assert c.procs[victim].returncode == 3
            await asyncio.sleep(1.0)              # the others go on without it
            c.start([victim])
            await asyncio.sleep(1.0)
        stop.set()
        return await task

    acked = run(scenario())
    for victim in (follower, leader):
        text = pathlib.Path(c.data_dir, f"node-{victim}.log").read_text()
        assert "error: cannot persist" in text and "Traceback" not in text, text[-2000:]
    c.wait_leader()
    converge(c)
    final = run(read_keys(c, list(acked)))
    for key, values in acked.items():
        assert all(final[key].count(v) == 1 for v in values), key
    commits = {i: s["commit_index"] for i, s in c.statuses().items()}
    c.stop()
    committed_logs_agree(c, commits)
    lincheck(history)


def test_a_damaged_length_mid_wal_makes_the_node_refuse_to_start(make_cluster) -> None:
    """Item 3. Before: a damaged length field mid-file was taken for a torn tail and the WAL
    cut there; two such nodes elected a leader and acknowledged writes were lost."""
    c = make_cluster(3)
    c.wait_leader()

    async def writes() -> None:
        async with ClusterClient(c.cluster_arg.split(",")) as client:
            s = client.session()
            for k in range(60):
                await s.call("append", f"k{k % 5}", f"<{k}>", timeout=10)

    run(writes())
    converge(c)
    c.stop()
    wal = pathlib.Path(c.data_dir, "node-2", "wal")
    data = bytearray(wal.read_bytes())
    pos = 0
    for _ in range(8):                                   # the header of the 9th record
        pos += HEADER.size + (struct.unpack_from("<I", data, pos)[0] & 0x7FFF_FFFF)
    struct.pack_into("<I", data, pos, 0x8000_0000 | 0x7FFF_0000)    # runs past the end
    wal.write_bytes(bytes(data))
    c.start([2])
    c.procs[2].wait(timeout=20)
    assert c.procs[2].returncode == 2
    log = pathlib.Path(c.data_dir, "node-2.log").read_text()
    assert f"{wal}: byte {pos}: damaged record" in log and "Traceback" not in log
    assert os.path.getsize(wal) == len(data)                         # nothing was cut


def _fuzz_datagrams(rng: random.Random, valid: list[bytes]) -> list[bytes]:
    big = [2**64 - 1, 2**63, 2**53 + 1, -1, 0, 2**31]
    out = []
    for _ in range(1500):
        kind = rng.randrange(6)
        if kind == 0:
            out.append(rng.randbytes(rng.randrange(0, 300)))
        elif kind == 1:
            d = rng.choice(valid)
            out.append(d[:rng.randrange(len(d))])
        elif kind == 2:
            d = bytearray(rng.choice(valid))
            for _ in range(rng.randint(1, 4)):
                d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
            out.append(bytes(d))
        else:                        # a correct checksum around out-of-range or odd fields
            body = {"k": rng.choice(["vote", "vote_resp", "append", "append_resp", "snap",
                                     "snap_resp", "req", "conf", "ctl", "status", "batch"]),
                    "s": rng.choice([1, 2, 3] + big), "d": rng.choice([1, 2, 3] + big),
                    "t": rng.choice(big)}
            for key in rng.sample(["lli", "llt", "pi", "pt", "c", "mi", "ci", "ct", "si", "st",
                                   "off", "e", "mem", "ch", "m", "rid", "cid", "seq", "op",
                                   "key", "value", "action", "peers", "id", "addr"], 4):
                body[key] = rng.choice(big + ["x", None, [], {}, [[1]], {"1": "a:b"},
                                              [2**64 - 1], b"\x00" * 10])
            out.append(_frame(msgpack.packb(body), None, 0))
    return out


def test_hostile_datagrams_never_stop_a_node_and_the_cluster_still_serves(make_cluster) -> None:
    """Item 5. Before: one unsigned VOTE with term 2**64 - 1 overflowed msgpack on term + 1;
    the exception killed the tick timer (a zombie process) and the huge term was persisted."""
    c = make_cluster(3)
    c.wait_leader()
    rng = random.Random(5)
    valid = [encode({"k": "vote", "s": 2, "d": 1, "t": 1, "lli": 0, "llt": 0}, None),
             encode_batches([{"k": "req", "rid": 1, "cid": "c", "seq": 1, "op": "put",
                              "key": "a", "value": "v"}], None)[0],
             encode({"k": "status", "rid": 3}, None)]
    datagrams = _fuzz_datagrams(rng, valid)
    datagrams.append(_frame(msgpack.packb({"k": "vote", "s": 2, "d": 1, "t": 2**64 - 1}),
                            None, 0))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for k, d in enumerate(datagrams):
            i = 1 + k % 3
            s.sendto(d, ("127.0.0.1", c.base_port + i - 1))
            if k % 100 == 0:
                time.sleep(0.01)
    time.sleep(0.5)
    sts = c.statuses()
    assert all(sts.values()) and all(c.alive(i) for i in c.addrs)
    assert all(s["term"] < 2**53 for s in sts.values())
    assert sum(sum(s["bad_datagrams"].values()) for s in sts.values()) > 1000
    assert not any(s["bad_datagrams"].get("handler_error") for s in sts.values()), sts
    old = c.wait_leader()
    c.kill(old)                                 # ticks still run: the others elect
    c.wait_leader([i for i in c.addrs if i != old])
    run(read_keys(c, ["a"]))

    async def write() -> None:
        async with ClusterClient(c.cluster_arg.split(",")) as client:
            await client.session().call("put", "after", "fuzz", timeout=10)

    run(write())
    assert run(read_keys(c, ["after"])) == {"after": "fuzz"}


def test_corrupted_client_requests_are_dropped_and_a_session_is_never_acked_unapplied(
        make_cluster) -> None:
    """Item 6. Before (no HMAC): a bit-flipped request with a changed seq was applied, and the
    real client's later writes were then answered "ok" without being applied."""
    c = make_cluster(3)
    leader = c.wait_leader()
    addr = ("127.0.0.1", c.base_port + leader - 1)
    cid = "f" * 16
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for seq in range(1, 40):
            d = bytearray(encode_batches([{"k": "req", "rid": seq, "cid": cid, "seq": seq,
                                           "op": "append", "key": "x", "value": "E"}],
                                         None)[0])
            d[8 + (seq * 7) % (len(d) - 8)] ^= 1 << (seq % 8)   # a bit of the body
            s.sendto(bytes(d), addr)
    time.sleep(0.3)
    assert c.status(leader)["bad_datagrams"].get("bad_crc", 0) >= 39

    async def scenario() -> tuple[str, type]:
        async with ClusterClient(c.cluster_arg.split(",")) as client:
            s = client.session()
            s.cid = cid
            for k in range(5):
                await s.call("append", "x", str(k), timeout=10)
            # a datagram that passes every check but comes from somebody else using this
            # session id with a later seq: the real session must not be acked unapplied
            forged = {"k": "req", "rid": 1, "cid": cid, "seq": 99, "op": "append",
                      "key": "x", "value": "F"}
            assert (await client.to_leader(forged, 10))["ok"]
            try:
                await s.call("append", "x", "5", timeout=10)
                outcome: type = type(None)
            except StaleSession:
                outcome = StaleSession
            return await client.session().call("get", "x", timeout=10), outcome

    value, outcome = run(scenario())
    assert value == "01234F" and outcome is StaleSession


def test_a_membership_request_with_a_bad_address_gets_an_error_reply(make_cluster) -> None:
    """Item 7. Before: parse_addr raised out of the receive handler, and the rest of that
    batch of datagrams was dropped."""
    c = make_cluster(3)
    leader = c.wait_leader()
    addr = c.addrs[leader]
    reply = control.query(addr, {"k": "conf", "action": "add", "id": 4, "addr": "nowhere"},
                          timeout=2)
    assert reply is not None and not reply["ok"] and "bad address" in reply["err"]
    reply = control.query(addr, {"k": "conf", "action": "add", "id": -3, "addr": "a:1"},
                          timeout=2)
    assert reply is not None and not reply["ok"] and "bad node id" in reply["err"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:    # one batch, then status
        s.bind(("127.0.0.1", 0))
        host, port = addr.split(":")
        s.sendto(encode({"k": "conf", "rid": 7, "action": "add", "id": 5, "addr": "x"}, None),
                 (host, int(port)))
        s.sendto(encode({"k": "status", "rid": 8}, None), (host, int(port)))
        s.settimeout(5)
        rids = set()
        while rids != {7, 8}:
            data, _ = s.recvfrom(65_536)
            body = msgpack.unpackb(data[8:])
            rids.update(b["rid"] for b in (body["m"] if body["k"] == "batch" else [body]))
    assert sorted(c.status(leader)["members"]) == ["1", "2", "3"]


def test_a_membership_change_the_followers_would_drop_is_refused_by_the_leader(
        make_cluster) -> None:
    """Before: the leader checked a new member's address with parse_addr only, and appended a
    300-character one that every follower's decoder drops (bad_fields, wire.MAX_STR): no
    AppendEntries carrying it was accepted again, and the cluster never committed again."""
    c = make_cluster(3)
    leader = c.wait_leader()
    reply = control.query(c.addrs[leader], {"k": "conf", "action": "add", "id": 4,
                                            "addr": "h" * 300 + ":27104"}, timeout=2)
    assert reply is not None and not reply["ok"] and "bad address" in reply["err"], reply
    assert sorted(c.status(leader)["members"]) == ["1", "2", "3"]
    run(write_keys(c, {"after": "refused"}))
    converge(c)
    assert run(read_keys(c, ["after"])) == {"after": "refused"}


NOT_KV_IMAGES = [b"not a zlib blob", zlib.compress(b"[1, 2, 3]")]


def test_a_received_snapshot_that_is_not_a_kv_image_is_dropped_and_never_persisted(
        make_cluster) -> None:
    """Before: a follower wrote a received snapshot that is not a kv image to disk, then
    kv.restore raised (zlib.error, TypeError) in every flush, before the replies were sent:
    status never answered again, and a restart stopped on the bad file."""
    c = make_cluster(3)
    leader = c.wait_leader()
    follower = next(i for i in c.addrs if i != leader)
    run(write_keys(c, {"a": "1"}))
    st = c.status(follower)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for image in NOT_KV_IMAGES:
            m = Message(SNAP, leader, follower, st["term"], snap_index=st["commit_index"] + 5,
                        snap_term=st["term"], members=dict(c.addrs), chunk=image, done=True)
            for data in encode_message(m, None):
                s.sendto(data, ("127.0.0.1", c.base_port + follower - 1))
    bad = c.wait_for(lambda: (c.status(follower) or {}).get("bad_datagrams", {})
                     .get("bad_snapshot") == 2, 10, "both snapshots dropped and counted")
    assert bad and "handler_error" not in c.status(follower)["bad_datagrams"]
    assert not os.path.exists(os.path.join(c.data_dir, f"node-{follower}", "snapshot"))
    run(write_keys(c, {"b": "2"}))
    converge(c)
    c.kill(follower)
    c.start([follower])
    converge(c)
    assert c.status(follower)["snapshot_index"] == 0


@pytest.mark.parametrize("image", NOT_KV_IMAGES, ids=["not-zlib", "json-list"])
def test_a_snapshot_file_that_is_not_a_kv_image_is_one_error_line_and_exit_2(
        tmp_path, image) -> None:
    """Before: exit 4 "internal error" (raftspec node) or a traceback (python -m
    raftspec.node); the file's checksum is valid, its content is not a kv image."""
    data = tmp_path / "d"
    disk = DiskLog(str(data))
    disk.load()
    disk.save_snapshot(Snapshot(3, 1, {1: "127.0.0.1:1"}, image), 4, [], 1, None)
    disk.close()
    proc = subprocess.run([sys.executable, "-m", "raftspec.node", "--id", "1",
                           "--peers", "1=127.0.0.1:1", "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"node 1: error: {data / 'snapshot'}: "), proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_replies_still_go_out_when_flushing_the_core_raises(tmp_path) -> None:
    """Before: an exception in a flush skipped the sending of every queued reply, and a
    Ready that raised again at every tick left status unanswered for good."""
    server = NodeServer(NodeConfig(id=1, peers={1: "127.0.0.1:1", 2: "127.0.0.1:2"},
                                   data_dir=str(tmp_path / "d"), port=0, seed=1))

    class Transport:
        blocked: set[int] = set()
        faults = FaultConfig()
        replies: list[dict] = []

        def send_to(self, data: bytes, addr: tuple[str, int]) -> None:
            self.replies.append(decode(data, None))

        def close(self) -> None:
            pass

    def broken_flush() -> None:
        raise RuntimeError("boom in flush")

    transport = Transport()
    server.transport = transport                              # type: ignore[assignment]
    server._flush_once = broken_flush                         # type: ignore[method-assign]
    server._on_batch([(encode({"k": "status", "rid": 5}, None), ("h", 1))])
    server.close()
    assert [r["rid"] for r in transport.replies] == [5]
    assert server.bad["handler_error"] == 1


def _read_only_runner(data_dir: str) -> list[str] | None:
    """A command prefix that runs the node with ``data_dir`` on a read-only mount (a private
    mount namespace, since root ignores file modes), or None where that is not possible."""
    if os.geteuid() != 0:
        os.chmod(data_dir, 0o555)
        return []
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", "-m", "sh", "-c",
                            f"mount --bind -o ro {data_dir} {data_dir}"],
                           capture_output=True)
    if probe.returncode != 0:
        return None
    return ["unshare", "-m", "sh", "-c",
            f'mount --bind -o ro {data_dir} {data_dir} && exec "$0" "$@"']


def test_a_read_only_data_dir_is_one_error_line_and_exit_2(tmp_path) -> None:
    """Item 7. Before: a PermissionError traceback."""
    data = tmp_path / "ro"
    data.mkdir()
    (data / "wal").write_bytes(b"")
    prefix = _read_only_runner(str(data))
    if prefix is None:
        pytest.skip("cannot make a read-only directory here (root, and no unshare -m)")
    proc = subprocess.run(prefix + [sys.executable, "-m", "raftspec.node", "--id", "1",
                                    "--peers", "1=127.0.0.1:1", "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"node 1: error: data dir {data}: ")
    assert "Read-only file system" in proc.stderr or "Permission denied" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_a_follower_that_lost_acknowledged_entries_refuses_then_abstains_until_caught_up(
        make_cluster) -> None:
    """Item 4. Before: the leader never let next_index fall below a stale match_index + 1, so
    the follower stayed behind (commit 0) as long as that leader lasted; and a node whose WAL
    lost acknowledged entries started and voted as if it still had them. Now: it refuses to
    start (exit 2, one line naming the WAL, the mark and what the WAL holds); with
    --accept-lost-entries it starts, neither campaigns nor votes (a two-node majority that
    needs its vote elects nobody), and is caught up by the same leader; nothing acked is lost."""
    c = make_cluster(3, node_args=["--election-ticks", "40"])
    leader = c.wait_leader()
    follower, other = (i for i in sorted(c.addrs) if i != leader)
    acked: list[str] = []

    async def writes(n: int) -> None:
        async with ClusterClient(c.cluster_arg.split(","), try_timeout=0.3) as client:
            s = client.session()
            for _ in range(n):
                v = f"<{len(acked)}>"
                await s.call("append", "k", v, timeout=15)
                acked.append(v)

    run(writes(150))
    converge(c)
    time.sleep(0.3)                                   # > MARK_INTERVAL_S: the mark is raised
    term = c.status(leader)["term"]
    c.kill(follower)
    data = pathlib.Path(c.data_dir, f"node-{follower}")
    mark = read_mark(str(data / "mark"))
    assert mark is not None and mark.index >= 150
    wal = data / "wal"
    wal.write_bytes(wal.read_bytes()[:wal.stat().st_size // 3])     # lost its tail
    kept = DiskLog(str(data)).load().last_index
    assert kept < mark.index - 50

    c.start([follower])                               # refused: one line, exit 2
    assert c.wait_exit(follower, 30) == 2
    text = pathlib.Path(c.data_dir, f"node-{follower}.log").read_text()
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    assert text.startswith(f"node {follower}: error: {wal}: acknowledged entries were lost: "
                           f"the WAL holds entries up to index {kept}"), text
    assert f"up to index {mark.index} (term {mark.log_term})" in text
    assert str(data / "mark") in text and "--accept-lost-entries" in text
    assert DiskLog(str(data)).load().last_index == kept          # nothing changed on disk

    # With the flag, cut off from the leader: it must not campaign, nor vote for `other`.
    assert control.control(c.addrs[leader], "block", peers=[follower])
    c.start([follower], extra=["--accept-lost-entries"])
    st = c.wait_for(lambda: c.status(follower), 15, "the follower answering")
    assert (st["abstain_until"], st["last_log_index"]) == (mark.index, kept)
    assert "acknowledged entries were lost" in c.last_log_line(follower) or \
        "acknowledged entries were lost" in pathlib.Path(
            c.data_dir, f"node-{follower}.log").read_text()
    recovered_term = st["term"]
    assert recovered_term >= mark.term
    time.sleep(1.5)                                   # > 2 election timeouts of 400-800 ms
    st = c.status(follower)
    assert (st["role"], st["term"], st["abstain_until"]) == ("follower", recovered_term,
                                                             mark.index)
    c.kill(leader)                                    # other + follower: a majority only if
    deadline = time.monotonic() + 3.0                 # the follower votes
    while time.monotonic() < deadline:
        sts = c.statuses([follower, other])
        assert all(s and s["role"] != "leader" for s in sts.values()), sts
        assert sts[follower]["voted_for"] != other or sts[follower]["term"] <= recovered_term
        time.sleep(0.05)
    assert c.status(other)["term"] > term              # other did campaign

    c.start([leader])                                 # the old leader (full log) is back
    c.wait_leader(timeout=30)
    c.wait_for(lambda: (c.status(follower) or {}).get("abstain_until") == 0, 30,
               "the follower caught up")
    assert c.status(follower)["last_log_index"] >= mark.index
    run(writes(10))
    converge(c)
    assert run(read_keys(c, ["k"]))["k"] == "".join(acked)      # nothing acked lost

    # Lost again, started with the flag and not cut off: the same leader catches it up.
    leader = c.wait_leader()
    term = c.status(leader)["term"]
    c.kill(follower)
    wal.write_bytes(wal.read_bytes()[:wal.stat().st_size // 2])
    c.start([follower], extra=["--accept-lost-entries"])
    c.wait_for(lambda: (c.status(follower) or {}).get("pid"), 15, "the follower answering")
    run(writes(10))
    converge(c)
    st = c.status(follower)
    assert (st["abstain_until"], c.wait_leader(), c.status(leader)["term"]) == (0, leader, term)
    assert c.status(leader)["followers_lost_entries"] >= 1
    assert run(read_keys(c, ["k"]))["k"] == "".join(acked)
