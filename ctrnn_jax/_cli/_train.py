"""`ctrnn-jax train` (an ensemble into a run folder) and `ctrnn-jax flipflop` (the main job: train,
evaluate, fixed points, figures). Every field of `EnsembleConfig`, `TrainConfig` and `FlipFlopConfig`
is an option; per-member values are comma-separated (`--lr 1e-2,3e-3,...`, one per member)."""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from ..dynamics._limits import check_fixed_point_memory
from ..tasks._flipflop import FlipFlopConfig
from ..training._ensemble import CTRNN_ONLY, EnsembleConfig, cell_class
from ..training._train import DEFAULT_STOP_MARGIN, TrainConfig
from ._analyze import run_analysis
from ._fixed_points import FIXED_POINTS, add_fixed_point_options, fixed_point_stage
from ._options import ConfigOptions, finite_float, format_value
from ._tasks import add_task_option, make_task

# The run's config groups; `--members`, `--lr`, ... where an option is not `--field-name`.
ENSEMBLE = ConfigOptions(EnsembleConfig, "ensemble", shown_defaults={"inputs": "the task's", "outputs": "the task's"})
TRAIN = ConfigOptions(
    TrainConfig,
    "train",
    flags={
        "batch_size": ("--batch",),
        "learning_rate": ("--lr",),
        "noise_std": ("--rec-noise-std",),
        "weight_l2": ("--weight-l2", "--l2"),
    },
)
TASK = ConfigOptions(FlipFlopConfig, "task", flags={"noise_std": ("--input-noise-std",)})
GROUPS = {"ensemble": ENSEMBLE, "train": TRAIN, "task": TASK}

PRESETS = {
    "default": {},
    # The paper's published code (shared/paper/PARAMETERS.md): Keras SimpleRNN, N=400, no recurrent
    # bias, Adam lr 1e-4 with decay 1e-4, batch 128, 30050 series, 20 epochs (4700 steps), no clipping.
    "paper": {
        ("ensemble", "members"): 16,
        ("ensemble", "units"): 400,
        ("ensemble", "alpha"): 1.0,
        ("train", "steps"): 4700,
        ("train", "batch_size"): 128,
        ("train", "learning_rate"): 1e-4,
        ("train", "lr_decay"): 1e-4,
        ("train", "clip_norm"): None,
        ("train", "train_bias"): False,
        ("train", "dataset_size"): 30050,
        ("train", "steps_per_call"): 100,
        ("train", "stop_mse"): None,
        ("train", "restart_after"): None,
        ("train", "adam_b2"): 0.999,
    },
}

DEFAULT_TASK = FlipFlopConfig.name  # the task of `train` and `flipflop` without --task


def _shown_train_defaults() -> dict[str, str]:
    """`--help`'s default of each `TrainConfig` field that a registered task changes (`train_defaults()`): the
    default task's value, then the other tasks' where they differ (what a run really uses; config.json records
    it)."""
    from ..tasks._tasks import TASKS

    base = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    per_task = {}
    for name, cls in TASKS.items():
        try:
            per_task[name] = cls().train_defaults()
        except TypeError:  # a task that needs arguments (neurogym:ENV_ID) says its defaults in --task's help
            continue
    shown = {}
    for field in base:
        if not any(field in d for d in per_task.values()):
            continue
        main = per_task[DEFAULT_TASK].get(field, base[field])
        others: dict[str, list[str]] = {}
        for name, d in per_task.items():
            if name != DEFAULT_TASK and (v := d.get(field, base[field])) not in (main, base[field]):
                others.setdefault(format_value(v), []).append(name)
        shown[field] = (
            f"{format_value(main)} for {DEFAULT_TASK}"
            + "".join(f"; {v} for {', '.join(names)}" for v, names in others.items())
            + (f"; {format_value(base[field])} for other tasks" if main != base[field] else "")
        )
    return shown


TRAIN = dataclasses.replace(
    TRAIN,
    shown_defaults={
        **_shown_train_defaults(),
        "stop_margin": f"{DEFAULT_STOP_MARGIN:g} where --stop-mse is the task's own (flipflop), else 0",
    },
)
GROUPS["train"] = TRAIN


