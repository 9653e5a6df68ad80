"""The `ctrnn-jax` command line: `train`, `evaluate`, `fixed-points`, `analyze`, `flipflop` (the main job),
`import-keras`, `compare`.

Every field of `EnsembleConfig`, `TrainConfig` and `FlipFlopConfig` is an option. Per-member values
are comma-separated (`--lr 1e-2,3e-3,...`, one per member). Bad arguments exit with status 2 and a
one-line message.
"""

import argparse
import dataclasses
import os
import sys
import time
import types
import typing
from pathlib import Path

from .tasks._flipflop import FlipFlopConfig
from .tasks._tasks import TASKS
from .training._distributed import is_main_process
from .training._ensemble import EnsembleConfig
from .training._train import TrainConfig

TASK_NAMES = tuple("neurogym:ENV_ID" if name == "neurogym" else name for name in TASKS)

# field -> option name, where it is not simply `--field-name`
FLAGS = {
    ("ensemble", "members"): "--members",
    ("train", "batch_size"): "--batch",
    ("train", "learning_rate"): "--lr",
    ("train", "noise_std"): "--rec-noise-std",
    ("task", "noise_std"): "--input-noise-std",
    ("task", "length"): "--length",
    ("task", "n_bits"): "--n-bits",
}

HELP = {
    ("ensemble", "members"): "number of networks K trained at once",
    ("ensemble", "units"): "units per network N",
    ("ensemble", "inputs"): "inputs per network M (default: the task's)",
    ("ensemble", "outputs"): "outputs per network O (default: the task's)",
    ("ensemble", "alpha"): "dt/tau in (0, 1]; 1 is Keras SimpleRNN (per-member list allowed)",
    ("ensemble", "activation"): "nonlinearity: tanh, relu, softplus, sigmoid, linear",
    ("ensemble", "gain"): "initial recurrent gain g (per-member list allowed)",
    ("ensemble", "recurrent_init"): "orthogonal or normal (variance g^2/N)",
    ("ensemble", "readout_init"): "glorot_uniform, normal or zeros",
    ("ensemble", "dale"): "Dale's law on W_rec (E/I units, E/I-balanced init), enforced every step",
    ("ensemble", "excitatory_fraction"): "fraction of excitatory units under Dale's law",
    ("ensemble", "rec_density"): "fraction of recurrent connections present (fixed random mask)",
    ("ensemble", "in_density"): "fraction of input connections present (fixed random mask)",
    ("ensemble", "out_density"): "fraction of readout connections present (fixed random mask)",
    ("ensemble", "autapses"): "allow self-connections (--no-autapses zeroes the diagonal of W_rec)",
    ("train", "steps"): "total training steps",
    ("train", "batch_size"): "trials per step and member",
    ("train", "learning_rate"): "Adam learning rate (per-member list allowed)",
    ("train", "lr_decay"): "inverse-time decay: lr_t = lr / (1 + decay*t) (Keras 2 `decay`)",
    ("train", "clip_norm"): "per-member gradient-norm clip; 'none' to disable (per-member list allowed)",
    ("train", "noise_std"): "std of recurrent noise added each step (per-member list allowed)",
    ("train", "shared_batch"): "all members see the same batch",
    ("train", "dataset_size"): "train on a fixed data set of this many series (epochs); 'none' = fresh trials",
    ("train", "steps_per_call"): "training steps per compiled call (progress/checkpoints between calls)",
    ("train", "train_bias"): "train the recurrent bias b",
    ("train", "unroll"): "lax.scan unroll of the time loop",
    ("train", "backprop"): "gradient through the time loop: custom (least memory), checkpoint, autodiff",
    ("train", "precision"): "matmul precision: default (TF32 on NVIDIA GPUs) or highest (full float32)",
    ("train", "rate_l2"): "weight of the L2 penalty on firing rates, mean(h^2)",
    ("train", "weight_l1"): "weight of the L1 penalty on the trained weight matrices",
    ("train", "weight_l2"): "weight of the L2 penalty on the trained weight matrices",
    ("train", "fixed"): "weights kept at their initial values, comma-separated (e.g. W_rec,W_in,b: train the readout only)",
    ("train", "adam_b1"): "Adam beta1",
    ("train", "adam_b2"): "Adam beta2",
    ("train", "adam_eps"): "Adam epsilon",
    ("train", "seed"): "seed for initialization, data and noise",
    ("task", "n_bits"): "flip-flop channels",
    ("task", "length"): "series length T (steps)",
    ("task", "width"): "pulse width (steps)",
    ("task", "delay"): "the target switches this many steps after a pulse ends",
    ("task", "noise_std"): "std of the Gaussian input noise",
    ("task", "amplitude"): "pulse amplitude",
    ("task", "first_onset"): "LOW,HIGH: pulse 1 starts at U{LOW..HIGH-1}",
    ("task", "gaps"): "base gaps between pulses, comma-separated (len+1 pulses)",
    ("task", "gap_jitter"): "each gap is lengthened by U{1..JITTER}",
    ("task", "first_pulse_can_be_zero"): "pulse 1 may be absent (prob. 1/3)",
}

