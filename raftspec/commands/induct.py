"""``raftspec induct``: prove an invariant for all depths by (k-)induction with Z3."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import z3

from raftspec.checker.report import counterexample_json, counterexample_rows, counterexample_text
from raftspec.checker.symbolic import ActionCheck, InductionResult, induct, resolve_lemmas
from raftspec.commands._contract import (
    FINDING,
    INCOMPLETE,
    OK,
    Stopped,
    add_budget_arguments,
    budget_of,
    exit_status,
    limit_z3_memory,
    why_stopped,
)
from raftspec.commands._estimate import refuse_if_symbolic_too_large
from raftspec.protocol import Protocol
from raftspec.spec.lemmas import LEMMAS, SHIPPED
from raftspec.spec.model import default_model_path, load_model

HELP = f"""\
Prove that an invariant holds in EVERY reachable state of a bounded model, at any depth:
  base  it holds (with its lemmas) on every path of up to K states from the initial state;
  step  for every action, K consecutive in-bounds states satisfying it (and the lemmas) step
        only to states satisfying it (and the lemmas).
The hypothesis always includes the encoding's domain and type_ok. If an action breaks it, the
counterexample to induction (CTI) is shown: the state(s) before and the state after. A CTI need
not be reachable: add a lemma that excludes it (--with), or raise --k.

Lemmas: --with shipped  (the set shipped for the invariant: {', '.join(sorted(SHIPPED))})
        --with NAME     (any invariant or lemma: {', '.join(LEMMAS)})

Budgets: --time-limit (checked after each action) and --max-memory; when one runs out, or on
Ctrl-C, the actions checked so far are reported and the exit status is 3 (nothing proved).

""" + exit_status("the base case fails or the invariant is not inductive; 0 = proved",
                  '; --json: "complete": false, "checked_actions", "stopped"') + "\n"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "induct", help="prove an invariant by (k-)induction with Z3", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", nargs="?", type=Path,
                        help=f"model file (default: the bundled {default_model_path().name})")
    parser.add_argument("--invariant", required=True, metavar="NAME",
                        help="the invariant to prove (e.g. election_safety, log_matching)")
    parser.add_argument("--with", dest="lemmas", action="append", default=[], metavar="LEMMA",
                        help="assume and prove this lemma too (repeatable; 'shipped' = the "
                        "shipped set for the invariant)")
    parser.add_argument("--k", type=int, default=1, metavar="K",
                        help="k-induction: assume the hypothesis on K consecutive states "
                        "(default 1: plain induction)")
    parser.add_argument("--json", action="store_true",
                        help="print exactly one JSON object (for scripts and CI)")
    parser.add_argument("--quiet", action="store_true", help="no per-action progress lines")
    add_budget_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    budget = budget_of(args)
    model = load_model(args.model if args.model is not None else default_model_path())
    refuse_if_symbolic_too_large(model.config)
    limit_z3_memory(budget.memory)

    quiet = args.quiet or args.json
    done: list[ActionCheck] = []

    def on_action(c: ActionCheck) -> None:
        done.append(c)
        if not quiet:
            verdict = "preserved" if c.preserved else f"BROKEN ({c.broken})"
            print(f"  {c.action:<30} {verdict:<40} {c.seconds:6.2f} s", file=sys.stderr,
                  flush=True)
        if c.preserved and (why := budget.exceeded()):
            raise Stopped(why)

    if not quiet:
        print(f"{model.name}: induction step for {args.invariant} (k={args.k})", file=sys.stderr)
    from raftspec.spec.smt import encode_model

    enc = encode_model(model)
    started = time.perf_counter()
    stopped = None
    try:
        result = induct(enc, args.invariant, args.lemmas, k=args.k, on_action=on_action)
    except (KeyboardInterrupt, Stopped, z3.Z3Exception) as err:
        stopped = why_stopped(err)
        if stopped is None:
            raise
        result = InductionResult(args.invariant, resolve_lemmas(enc, args.invariant, args.lemmas),
                                 args.k, True, None, None, tuple(done),
                                 time.perf_counter() - started)
        if any(not c.preserved for c in done):
            stopped = None            # a finding already: not inductive, whatever came next
    if args.json:
        print(json.dumps(json_report(model.name, result, model.protocol, stopped)))
    else:
        print_summary(model.name, result, model.protocol, stopped)
    if stopped is not None:
        return INCOMPLETE
    return OK if result.proved else FINDING


def json_report(name: str, r: InductionResult, protocol: Protocol,
                stopped: str | None = None) -> dict:
    """verdict: proved, base_fails, not_inductive, or incomplete (``stopped`` says why;
    ``checked_actions`` how far it got: nothing is proved then)."""
    broken = [c for c in r.actions if not c.preserved]
    return {
        "model": name,
        "invariant": r.invariant,
        "lemmas": list(r.lemmas),
        "k": r.k,
        "verdict": ("incomplete" if stopped else "proved" if r.proved
                    else "base_fails" if not r.base_ok else "not_inductive"),
        "complete": stopped is None,
        "stopped": stopped,
        "checked_actions": len(r.actions),
        "base_violated": r.base_violated,
        "base_counterexample": (counterexample_json(r.base_trace, protocol) if r.base_trace
                                else None),
        "actions": [{"action": c.action, "preserved": c.preserved, "broken": c.broken,
                     "seconds": round(c.seconds, 4)} for c in r.actions],
        "cti": ({"action": broken[0].action, "broken": broken[0].broken,
                 "states": counterexample_json(broken[0].cti, protocol)} if broken and broken[0].cti
                else None),
        "seconds": round(r.seconds, 4),
    }


def print_summary(name: str, r: InductionResult, protocol: Protocol,
                  stopped: str | None = None) -> None:
    hyp = ", ".join(("domain", "type_ok", *r.lemmas)) if r.lemmas else "domain, type_ok"
    if not r.base_ok:
        print(f"{name}: base case fails: {r.base_violated} is violated on a path from Init:")
        assert r.base_trace is not None
        print(counterexample_text(r.base_trace, protocol))
        return
    if stopped is not None:
        print(f"{name}: INCOMPLETE ({stopped}): nothing proved; {len(r.actions)} action(s) "
              f"checked, all preserve {r.invariant} ({r.seconds:.1f} s)")
        return
    if r.proved:
        print(f"{name}: {r.invariant} is {'inductive' if r.k == 1 else f'{r.k}-inductive'} "
              f"with {hyp}: it holds in every reachable state within the bounds, at any depth "
              f"({len(r.actions)} actions, {r.seconds:.1f} s)")
        return
    broken = [c for c in r.actions if not c.preserved]
    print(f"{name}: {r.invariant} with {hyp} is NOT {r.k}-inductive: "
          f"{', '.join(c.action for c in broken)} can break it.")
    first = broken[0]
    assert first.cti is not None
    print(f"Counterexample to induction: {first.action} breaks {first.broken}.")
    print(f"(The first {r.k} state(s) satisfy the hypothesis but need not be reachable.)")
    for number, action, lines in counterexample_rows(first.cti, protocol):
        print(f"{number:>3}  {'pre-state (satisfies the hypothesis)' if number == 1 else action}")
        print("\n".join(f"       {line}" for line in lines))
