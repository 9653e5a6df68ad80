"""`ctrnn-jax analyze`: every figure and report.md for a run folder or an ensemble.npz; also the last stage
of `ctrnn-jax flipflop`."""

import sys
import time
from pathlib import Path

from ._fixed_points import FIXED_POINTS, add_fixed_point_options
from ._tasks import add_bare_task_options, task_for


def add_parser(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="make every figure and report.md for a run folder or ensemble.npz",
        description="Make every figure of the paper (PNG + PDF), the robustness sweep and the "
        "comparison of realizations, and write report.md.",
    )
    p.add_argument("path", type=Path, help="a run folder or an ensemble.npz file")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write report.md and figures/ (default: the run folder, or NAME_report/ next to an .npz)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for the sampled trials (default: 0)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a folder that holds another network's analysis, a comparison or loose result "
        "files (their listed files are removed first); never another network's run folder",
    )
    add_fixed_point_options(p)
    add_bare_task_options(p)
    p.set_defaults(func=run, prog=p.prog)


def run_analysis(path, out, seed: int, *, task=None, inputs=None, fp_config=None, overwrite: bool = False) -> None:
    """`analyze_run`, timed: the path of report.md on stdout, progress on stderr."""
    from ..analysis._report import analyze_run
    from ..io._lock import lock_outputs
    from ..io._outputs import check_writable_folder

    path = Path(path)
    folder = out if out is not None else (path if path.is_dir() else path.with_name(path.stem + "_report"))
    t0 = time.perf_counter()

    def log(m):
        print(m, file=sys.stderr)

    with lock_outputs(folders=[check_writable_folder(folder, "--out")], what="ctrnn-jax analyze", log=log):
        report = analyze_run(
            path, out_dir=out, seed=seed, log=log, task=task, inputs=inputs, fp_config=fp_config, overwrite=overwrite
        )
    print(f"report: {report}  ({time.perf_counter() - t0:.0f} s)")


def run(args) -> int:
    from ..io._run import load_run_ensemble
    from ..training._distributed import is_main_process

    if not is_main_process():  # a distributed run: process 0 makes the figures and the report
        return 0
    from ..io._outputs import check_writable_folder

    if args.out is not None:
        check_writable_folder(args.out, "--out")
    ensemble, config = load_run_ensemble(args.path)
    task = task_for(args, ensemble, config)  # (for a run folder: its own, and rejects --task)
    explicit = FIXED_POINTS.explicit(args)  # the FixedPointConfig given, else analyze_run's default
    run_analysis(
        args.path,
        args.out,
        args.seed,
        task=task if config is None else None,
        inputs=args.input,
        fp_config=FIXED_POINTS.build(args) if explicit else None,
        overwrite=args.overwrite,
    )
    return 0
