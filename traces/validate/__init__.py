"""Trace validation: does a recorded run follow the reference? (docs/validate.md)."""

from raftspec.traces.validate.adapter import Adapter, Attempt
from raftspec.traces.validate.cluster import ClusterAdapter
from raftspec.traces.validate.search import Verdict, validate, validate_paths

__all__ = ["Adapter", "Attempt", "ClusterAdapter", "Verdict", "validate", "validate_paths"]
