"""``raftspec validate``: does a recorded run follow the reference? (traces/validate/)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DESCRIPTION = """\
Check per-node NDJSON traces (raftspec node --trace / raftspec cluster --trace-dir; schema in
docs/trace-schema.md) against the reference at the paper's Figure 2 granularity
(reference/variants/figure2.py).

The files are merged by causality (each node's order kept, every receive after its send; wall
clocks only break ties), then searched for a path through the reference whose steps produce the
events in order, keeping every candidate reference state that fits. Message loss, duplication
and messages still in flight are explained by the reference's own DropMessage and
DuplicateMessage. Servers come from the trace; no state-space bounds apply.

  raftspec validate traces/node-*.ndjson
  raftspec validate --json traces/node-1.ndjson traces/node-2.ndjson traces/node-3.ndjson

Exit status: 0 valid; 1 invalid (the first unexplained event: its file and line, the candidate
reference states just before it and, for each, the closest action and its failed conditions);
2 bad input (a malformed line, unknown event or missing field, named by file, line and field)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate", help="check recorded node traces against the reference",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("traces", nargs="+", metavar="TRACE.ndjson", type=Path,
                        help="one file per node (all nodes of the run)")
    parser.add_argument("--model", metavar="MODEL.yaml", type=Path, default=None,
                        help="take the variant, mutants and enabled actions (restart, drop, "
                        "duplicate) from this model file; its servers and bounds are ignored "
                        "(default: figure2 with every action)")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object: {"valid", "events", "steps", "seconds", '
                        '"first_unexplained"}')
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Validate the traces, print the verdict, and return the exit status."""
    from raftspec.protocol.errors import RaftspecError
    from raftspec.traces.validate import ClusterAdapter, validate_paths
    from raftspec.traces.validate.search import verdict_text

    config = protocol = None
    if args.model is not None:
        from raftspec.spec.model import load_model

        model = load_model(args.model)
        if model.config.variant != "figure2":
            raise RaftspecError(f"variant '{model.config.variant}': node traces are validated "
                                "against the figure2 variant", path=str(args.model),
                                field="variant")
        config, protocol = model.config, model.protocol
    verdict = validate_paths([str(p) for p in args.traces], ClusterAdapter(config, protocol))
    if args.json:
        print(json.dumps(verdict.to_json()))
    else:
        print(verdict_text(verdict))
    return 0 if verdict.valid else 1
