"""Trace validation: does a recorded run follow the reference? (docs/validate.md)."""

from traces.validate.adapter import Adapter, Attempt
from traces.validate.cluster import ClusterAdapter
from traces.validate.search import Verdict, validate, validate_paths

__all__ = ["Adapter", "Attempt", "ClusterAdapter", "Verdict", "validate", "validate_paths"]