GROUPS = {"ensemble": EnsembleConfig, "train": TrainConfig, "task": FlipFlopConfig}

PRESETS = {
    "default": {},
    # The paper's published code (shared/paper/PARAMETERS.md): Keras SimpleRNN, N=400, no recurrent
    # bias, Adam lr 1e-4 with decay 1e-4, batch 128, 30050 series, 20 epochs (4700 steps), no clipping.
    "paper": {
        ("ensemble", "members"): 16, ("ensemble", "units"): 400, ("ensemble", "alpha"): 1.0,
        ("train", "steps"): 4700, ("train", "batch_size"): 128, ("train", "learning_rate"): 1e-4,
        ("train", "lr_decay"): 1e-4, ("train", "clip_norm"): None, ("train", "train_bias"): False,
        ("train", "dataset_size"): 30050, ("train", "steps_per_call"): 100,
    },
}


# Per-task training defaults (under any preset and explicit option). Measured on 8 members x 2000
# steps, N = 64: at the flip-flop's lr 1e-2, 3 of 8 (dms) and 2 of 8 (context_dm) members stayed at
# chance; at 3e-3 all 8 solved both (experiments/task_gallery.py).
TASK_DEFAULTS = {name: {("train", "learning_rate"): 3e-3}
                 for name in ("perceptual_dm", "context_dm", "dms", "parametric_wm")}
# NeuroGym trials are made on the host, so they train in data-set mode: 8192 trials (1-2 s to make).
TASK_DEFAULTS["neurogym"] = {("train", "dataset_size"): 8192}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit status 2
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def _flag(group: str, name: str) -> str:
    return FLAGS.get((group, name), "--" + name.replace("_", "-"))