def add_config_options(parser) -> None:
    """One option per config field (default None: unset, the preset or dataclass default applies), the
    task choice and the run options."""
    ENSEMBLE.add_to(parser, "ensemble options (EnsembleConfig)")
    TRAIN.add_to(parser, "training options (TrainConfig)")
    TASK.add_to(parser, "flip-flop options (FlipFlopConfig; for --task flipflop only)")
    g = parser.add_argument_group("task choice")
    add_task_option(
        g,
        default=None,
        help_="the task (default: flipflop; the flip-flop options above apply to it only, and it trains to "
        f"criterion by default: --stop-mse 0.02 --stop-margin {DEFAULT_STOP_MARGIN:g} (held-out "
        f"MSE < {0.02 * (1 - DEFAULT_STOP_MARGIN):g}; the margin applies when --stop-mse is the "
        "task's) --restart-after 500 (with --adam-b2 0.95), off "
        "with --stop-mse none --restart-after none; the decision and memory tasks default to "
        "--lr 3e-3; neurogym:ENV_ID, "
        "a NeuroGym environment, to --dataset-size 8192)",
    )
    g.add_argument(
        "--task-opt",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a field of the chosen task's config, e.g. --task-opt noise_std=0.3 (repeatable); for "
        "neurogym:ENV_ID an option of the environment, e.g. --task-opt dt=50",
    )
    g = parser.add_argument_group("run options")
    g.add_argument(
        "--threshold",
        type=finite_float,
        metavar="X",
        default=None,
        help="success threshold on the task's metric (default: the task's own: test MSE < 0.02 for "
        "flipflop, accuracy >= success_accuracy for the decision, memory and neurogym tasks)",
    )
    g.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints (default: 500)")
    g.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default="default",
        help="a named set of defaults; explicit options override it (paper = the published code)",
    )
    g.add_argument(
        "--progress",
        choices=("bar", "text", "none", "tensorboard"),
        default="bar",
        help="progress display; tensorboard: a bar, and TensorBoard event files in RUN/tensorboard "
        "(tensorboard --logdir RUN/tensorboard; needs pip install 'ctrnn-ensembles[tensorboard]')",
    )


def config_from_args(args):
    """`(RunConfig, explicit)` from parsed options: dataclass defaults < task defaults < preset < explicit
    options. `explicit` is `{group: {field: value}}`, what was given on the command line."""
    from ..io._run_config import RunConfig

    task_name = args.task or DEFAULT_TASK
    explicit = {group: spec.explicit(args) for group, spec in GROUPS.items()}
    task = make_task(task_name, args.task_opt, explicit["task"], {k: TASK.flag(k) for k in explicit["task"]})
    own = {("train", name): value for name, value in task.train_defaults().items()}  # the task's own defaults
    preset = {**own, **PRESETS[args.preset]}
    kwargs = {
        group: {name: value for (g, name), value in preset.items() if g == group} | explicit[group] for group in GROUPS
    }
    train = kwargs["train"]
    if (
        train.get("stop_mse") is not None
        and "stop_margin" not in train
        and "stop_mse" not in explicit["train"]
        and ("train", "stop_mse") not in PRESETS[args.preset]
    ):
        # the task's own criterion (its success threshold): trained to a margin below it, not to its edge
        train["stop_margin"] = DEFAULT_STOP_MARGIN
    if kwargs["ensemble"].get("cell", "ctrnn") != "ctrnn":  # a preset's CTRNN-only values do not apply
        for name in CTRNN_ONLY:
            if name not in explicit["ensemble"]:
                kwargs["ensemble"].pop(name, None)
    # the task's sizes unless given
    ensemble = {"inputs": task.n_inputs, "outputs": task.n_outputs, **kwargs["ensemble"]}
    run = {name: getattr(args, name) for name in ("threshold", "checkpoint_every") if getattr(args, name) is not None}
    return RunConfig(
        ensemble=EnsembleConfig(**ensemble), train=TrainConfig(**kwargs["train"]), task=task, **run
    ), explicit


def _progress(name: str, out: Path):
    from ..training._progress import NoProgress, TextProgress, TqdmProgress

    if name == "tensorboard":
        from ..training._tensorboard import TensorBoardProgress

        return TensorBoardProgress(out / "tensorboard", display=TqdmProgress())
    return {"bar": TqdmProgress, "text": TextProgress, "none": NoProgress}[name]()


def add_parsers(sub) -> None:
    for name, help_, func in (
        ("train", "train an ensemble into a run folder", run_train),
        (
            "flipflop",
            "the main job: train the default flip-flop ensemble, evaluate, find the fixed points, make every figure",
            run_flipflop,
        ),
    ):
        p = sub.add_parser(name, help=help_, description=help_, usage="%(prog)s [--out DIR | --resume DIR] [options]")
        p.add_argument("--out", type=Path, default=None, help="run folder to create (default: runs/flipflop)")
        p.add_argument(
            "--resume",
            type=Path,
            default=None,
            metavar="DIR",
            help="continue the run in DIR from its checkpoint (optionally with a larger --steps)",
        )
        p.add_argument(
            "--overwrite",
            action="store_true",
            help="let a new run replace the run or run-folder files already in --out (removed before "
            "training starts); without it such a folder is refused",
        )
        add_config_options(p)
        if func is run_flipflop:  # the main job: the fixed-point stage and the analysis follow training
            g = add_fixed_point_options(p, title="fixed-point stage (FixedPointConfig)")
            g.add_argument(
                "--fixed-points",
                action=argparse.BooleanOptionalAction,
                default=True,
                help="after training, find every member's fixed points and write fixed_points.npz "
                "(and, for a task with memory states, cube.json) into the run folder",
            )
            p.add_argument(
                "--analyze",
                action=argparse.BooleanOptionalAction,
                default=True,
                help="after the fixed points, make every figure and report.md",
            )
        p.set_defaults(func=func, prog=p.prog)


