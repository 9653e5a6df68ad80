"""`ctrnn-jax compare`: every member of several runs against every other (geometry and fixed-point
topology), with one option per `FixedPointConfig` field for the fixed points."""

import dataclasses
import sys
import time
from pathlib import Path

from ._fixed_points import FIXED_POINTS

# The fixed points of `compare`: 256 candidates by default (`compare_ensembles`' default), and `--seed`
# (today's name) for the candidates' seed.
COMPARE_FIXED_POINTS = dataclasses.replace(
    FIXED_POINTS, defaults={"n_candidates": 256}, flags={**FIXED_POINTS.flags, "seed": ("--fp-seed", "--seed")}
)

# The library's messages name its parameters; the command line's name its options.
_OPTIONS = {
    "`allow_mixed=True`": "--allow-mixed",
    "`solved_only`": "--solved-only",
    "--overwrite (`overwrite=True`)": "--overwrite",
    "output folder": "--out",
}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="compare every member of several runs: geometry and fixed-point topology",
        usage="%(prog)s RUN_DIR [RUN_DIR ...] --out DIR [options]",
        description="Compare every member of every run with every other: SVCCA and CKA of the "
        "test-set activity, fixed-point topology graphs and their distances, MDS "
        "embeddings; writes comparison.json, figures/ and report.md to --out.",
    )
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="run folders (or ensemble.npz files)")
    p.add_argument("--out", type=Path, required=True, help="folder for comparison.json, figures/ and report.md")
    p.add_argument("--allow-mixed", action="store_true", help="compare runs of different tasks (on the first's)")
    p.add_argument("--solved-only", action="store_true", help="only the members that solve the task (eval.json)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a folder that holds another comparison or analysis (its listed files are "
        "removed first); never a run folder",
    )
    COMPARE_FIXED_POINTS.add_to(p, "fixed points of every member at the task's first constant input (FixedPointConfig)")
    p.set_defaults(func=run, prog=p.prog)


def run(args) -> int:
    from ..analysis._compare import compare_runs

    config = COMPARE_FIXED_POINTS.build(args)
    from ..io._lock import lock_outputs
    from ..io._outputs import check_writable_folder

    t0 = time.perf_counter()
    try:
        with lock_outputs(folders=[check_writable_folder(args.out, "--out")], what=args.prog):
            report = compare_runs(
                args.runs,
                args.out,
                allow_mixed=args.allow_mixed,
                solved_only=args.solved_only,
                config=config,
                log=lambda m: print(m, file=sys.stderr),
                overwrite=args.overwrite,
            )
    except (ValueError, FileExistsError, NotADirectoryError, PermissionError) as e:
        message = str(e)
        for parameter, option in _OPTIONS.items():
            message = message.replace(parameter, option)
        raise type(e)(message) from e
    print(f"report: {report}  ({time.perf_counter() - t0:.0f} s)")
    return 0
