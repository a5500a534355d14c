"""etcd-raft's traces (``with_tla`` build tag) validated against reference/variants/etcd.py."""

from raftspec.traces.etcd.adapter import EtcdAdapter
from raftspec.traces.etcd.read import looks_like_etcd

__all__ = ["EtcdAdapter", "looks_like_etcd"]
