"""Linearizability checking of client histories (WGL search, per-key partitions)."""

from raftspec.traces.lincheck.check import Failure, Result, check_file, check_history, check_key
from raftspec.traces.lincheck.history import UNKNOWN, History, Operation
from raftspec.traces.lincheck.models import KV, MODELS, REGISTER, Model
from raftspec.traces.lincheck.readers import FORMATS, detect_format, parse, read_history

__all__ = [
    "FORMATS",
    "KV",
    "MODELS",
    "REGISTER",
    "UNKNOWN",
    "Failure",
    "History",
    "Model",
    "Operation",
    "Result",
    "check_file",
    "check_history",
    "check_key",
    "detect_format",
    "parse",
    "read_history",
]