def _config(args):
    """The run's config: from the options, or (`--resume DIR`) the stored one with, at most, new `--steps`."""
    from ..io._run_config import read_config

    if args.resume is not None and args.out is not None and args.out != args.resume:
        raise ValueError("give either --out (new run) or --resume DIR, not both")
    if args.resume is None:
        return config_from_args(args)[0]
    explicit = {group: spec.explicit(args) for group, spec in GROUPS.items()}
    given = sorted(GROUPS[g].flag(k) for g in explicit for k in explicit[g] if (g, k) != ("train", "steps"))
    given += [
        flag
        for flag, value in (
            ("--task", args.task),
            ("--task-opt", args.task_opt or None),
            ("--threshold", args.threshold),
            ("--checkpoint-every", args.checkpoint_every),
            ("--preset", None if args.preset == "default" else args.preset),
            ("--overwrite", args.overwrite or None),
        )
        if value is not None
    ]
    if given:
        raise ValueError(
            f"--resume takes its settings from {args.resume}/config.json; only --steps may be given "
            f"(got {', '.join(given)})"
        )
    stored = read_config(args.resume)
    steps = explicit["train"].get("steps", stored.train.steps)
    return dataclasses.replace(stored, train=dataclasses.replace(stored.train, steps=steps))


def _out(args) -> Path:
    return args.resume if args.resume is not None else (args.out or Path("runs/flipflop"))


def _locked(args):
    """The run folder's lock, taken once for the whole command (before any work; `train_run` takes it again)."""
    from ..io._lock import lock_outputs
    from ..io._outputs import check_writable_folder

    if args.resume is not None and args.out is not None and args.out != args.resume:
        raise ValueError("give either --out (new run) or --resume DIR, not both")
    return lock_outputs(
        folders=[check_writable_folder(_out(args), "--resume" if args.resume else "--out")],
        what=args.prog,
        log=lambda m: print(m, file=sys.stderr),
    )


def _train(args, config) -> Path:
    from ..io._eval import format_table
    from ..io._run import train_run

    out = _out(args)
    result = train_run(
        out,
        config,
        resume=args.resume is not None,
        overwrite=args.overwrite,
        progress=_progress(args.progress, out),
        log=lambda m: print(m, file=sys.stderr),
    )
    print(format_table(result))
    return out


def run_train(args) -> int:
    t0 = time.perf_counter()
    with _locked(args):
        out = _train(args, _config(args))
    print(f"run folder: {out}  (wall time {time.perf_counter() - t0:.0f} s)")
    return 0


def run_flipflop(args) -> int:
    with _locked(args):  # train, fixed points and analysis under one lock
        return _run_flipflop(args)


def _run_flipflop(args) -> int:
    from ..dynamics._cube import has_memory_states
    from ..io._fixed_point_files import FIXED_POINTS as FIXED_POINTS_FILE
    from ..io._outputs import CUBE
    from ..io._serialisation import load_npz
    from ..training._distributed import is_main_process

    config = _config(args)
    fixed_points = FIXED_POINTS.build(args)  # every stage's options checked before training
    stage = args.fixed_points
    given = sorted(FIXED_POINTS.flag(k) for k in FIXED_POINTS.explicit(args))
    given += ["--input"] if args.input is not None else []
    if given and not stage:
        raise ValueError(
            f"{', '.join(given)}: fixed-point options, but the fixed-point stage does not run (--no-fixed-points)"
        )
    if args.input is not None and len(args.input) != config.task.n_inputs:
        raise ValueError(
            f"--input: {len(args.input)} value(s), but the {config.task.name} task has "
            f"{config.task.n_inputs} input(s); give {config.task.n_inputs} comma-separated numbers."
        )
    if stage:  # the search's memory estimate, before training (not after it)
        check_fixed_point_memory(
            config.ensemble.members,
            cell_class(config.ensemble.cell).state_blocks * config.ensemble.units,
            fixed_points,
            trials=fixed_points.n_trials,
            length=config.task.length,
        )
    t0 = time.perf_counter()
    out = _train(args, config)
    if stage:
        cube = out / CUBE if has_memory_states(config.task) else None
        fixed_point_stage(
            load_npz(out / "ensemble.npz"),
            out / FIXED_POINTS_FILE,
            config.task,
            fixed_points,
            inputs=args.input,
            cube_json=cube,
        )
    if args.analyze and is_main_process():  # process 0's figures and report
        run_analysis(out, None, 0)
    print(f"run folder: {out}  (wall time {time.perf_counter() - t0:.0f} s)")
    return 0
