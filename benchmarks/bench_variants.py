"""The property matrix of every shipped variant model (``spec/models/variants/``), including
the deep one CI does not run (``disruption_prevote_checkquorum.yaml``: ~716,000 distinct states,
about 15 minutes on a loaded 2-core machine).

    python benchmarks/bench_variants.py [--json] [MODEL ...]

It is ``raftspec matrix`` over the models; the README's matrix section was measured this way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from raftspec.commands.matrix import check_model, matrix_json, matrix_text
from raftspec.spec.model import MODELS_DIR, load_model

DEFAULT = sorted((MODELS_DIR / "variants").glob("*.yaml"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", type=Path, default=DEFAULT)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for path in args.models:
        rows.append(check_model(load_model(path)))
        print(f"{path.name}: {rows[-1].seconds:.1f} s", file=sys.stderr, flush=True)
    print(json.dumps(matrix_json(rows)) if args.json else matrix_text(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
