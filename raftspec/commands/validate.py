"""``raftspec validate``: does a recorded run follow the reference? (traces/validate/)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from raftspec.commands._contract import (
    FINDING,
    INCOMPLETE,
    OK,
    add_budget_arguments,
    budget_of,
    exit_status,
)

DESCRIPTION = """\
Check a recorded run against the reference. Two formats are recognised by content (--format
forces one; .gz files are read directly):

  raftspec   our cluster's per-node NDJSON traces (below)
  etcd       etcd-raft's TLA+ trace points (built with -tags with_tla), one file with every
             node's events, validated against reference/variants/etcd.py (docs/etcd.md)

  raftspec validate example.ndjson.gz            # an etcd-raft trace
  raftspec validate --adapter my_adapter.py run.log   # another implementation (docs/validate.md)

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

Input that cannot be judged is refused with exit 2, never called invalid: a malformed line,
unknown event or missing field (named by file, line and field); an empty trace; a file given
twice; a receive whose send belongs to a node whose file was not given ("incomplete trace:
node 2's file is missing (line N receives a message sent by node 2)").

1 = invalid: the first unexplained event, its file and line, the candidate reference states just
before it and, for each, the closest action and its failed conditions.
""" + exit_status("invalid; 0 = valid", '; --json: "complete": false, "valid": null, '
                  '"validated" = events explained so far, "stopped" = why')


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
    parser.add_argument("--format", choices=("raftspec", "etcd"), default=None,
                        help="the trace format (default: recognised from the first line)")
    parser.add_argument("--adapter", metavar="ADAPTER.py", type=Path, default=None,
                        help="a Python file defining make_adapter() that returns an adapter "
                        "for another trace format (docs/validate.md, 'Writing an adapter')")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object: {"valid", "events", "steps", "seconds", '
                        '"first_unexplained", "complete", "stopped", "validated"}')
    add_budget_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Validate the traces, print the verdict, and return the exit status."""
    from raftspec.protocol.errors import RaftspecError
    from raftspec.traces.validate import ClusterAdapter, validate_paths

    budget = budget_of(args)
    adapter = _choose_adapter(args)
    if adapter is not None:
        verdict = validate_paths([str(p) for p in args.traces], adapter,
                                 should_stop=budget.exceeded)
        return _report(args, verdict)
    config = protocol = None
    if args.model is not None:
        from raftspec.spec.model import load_model

        model = load_model(args.model)
        if model.config.variant != "figure2":
            raise RaftspecError(f"variant '{model.config.variant}': node traces are validated "
                                "against the figure2 variant", path=str(args.model),
                                field="variant")
        config, protocol = model.config, model.protocol
    verdict = validate_paths([str(p) for p in args.traces], ClusterAdapter(config, protocol),
                             should_stop=budget.exceeded)
    return _report(args, verdict)


def _choose_adapter(args: argparse.Namespace):
    """The adapter for a format other than our cluster's (None: the cluster's)."""
    from raftspec.protocol.errors import RaftspecError
    from raftspec.traces.etcd import EtcdAdapter, looks_like_etcd

    if args.adapter is not None:
        if args.format is not None or args.model is not None:
            raise RaftspecError("--adapter cannot be combined with --format or --model",
                                path=str(args.adapter))
        from raftspec.traces.validate.user_adapter import load_adapter

        return load_adapter(args.adapter)
    fmt = args.format
    if fmt is None:
        fmt = "etcd" if looks_like_etcd(str(args.traces[0])) else "raftspec"
    if fmt != "etcd":
        return None
    if args.model is not None:
        raise RaftspecError("--model applies to raftspec traces; etcd traces are validated "
                            "against reference/variants/etcd.py", path=str(args.model))
    if len(args.traces) != 1:
        raise RaftspecError("an etcd-raft trace is one file holding every node's events; "
                            f"{len(args.traces)} files given", path=str(args.traces[1]))
    return EtcdAdapter()


def _report(args: argparse.Namespace, verdict) -> int:
    from raftspec.traces.validate.search import verdict_text

    if args.json:
        print(json.dumps(verdict.to_json()))
    elif not verdict.complete:
        print(f"INCOMPLETE ({verdict.stopped}): {verdict.validated} of {verdict.events} events "
              f"explained, no verdict ({verdict.seconds:.2f} s)")
    else:
        print(verdict_text(verdict))
    if not verdict.complete:
        return INCOMPLETE
    return OK if verdict.valid else FINDING
