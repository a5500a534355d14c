"""``raftspec lincheck``: is a client history linearizable? (traces/lincheck/)."""

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
    check_output,
    exit_status,
)
from raftspec.protocol.errors import RaftspecError
from raftspec.traces.lincheck import FORMATS, MODELS, check_file
from raftspec.traces.lincheck.render import html_report, summary, text_timeline

DESCRIPTION = """\
Check client histories for linearizability: key-value (get/put/append) and CAS-register
(read/write/cas) histories, each key checked on its own (P-compositionality) with a WGL search
memoized on (linearized set, state), as in Porcupine.

Formats (detected from the first line unless --format is given):
  jepsen        Jepsen register logs 'INFO  jepsen.util - <process> <type> <f> <value>'
  porcupine-kv  Porcupine kv lines '{:process P, :type T, :f F, :key "K", :value V}'
  ndjson        raftspec client histories, one JSON object per line (docs/lincheck.md)
The model follows the format (register for jepsen, kv otherwise, register for NDJSON
read/write/cas) unless --model is given.

Budgets: --time-limit and --max-memory bound the whole run (all files). When one runs out, or on
Ctrl-C, a history not yet decided gets the verdict UNKNOWN ("linearizable": null, "verdict":
"unknown") and the exit status is 3, never 1: running out is not a finding. A history with a
key already found illegal is NOT linearizable whatever happens to the other keys.

""" + exit_status("some history is NOT linearizable; 0 = all are (an empty history is)",
                  " (3 only when no history is NOT linearizable)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lincheck", help="check client histories for linearizability",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("histories", nargs="+", metavar="HISTORY", type=Path,
                        help="history files (Jepsen log, Porcupine kv, or NDJSON)")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="input format (default: detected)")
    parser.add_argument("--model", choices=sorted(MODELS), default=None,
                        help="sequential specification (default: implied by the format)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per history on its own line")
    parser.add_argument("--timeline", action="store_true",
                        help="draw a text timeline of the failing part of each history")
    parser.add_argument("--html", metavar="FILE", type=Path, default=None,
                        help="write an HTML timeline of the failing parts to FILE")
    add_budget_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check every history, print the verdicts, and return the exit status."""
    budget = budget_of(args)
    check_output(args.html, "--html")
    for path in args.histories:   # before any work: a later missing file costs no verdict
        try:
            open(path, "rb").close()   # noqa: SIM115
        except OSError as err:
            raise RaftspecError(f"cannot read history: {err.strerror}", path=str(path)) from None
    results = []
    interrupted: list[str] = []

    def should_stop() -> str | None:
        return interrupted[0] if interrupted else budget.exceeded()

    for path in args.histories:
        result = check_file(path, fmt=args.format, model=args.model, should_stop=should_stop)
        if result.stopped == "interrupted":
            interrupted.append("interrupted")
        results.append(result)
        if args.json:
            print(json.dumps(result.to_json()), flush=True)
            continue
        print(summary(result), flush=True)
        if args.timeline and result.failure is not None:
            print(text_timeline(result.failure), flush=True)
    if args.html is not None:
        try:
            args.html.write_text(html_report(results), encoding="utf-8")
        except OSError as err:
            raise RaftspecError(f"cannot write HTML report: {err.strerror}",
                                path=str(args.html)) from None
    if any(result.linearizable is False for result in results):
        return FINDING
    return OK if all(result.linearizable for result in results) else INCOMPLETE
