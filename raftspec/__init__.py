"""The raftspec command line: wires reference, spec, checker, traces and node together."""