def _parse_value(kind, text: str):
    """Parse an option string for a dataclass field of type `kind`."""
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.strip().lower() == "none":
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _parse_value(a, text)
            except (ValueError, TypeError) as e:
                errors.append(str(e))
        raise ValueError(f"invalid value {text!r}")
    if origin is tuple:
        return tuple(_parse_value(args[0], t) for t in text.split(",") if t.strip())
    if kind is bool:
        raise ValueError("boolean")
    if kind is int:
        return int(text)
    if kind is float:
        if "," in text:
            raise ValueError(f"invalid number {text!r}")
        return float(text)
    return text


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per config field, defaulting to None (unset: preset or dataclass default applies)."""
    for group, cls in GROUPS.items():
        g = parser.add_argument_group(f"{group} options")
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            flag = _flag(group, f.name)
            default = f.default
            help_ = HELP.get((group, f.name), "") + f" (default: {default})"
            if hints[f.name] is bool:
                g.add_argument(flag, dest=f"{group}.{f.name}", action=argparse.BooleanOptionalAction,
                               default=None, help=help_)
            else:
                g.add_argument(flag, dest=f"{group}.{f.name}", default=None, metavar=f.name.upper(),
                               help=help_)
    g = parser.add_argument_group("task choice")
    g.add_argument("--task", default="flipflop", metavar="NAME",
                   help=f"the task: {', '.join(TASK_NAMES)} (default: flipflop; the flip-flop options above apply "
                        "to it only; the decision and memory tasks default to --lr 3e-3; neurogym:ENV_ID, a "
                        "NeuroGym environment, to --dataset-size 8192)")
    g.add_argument("--task-opt", action="append", default=[], metavar="FIELD=VALUE",
                   help="a field of the chosen task's config, e.g. --task-opt noise_std=0.3 (repeatable); for "
                        "neurogym:ENV_ID an option of the environment, e.g. --task-opt dt=50")
    g = parser.add_argument_group("run options")
    g.add_argument("--threshold", type=float, default=None, help="success threshold on test MSE (default: 0.02)")
    g.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints (default: 500)")
    g.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="a named set of defaults; explicit options override it (paper = the published code)")
    g.add_argument("--progress", choices=("bar", "text", "none"), default="bar", help="progress display")


def config_from_args(args: argparse.Namespace):
    """Build a `RunConfig` from parsed options: dataclass defaults < preset < explicit options."""
    from .io._run import RunConfig
    preset = {**TASK_DEFAULTS.get(getattr(args, "task", "flipflop").partition(":")[0], {}), **PRESETS[args.preset]}
    kwargs = {g: {} for g in GROUPS}
    for group, cls in GROUPS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            value = getattr(args, f"{group}.{f.name}")
            if value is None:
                if (group, f.name) in preset:
                    kwargs[group][f.name] = preset[(group, f.name)]
                continue
            if isinstance(value, str):
                try:
                    value = _parse_value(hints[f.name], value)
                except ValueError:
                    raise ValueError(f"{_flag(group, f.name)}: invalid value {value!r}") from None
            kwargs[group][f.name] = value
    task = _task_from_args(args, kwargs["task"])
    ensemble = {"inputs": task.n_inputs, "outputs": task.n_outputs, **kwargs["ensemble"]}  # the task's sizes unless given
    run_kwargs = {}
    if args.threshold is not None:
        run_kwargs["threshold"] = args.threshold
    if args.checkpoint_every is not None:
        run_kwargs["checkpoint_every"] = args.checkpoint_every
    return RunConfig(ensemble=EnsembleConfig(**ensemble), train=TrainConfig(**kwargs["train"]),
                     task=task, **run_kwargs), kwargs


def _task_from_args(args, flipflop_fields: dict):
    """The task of `--task NAME` with its `--task-opt FIELD=VALUE` options (and, for the flip-flop,
    its own flags)."""
    from .tasks._tasks import make_task, task_class
    name = getattr(args, "task", "flipflop")
    if name.partition(":")[0] == "neurogym":  # neurogym:ENV_ID; --task-opt KEY=VALUE for the environment
        from .tasks._neurogym import neurogym_task
        if flipflop_fields:
            raise ValueError(f"{', '.join(_flag('task', k) for k in flipflop_fields)}: flip-flop options, but --task "
                             f"is {name}; use --task-opt KEY=VALUE")
        try:
            return neurogym_task(name, getattr(args, "task_opt", []))
        except ImportError as e:  # one line: how to install it
            raise ValueError(str(e)) from None
    cls = task_class(name)
    fields = dict(flipflop_fields) if name == "flipflop" else {}
    if name != "flipflop" and flipflop_fields:
        raise ValueError(f"{', '.join(_flag('task', k) for k in flipflop_fields)}: flip-flop options, but --task is "
                         f"{name}; use --task-opt FIELD=VALUE")
    hints = typing.get_type_hints(cls)
    for opt in getattr(args, "task_opt", []):
        field, sep, text = opt.partition("=")
        if not sep or field not in hints:
            allowed = ", ".join(f.name for f in dataclasses.fields(cls))
            raise ValueError(f"--task-opt {opt!r}: expected FIELD=VALUE with FIELD one of {allowed}")
        try:
            if hints[field] is bool:
                if text.lower() not in ("true", "false"):
                    raise ValueError(text)
                fields[field] = text.lower() == "true"
            else:
                fields[field] = _parse_value(hints[field], text)
        except ValueError:
            raise ValueError(f"--task-opt {field}: invalid value {text!r}") from None
    return make_task(name, **fields)


def _progress(name: str):
    from .training._progress import NoProgress, TextProgress, TqdmProgress
    return {"bar": TqdmProgress, "text": TextProgress, "none": NoProgress}[name]()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ctrnn-jax", description="Train and analyse ensembles of continuous-time RNNs (JAX).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, help_ in (("train", "train an ensemble into a run folder"),
                        ("flipflop", "the main job: train the default flip-flop ensemble, evaluate, summarise")):
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--out", type=Path, default=None, help="run folder to create (default: runs/flipflop)")
        p.add_argument("--resume", type=Path, default=None, metavar="DIR",
                       help="continue the run in DIR from its checkpoint (optionally with a larger --steps)")
        add_config_options(p)
        if name == "flipflop":
            g = p.add_argument_group("fixed-point stage")
            g.add_argument("--fixed-points", action=argparse.BooleanOptionalAction, default=True,
                           help="after training, find every member's fixed points and write fixed_points.npz "
                                "and cube.json into the run folder (default: on)")
            _add_fixed_point_options(g)
            p.add_argument("--analyze", action=argparse.BooleanOptionalAction, default=True,
                           help="after the fixed points, make every figure and report.md (default: on)")
    p = sub.add_parser("fixed-points", help="find the fixed points of every member of an ensemble.npz",
                       description="Find every member's fixed points (zero or --input constant input), linearize, "
                                   "and summarise the flip-flop cube: stable points, corners recovered, saddles.")
    p.add_argument("path", type=Path, help="an ensemble.npz (interchange format) or a run folder")
    p.add_argument("--out", type=Path, default=Path("fixed_points.npz"), help="output .npz (default: fixed_points.npz)")
    p.add_argument("--cube-json", type=Path, default=None, help="also write the cube analysis as JSON here")
    _add_fixed_point_options(p)
    _add_bare_task_options(p)
    p = sub.add_parser("analyze", help="make every figure and report.md for a run folder or ensemble.npz",
                       description="Make every figure of the paper (PNG + PDF), the robustness sweep and the "
                                   "comparison of realizations, and write report.md.")
    p.add_argument("path", type=Path, help="a run folder or an ensemble.npz file")
    p.add_argument("--out", type=Path, default=None,
                   help="where to write report.md and figures/ (default: the run folder, or NAME_report/ next to "
                        "an .npz)")
    p.add_argument("--seed", type=int, default=0, help="seed for the sampled trials (default: 0)")
    p.add_argument("--input", default=None, metavar="X1,X2,...",
                   help="a network without a task: the constant input of its fixed points (default: zeros)")
    _add_bare_task_options(p)
    p = sub.add_parser("compare", help="compare every member of several runs: geometry and fixed-point topology",
                       description="Compare every member of every run with every other: SVCCA and CKA of the "
                                   "test-set activity, fixed-point topology graphs and their distances, MDS "
                                   "embeddings; writes comparison.json, figures/ and report.md to --out.")
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="run folders (or ensemble.npz files)")
    p.add_argument("--out", type=Path, required=True, help="folder for comparison.json, figures/ and report.md")
    p.add_argument("--allow-mixed", action="store_true", help="compare runs of different tasks (on the first's)")
    p.add_argument("--solved-only", action="store_true", help="only the members that solve the task (eval.json)")
    p.add_argument("--candidates", type=int, default=256, help="fixed-point candidates per member (default: 256)")
    p.add_argument("--restarts", type=int, default=2, help="restart rounds of the fixed-point search (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fixed-point candidates (default: 0)")
    p = sub.add_parser("evaluate", help="evaluate a run folder or ensemble.npz on the 8-state test set",
                       description="evaluate a run folder or ensemble.npz on the 8-state test set")
    p.add_argument("path", type=Path, help="a run folder or an ensemble.npz file")
    p.add_argument("--threshold", type=float, default=None, help="success threshold on test MSE (default: 0.02)")
    p.add_argument("--json", type=Path, default=None, help="also write the metrics to this JSON file")
    _add_bare_task_options(p)
    p = sub.add_parser("import-keras", help="read Keras models (SimpleRNN + Dense) into one ensemble.npz",
                       description="Read Keras models, each a SimpleRNN followed by a Dense readout (Keras 2 or 3 "
                                   "whole-model .h5/.hdf5, Keras 3 .keras, or weights-only .weights.h5), into one "
                                   "ensemble.npz (alpha = 1; members in the order given). Needs h5py: "
                                   "pip install 'ctrnn_jax[keras]'.")
    p.add_argument("models", type=Path, nargs="+", metavar="MODEL_FILE", help="Keras model or weights files")
    p.add_argument("--out", type=Path, default=Path("ensemble.npz"), help="output .npz (default: ensemble.npz)")
    p.add_argument("--activation", default=None, choices=("tanh", "relu", "softplus", "sigmoid", "linear"),
                   help="the SimpleRNN's activation for weights-only files (not stored there; default: tanh); "
                        "files with the architecture use their own")
    for name in ("train", "flipflop", "fixed-points", "analyze", "evaluate"):
        _add_distributed_options(sub.choices[name])
    return parser


def _add_distributed_options(p) -> None:
    g = p.add_argument_group("many processes (jax.distributed; see README, Many machines)")
    g.add_argument("--distributed", action="store_true",
                   help="join a distributed run, the cluster detected by JAX (SLURM, Open MPI, TPU pods, ...)")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="process 0's address (sets it by hand)")
    g.add_argument("--num-processes", type=int, default=None, metavar="P", help="number of processes")
    g.add_argument("--process-id", type=int, default=None, metavar="I", help="this process's index, 0..P-1")
    g.add_argument("--dist-timeout", type=int, default=300, metavar="SECONDS",
                   help="every process must have joined within this time, else all end with an error (default: 300)")
    g.add_argument("--heartbeat-timeout", type=int, default=100, metavar="SECONDS",
                   help="a process silent this long is declared dead and the others end (default: 100)")


def _add_bare_task_options(p) -> None:
    g = p.add_argument_group("task of a bare ensemble.npz (a run folder's task is in its config.json)")
    g.add_argument("--task", default=None, metavar="NAME",
                   help=f"the task: {', '.join(TASK_NAMES)}; flipflop takes n_bits = M = O (default: the 3-bit "
                        "flip-flop when M = O = 3, otherwise no task: fixed points at --input)")
    g.add_argument("--task-opt", action="append", default=[], metavar="FIELD=VALUE",
                   help="a field of that task's config, e.g. --task-opt length=500 (repeatable)")


def _add_fixed_point_options(g) -> None:
    g.add_argument("--input", default=None, metavar="X1,X2,...",
                   help="constant input at which to find fixed points (default: zeros, the memory states)")
    g.add_argument("--candidates", type=int, default=1024, help="initial states per member (default: 1024)")
    g.add_argument("--tol", type=float, default=None,
                   help="q tolerance for fixed points (default: 10 machine epsilons of residual per unit)")
    g.add_argument("--noise", type=float, default=0.0, help="std of noise added to the initial states (default: 0)")
    g.add_argument("--restarts", type=int, default=2, help="rounds of restarts from the points found (default: 2)")
    g.add_argument("--fp-seed", type=int, default=0, help="seed of the candidate sampling (default: 0)")
    g.add_argument("--eigvecs", action=argparse.BooleanOptionalAction, default=False,
                   help="also store the Jacobians' eigenvectors (P, N, N complex; large)")


def _fixed_point_options(args, parser) -> dict:
    options = {"n_candidates": args.candidates, "noise_std": args.noise, "restarts": args.restarts,
               "seed": args.fp_seed, "eigvecs": args.eigvecs}
    if args.tol is not None:
        options["tol_q"] = args.tol
    if args.input is not None:
        try:
            options["inputs"] = [float(v) for v in args.input.split(",")]
        except ValueError:
            parser.error(f"--input: expected comma-separated numbers, got {args.input!r}")
    return options


def _run_fixed_points(ensemble, out_npz, cube_json, task, options, parser) -> None:
    from .dynamics._cube import format_cube_table
    from .io._run import fixed_point_stage
    t0 = time.perf_counter()
    try:
        per_member, summary = fixed_point_stage(ensemble, out_npz, cube_json=cube_json, task=task, **options)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    print(format_cube_table(per_member))
    print(f"fixed points written to {out_npz}" + (f", cube analysis to {cube_json}" if cube_json else "")
          + f"  ({time.perf_counter() - t0:.0f} s)")


def _fixed_points(args, parser) -> int:
    from .io._run import load_run_ensemble
    options = _fixed_point_options(args, parser)
    try:
        ensemble, config = load_run_ensemble(args.path)
        task = _task_for(args, ensemble, config)
    except (ValueError, TypeError, FileNotFoundError) as e:
        parser.error(str(e))
    from .analysis._report import is_paper_case
    if task is not None and is_paper_case(ensemble, task):
        _run_fixed_points(ensemble, args.out, args.cube_json, task, options, parser)
        return 0
    # any other task or cell: fixed points at the task's constant inputs (or --input), summarised
    import jax
    import numpy as np

    from .analysis._network_report import network_fixed_points
    from .analysis._task_report import fixed_point_summary, task_fixed_points
    options.pop("eigvecs", None)
    inputs = options.pop("inputs", None)
    options.pop("noise_std", None)
    n_candidates, seed = options.pop("n_candidates"), options.pop("seed")
    try:
        if task is None:  # a bare .npz that fits no task given: candidates from probe trials at --input
            found = network_fixed_points(ensemble, inputs, key=jax.random.key(seed), n_candidates=n_candidates,
                                         **options)
        else:
            found = task_fixed_points(ensemble, task, key=jax.random.key(seed), inputs=inputs,
                                      n_candidates=n_candidates, **options)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    for i, (u, fps) in enumerate(found):
        path = args.out if len(found) == 1 else args.out.with_name(f"{args.out.stem}_{i}{args.out.suffix}")
        if is_main_process():
            fps.to_npz(path)
        print(f"input {np.round(u, 4).tolist()}: fixed points written to {path}")
        for row in fixed_point_summary(fps, fps.n_members):
            print(f"  member {row['member']}: {row['points']} points, {row['stable']} stable, saddles by index "
                  f"{row['saddles'] or '{}'}, {row['slow']} slow points")
    return 0





def _task_for(args, ensemble, config):
    """The task of a run folder (its config.json), or of a bare ensemble.npz: `--task NAME` with its
    `--task-opt`s (the flip-flop's `n_bits` defaults to M), else what the sizes say (`task_for_ensemble`:
    the 3-bit flip-flop when M = O = 3, otherwise None: no task)."""
    from .io._run import task_for_ensemble
    if config is not None:
        if (args.task is not None and args.task != config.task.name) or args.task_opt:
            raise ValueError(f"--task/--task-opt are for a bare ensemble.npz; {args.path} is a run folder of the "
                             f"{config.task.name} task (its config.json)")
        return config.task
    if args.task is None:
        if args.task_opt:
            raise ValueError("--task-opt needs --task NAME")
        return task_for_ensemble(ensemble)
    opts, m = list(args.task_opt), ensemble.W_in.shape[-1]
    if args.task == "flipflop" and m == ensemble.W_out.shape[-2] and \
            not any(opt.partition("=")[0].strip() == "n_bits" for opt in opts):
        opts.append(f"n_bits={m}")
    return task_for_ensemble(ensemble, _task_from_args(argparse.Namespace(task=args.task, task_opt=opts), {}))


def _fitting_tasks(m: int, o: int) -> str:
    """The registered tasks (with their defaults) whose sizes are M inputs and O outputs."""
    from .tasks._tasks import make_task
    names = []
    for name in TASKS:
        try:
            task = make_task(name, n_bits=m) if name == "flipflop" else make_task(name)
        except Exception:  # noqa: BLE001 - a task that needs arguments (e.g. neurogym's env id) is not listed
            continue
        if (task.n_inputs, task.n_outputs) == (m, o):
            names.append(f"flipflop (n_bits = {m})" if name == "flipflop" else name)
    return f"tasks of that size: {', '.join(names)}" if names else "no registered task has that size"


def _run_analysis(path, out, seed, parser, *, task=None, inputs=None) -> None:
    from .analysis._report import analyze_run
    t0 = time.perf_counter()
    try:
        report = analyze_run(path, out_dir=out, seed=seed, log=lambda m: print(m, file=sys.stderr), task=task,
                             inputs=inputs)
    except (ValueError, TypeError, FileNotFoundError) as e:
        parser.error(str(e))
    print(f"report: {report}  ({time.perf_counter() - t0:.0f} s)")


def _compare(args, parser) -> int:
    from .analysis._compare import compare_runs
    t0 = time.perf_counter()
    try:
        report = compare_runs(args.runs, args.out, allow_mixed=args.allow_mixed, solved_only=args.solved_only,
                              seed=args.seed, n_candidates=args.candidates, restarts=args.restarts,
                              log=lambda m: print(m, file=sys.stderr))
    except (ValueError, TypeError, FileNotFoundError) as e:
        parser.error(str(e))
    print(f"report: {report}  ({time.perf_counter() - t0:.0f} s)")
    return 0


def _analyze(args, parser) -> int:
    from .io._run import load_run_ensemble
    if not is_main_process():  # a distributed run: process 0 makes the figures and the report
        return 0
    inputs = None
    try:
        if args.input is not None:
            inputs = [float(v) for v in args.input.split(",")]
    except ValueError:
        parser.error(f"--input: expected comma-separated numbers, got {args.input!r}")
    try:
        ensemble, config = load_run_ensemble(args.path)
        task = _task_for(args, ensemble, config)  # (for a run folder: its own, and rejects --task)
    except (ValueError, TypeError, FileNotFoundError) as e:
        parser.error(str(e))
    _run_analysis(args.path, args.out, args.seed, parser, task=task if config is None else None, inputs=inputs)
    return 0


def _import_keras(args, parser) -> int:
    from .io._keras import load_keras
    from .io._serialisation import save_npz
    try:
        ensemble = load_keras(args.models, activation=args.activation)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as e:
        parser.error(str(e))
    save_npz(ensemble, args.out)
    k, n, m = ensemble.W_in.shape
    print(f"{k} network(s) (M = {m} inputs, N = {n} units, O = {ensemble.W_out.shape[1]} outputs, "
          f"{ensemble.activation}, alpha = 1) written to {args.out}")
    return 0


def _train(args, parser) -> int:
    from .io._run import format_table, read_config, train_run
    if args.resume is not None and args.out is not None and args.out != args.resume:
        parser.error("give either --out (new run) or --resume DIR, not both")
    try:
        config, explicit = config_from_args(args)
        if args.resume is not None:
            stored = read_config(args.resume)
            others = {(g, k) for g in explicit for k in explicit[g]} - {("train", "steps")}
            if others:
                parser.error(f"--resume takes its settings from {args.resume}/config.json; only --steps may be given "
                             f"(got {', '.join(sorted(_flag(g, k) for g, k in others))})")
            steps = explicit["train"].get("steps", stored.train.steps)
            config = dataclasses.replace(stored, train=dataclasses.replace(stored.train, steps=steps))
    except (ValueError, TypeError, FileNotFoundError) as e:
        parser.error(str(e))
    out = args.resume if args.resume is not None else (args.out or Path("runs/flipflop"))
    t0 = time.perf_counter()
    try:
        result = train_run(out, config, resume=args.resume is not None, progress=_progress(args.progress),
                           log=lambda m: print(m, file=sys.stderr))
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        parser.error(str(e))
    print(format_table(result))
    if args.command == "flipflop" and args.fixed_points and config.ensemble.cell == "ctrnn":
        from .io._run import CUBE, FIXED_POINTS
        from .io._serialisation import load_npz
        options = _fixed_point_options(args, parser)
        _run_fixed_points(load_npz(out / "ensemble.npz"), out / FIXED_POINTS, out / CUBE, config.task, options, parser)
    if args.command == "flipflop" and args.analyze and is_main_process():  # process 0's figures and report
        _run_analysis(out, None, 0, parser)
    wall = time.perf_counter() - t0
    print(f"run folder: {out}  (wall time {wall:.0f} s)")
    return 0


def _evaluate(args, parser) -> int:
    from ._files import write_json
    from .io._run import evaluate_run, format_table, load_run_ensemble
    try:
        ensemble, config = load_run_ensemble(args.path)
        from .io._run import RunConfig
        task = _task_for(args, ensemble, config)
        if task is None:
            m, o = ensemble.W_in.shape[-1], ensemble.W_out.shape[-2]
            raise ValueError(f"{args.path}: no run folder, so no task to evaluate on (M = {m} inputs, O = {o} "
                             f"outputs is not the 3-bit flip-flop): give --task NAME ({_fitting_tasks(m, o)})")
        config = config or RunConfig(task=task)
        if args.threshold is not None:
            config = dataclasses.replace(config, threshold=args.threshold)
        result = evaluate_run(ensemble, config)
    except (ValueError, TypeError, FileNotFoundError) as e:
        parser.error(str(e))
    print(format_table(result))
    if args.json is not None and is_main_process():
        write_json(args.json, result)
    return 0


def use_cpu_cores() -> None:
    """Show JAX one CPU device per core, so that the trainer can spread members over the cores.

    Done by the command line (an application), never on library import. Skipped when the user has
    configured the CPU device count, or when the JAX backend is already running.
    """
    if "JAX_NUM_CPU_DEVICES" in os.environ or "host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    try:
        import jax

        jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)
    except Exception:  # noqa: BLE001 - older JAX without the option, or backend already initialised
        pass


def main(argv=None) -> int:
    use_cpu_cores()
    parser = build_parser()
    args = parser.parse_args(argv)
    sub = parser._subparsers._group_actions[0].choices[args.command]
    if _start_distributed(args, sub):
        return _distributed(lambda: _command(args, sub))
    return _command(args, sub)


def _start_distributed(args, parser) -> bool:
    """Join the distributed run asked for by `--distributed` or `--coordinator/--num-processes/--process-id`
    (with gloo collectives for CPUs); False when none was asked for. Only process 0 prints to stdout."""
    manual = (getattr(args, "coordinator", None), getattr(args, "num_processes", None),
              getattr(args, "process_id", None))
    if not getattr(args, "distributed", False) and all(v is None for v in manual):
        return False
    from .training._distributed import DistributedError, init_distributed
    try:
        init_distributed(*manual, timeout=args.dist_timeout, heartbeat_timeout=args.heartbeat_timeout)
    except (ValueError, TypeError, RuntimeError) as e:
        hint = "" if any(v is not None for v in manual) else \
            " (no cluster detected: give --coordinator HOST:PORT --num-processes P --process-id I)"
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if isinstance(e, DistributedError):  # every process knows: end now, skipping JAX's shutdown barrier
            sys.stderr.write(f"{parser.prog}: error: {message}\n")
            sys.stderr.flush()
            os._exit(2)
        parser.error(f"--distributed: {message}{hint}" if hint else message)
    if not is_main_process():  # one report, process 0's (also silences what libraries print)
        sys.stdout.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return True


def _distributed(command) -> int:
    """Run `command()` in a distributed run: an error (e.g. a collective failing because another process
    died) ends this process at once with one line, without waiting at JAX's shutdown barrier."""
    try:
        return command()
    except Exception as e:  # noqa: BLE001 - any failure ends the process with one line
        import jax
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        sys.stdout.flush()
        sys.stderr.write(f"ctrnn-jax: error: process {jax.process_index()}: the distributed run failed "
                         f"({type(e).__name__}: {message}); files already written are intact\n")
        sys.stderr.flush()
        os._exit(1)


def _command(args, sub) -> int:
    if args.command == "compare":
        return _compare(args, sub)
    if args.command in ("train", "flipflop"):
        return _train(args, sub)
    if args.command == "fixed-points":
        return _fixed_points(args, sub)
    if args.command == "analyze":
        return _analyze(args, sub)
    if args.command == "import-keras":
        return _import_keras(args, sub)
    return _evaluate(args, sub)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
