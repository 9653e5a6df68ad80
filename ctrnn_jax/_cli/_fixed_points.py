"""`ctrnn-jax fixed-points`: every member's fixed points of an ensemble.npz or run folder, with one option
per `FixedPointConfig` field; also the fixed-point stage of `ctrnn-jax flipflop`."""

import sys
import time
from pathlib import Path

from ..dynamics._config import FixedPointConfig
from ._options import ConfigOptions
from ._tasks import add_bare_task_options, constant_input, task_for

# FixedPointConfig's options, shared by `fixed-points` and `flipflop`. On `flipflop`, `--seed` and the
# learning rates are training's, so the fixed-point ones are `--fp-...`; today's names stay as aliases.
FIXED_POINTS = ConfigOptions(
    FixedPointConfig,
    "fixed_points",
    flags={
        "n_candidates": ("--n-candidates", "--candidates"),
        "noise_std": ("--noise-std", "--noise"),
        "tol_q": ("--tol-q", "--tol"),
        "learning_rate": ("--fp-learning-rate",),
        "final_learning_rate": ("--fp-final-learning-rate",),
        "seed": ("--fp-seed",),
    },
)


def add_fixed_point_options(
    parser, spec: ConfigOptions = FIXED_POINTS, title: str = "fixed-point search (FixedPointConfig)"
):
    """One option per `FixedPointConfig` field, and `--input`; returns the group."""
    group = spec.add_to(parser, title)
    group.add_argument(
        "--input",
        type=constant_input,
        default=None,
        metavar="X1,X2,...",
        help="constant input at which to find fixed points (not a FixedPointConfig field; default: "
        "the task's constant inputs, zeros for the flip-flop's memory states)",
    )
    return group


def fixed_point_stage(
    ensemble,
    out_npz: Path,
    task,
    config: FixedPointConfig,
    *,
    inputs=None,
    cube_json: Path | None = None,
    sources=(),
    overwrite: bool = False,
) -> None:
    """Every member's fixed points (`io.write_fixed_points`, any task or none, any cell), written to
    `out_npz` (and, for a task with memory states, the cube analysis to `cube_json`); prints the cube
    table, or each constant input's points per member."""
    import numpy as np

    from ..dynamics._cube import format_cube_table, has_memory_states
    from ..io._fixed_point_files import write_fixed_points

    if cube_json is not None and not has_memory_states(task):
        raise ValueError(
            f"--cube-json: only a task with memory states (the flip-flop) has a cube analysis; "
            f"this is {'the ' + task.name + ' task' if task is not None else 'a network without a task'}"
        )
    t0 = time.perf_counter()
    try:
        found, per_member, _ = write_fixed_points(
            ensemble,
            out_npz,
            task=task,
            inputs=inputs,
            config=config,
            cube_json=cube_json,
            log=lambda m: print(m, file=sys.stderr),
            sources=sources,
            overwrite=overwrite,
        )
    except (ValueError, FileExistsError) as e:  # the library names its parameters; here, the options
        message = str(e).replace("`out_npz`", "--out").replace("`cube_json`", "--cube-json")
        raise type(e)(message.replace(" (`overwrite=True`)", "")) from None
    if per_member is not None:
        print(format_cube_table(per_member))
    for i, fps in enumerate(found):
        path = out_npz if len(found) == 1 else out_npz.with_name(f"{out_npz.stem}_{i}{out_npz.suffix}")
        print(f"input {np.round(np.asarray(fps.inputs)[0], 4).tolist()}: fixed points written to {path}")
        if per_member is None:
            for row in fps.counts():
                print(
                    f"  member {row['member']}: {row['points']} points, {row['stable']} stable, saddles by index "
                    f"{row['saddles'] or '{}'}, {row['slow']} slow points"
                )
    print(
        (f"cube analysis written to {cube_json}  " if cube_json is not None else "")
        + f"(fixed points: {time.perf_counter() - t0:.0f} s)"
    )


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fixed-points",
        help="find the fixed points of every member of an ensemble.npz",
        usage="%(prog)s PATH [--out FILE] [options]",
        description="Find every member's fixed points (at the task's constant inputs, or --input), "
        "linearize, and summarise them; on the flip-flop also the cube of memory states "
        "(--cube-json): stable points, corners recovered, saddles.",
    )
    p.add_argument("path", type=Path, help="an ensemble.npz (interchange format) or a run folder")
    p.add_argument("--out", type=Path, default=Path("fixed_points.npz"), help="output .npz (default: fixed_points.npz)")
    p.add_argument(
        "--cube-json",
        type=Path,
        default=None,
        help="also write the cube analysis of the memory states (the flip-flop's) as JSON here",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out/--cube-json file of another kind or another network (never the input)",
    )
    add_fixed_point_options(p)
    add_bare_task_options(p)
    p.set_defaults(func=run, prog=p.prog)


def run(args) -> int:
    from ..io._outputs import check_writable_file
    from ..io._run import load_run_ensemble

    config = FIXED_POINTS.build(args)
    from ..io._lock import lock_outputs

    for option, path in (("--out", args.out), ("--cube-json", args.cube_json)):
        if path is not None:
            check_writable_file(path, option)
    with lock_outputs(files=[args.out, args.cube_json], what=args.prog, log=lambda m: print(m, file=sys.stderr)):
        ensemble, stored = load_run_ensemble(args.path)
        task = task_for(args, ensemble, stored)  # None: a bare .npz that fits no task (probe trials at --input)
        fixed_point_stage(
            ensemble,
            args.out,
            task,
            config,
            inputs=args.input,
            cube_json=args.cube_json,
            sources=[args.path],
            overwrite=args.overwrite,
        )
    return 0
