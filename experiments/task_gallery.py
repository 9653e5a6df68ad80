"""Train a small ensemble on every task and analyse it: the task gallery (issue #6).

For each registered task (`ctrnn_jax.tasks._tasks.TASKS`) this trains an ensemble into `OUT/<task>/`
(a normal run folder), runs `ctrnn-jax analyze` on it (test-set figure, fixed points at the task's
constant inputs), and writes `OUT/gallery.json` and `OUT/gallery.md`: per task the success rate,
the headline metric of every member, the fixed-point summary and the wall time.

    python experiments/task_gallery.py --out runs/gallery                 # CPU-sized (minutes)
    python experiments/task_gallery.py --out runs/gallery --preset gpu    # larger ensembles, longer

Options: `--tasks NAME ...` (default all), `--cell ctrnn|gru|lstm`, `--members`, `--units`, `--seed`,
and the CTRNN's constraints: `--dale`, `--rec-density D`, `--no-autapses`, `--fixed W_rec W_in b`
(train the readout only), `--rate-l2 L`.

NeuroGym section (needs `pip install '.[neurogym]'`): `--neurogym` trains the NeuroGym environments
that train on the CPU preset (`NEUROGYM` below), `--neurogym ENV_ID ...` the ones given, each as
`--task neurogym:ENV_ID` (data-set mode, 8192 trials), into `OUT/neurogym_<ENV_ID>/`; the built-in
tasks then run only if `--tasks` is given too.

    python experiments/task_gallery.py --out runs/gallery_neurogym --neurogym
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ctrnn_jax._cli import use_cpu_cores
from ctrnn_jax._files import atomic_write, write_json
from ctrnn_jax.analysis._report import analyze_run
from ctrnn_jax.io._run import train_run
from ctrnn_jax.io._run_config import RunConfig
from ctrnn_jax.tasks._neurogym import neurogym_task
from ctrnn_jax.tasks._tasks import TASKS, make_task
from ctrnn_jax.training._ensemble import EnsembleConfig
from ctrnn_jax.training._train import TrainConfig

# Per preset: ensemble size, units, and training steps per task. The decision and memory tasks have
# short trials (T ≈ 70) and learn in a few thousand steps; the flip-flop (T = 340) needs 8000.
# Learning rates, measured on 8 members x 2000 steps (N = 64, alpha = 0.25): at lr 1e-2, 3 of 8 (dms)
# and 2 of 8 (context_dm) members stayed at chance (an output that never leaves 0 in the response);
# at lr 3e-3, 8 of 8 solved both. The flip-flop keeps the main job's 1e-2 (experiments/README.md).
LEARNING_RATE = {"flipflop": 1e-2, "perceptual_dm": 3e-3, "context_dm": 3e-3, "dms": 3e-3, "parametric_wm": 3e-3}
PRESETS = {
    "cpu": {"members": 4, "units": 64, "batch": 32,
            "steps": {"flipflop": 8000, "perceptual_dm": 1500, "context_dm": 2000, "dms": 2000,
                      "parametric_wm": 2000}},
    "gpu": {"members": 64, "units": 128, "batch": 64,
            "steps": {"flipflop": 8000, "perceptual_dm": 2000, "context_dm": 4000, "dms": 4000,
                      "parametric_wm": 4000}},
}

# NeuroGym environments that train on the CPU preset (measured: experiments/README.md), with their
# training steps (the GPU preset doubles them) and `--task-opt`s; lr 1e-2, 8192 host-made trials
# (data-set mode). ContextDecisionMaking-v0's decision period is one step (100 ms) after a random delay:
# with its default timing 0/4 members learned to leave fixation in that one step, with a 500 ms decision
# 3/4 solved it. Left out: the timing tasks (MotorTiming, OneTwoThreeGo, ReadySetGo: the last step's
# ground truth is always the same action, so the decision accuracy says nothing), envs without one-hot
# ground truth, and DelayMatchCategory-v0, which cannot be solved with its default `dim_ring=2` (its two
# stimulus channels carry only cos θ, the same for both categories; measured: 0/4 members, accuracy
# 0.50-0.53).
NEUROGYM = {"GoNogo-v0": (1000, []), "PerceptualDecisionMaking-v0": (1500, []),
            "MultiSensoryIntegration-v0": (1500, []), "DelayComparison-v0": (2000, []),
            "DelayMatchSample-v0": (2000, []), "ContextDecisionMaking-v0": (2000, ["timing={'decision': 500}"]),
            "IntervalDiscrimination-v0": (2000, [])}
NEUROGYM_DATASET = 8192


def run_task(name: str, args, preset: dict) -> dict:
    env_id = name.partition(":")[2]
    steps, options = NEUROGYM.get(env_id, (2000, []))
    task = neurogym_task(name, options) if env_id else make_task(name)
    ensemble = EnsembleConfig(members=args.members or preset["members"], units=args.units or preset["units"],
                              inputs=task.n_inputs, outputs=task.n_outputs, alpha=0.25, cell=args.cell,
                              dale=args.dale, rec_density=args.rec_density, autapses=args.autapses)
    steps = steps * (2 if preset is PRESETS["gpu"] else 1) if env_id else preset["steps"][name]
    train = TrainConfig(steps=steps, batch_size=preset["batch"],
                        learning_rate=1e-2 if env_id else LEARNING_RATE[name], lr_decay=1e-3, steps_per_call=100,
                        seed=args.seed, fixed=tuple(args.fixed), rate_l2=args.rate_l2,
                        dataset_size=NEUROGYM_DATASET if env_id else None)
    config = RunConfig(ensemble=ensemble, train=train, task=task)
    out = Path(args.out) / (f"neurogym_{env_id}" if env_id else name)
    t0 = time.perf_counter()
    result = train_run(out, config, progress=_progress(), log=lambda m: print(m, file=sys.stderr))
    t_train = time.perf_counter() - t0
    analyze_run(out, log=lambda m: print(m, file=sys.stderr))
    t_all = time.perf_counter() - t0
    analysis = json.loads((out / "analysis.json").read_text())
    metric_name = result.get("metric_name", "mse")
    metric = result.get("metric", result["mse"])
    return {"task": name, "chance": _chance(task) if env_id else None, "members": ensemble.members,
            "units": ensemble.units, "cell": args.cell,
            "constraints": {"dale": args.dale, "rec_density": args.rec_density, "autapses": args.autapses,
                            "fixed": list(args.fixed), "rate_l2": args.rate_l2},
            "steps": train.steps, "n_success": result["n_success"], "metric_name": metric_name,
            "metric": metric, "train_s": t_train, "total_s": t_all, "fixed_points": _fp_summary(analysis)}


def _fp_summary(analysis: dict) -> list:
    """Per constant input: the median number of fixed points and of stable ones over members."""
    if "fixed_points" in analysis and isinstance(analysis["fixed_points"], list):  # the generic report
        out = []
        for s in analysis["fixed_points"]:
            pts = [r["points"] for r in s["per_member"]]
            stable = [r["stable"] for r in s["per_member"]]
            slow = [r.get("slow", 0) for r in s["per_member"]]
            out.append({"input": s["input"], "points_median": float(np.median(pts)),
                        "stable_median": float(np.median(stable)), "stable": stable,
                        "slow_median": float(np.median(slow))})
        return out
    cube = analysis.get("cube_summary", {})  # the flip-flop report: the cube of memory states
    return [{"input": [0.0, 0.0, 0.0], "cube": cube}]


def _chance(task) -> float:
    """The decision accuracy of always choosing the most frequent ground-truth action (test set)."""
    _, targets, mask = (np.asarray(a) for a in task.test_set())
    scored = mask.max(-1) > 0
    last = scored.shape[1] - 1 - np.argmax(scored[:, ::-1], axis=1)
    answers = targets[np.arange(len(last)), last].argmax(-1)
    return float(np.bincount(answers).max() / len(answers))


def _progress():
    from ctrnn_jax import TextProgress

    return TextProgress()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/gallery", help="folder for the run folders and the summary")
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    builtin = [n for n in TASKS if n != "neurogym"]
    p.add_argument("--tasks", nargs="+", default=None, choices=builtin, help="built-in tasks (default: all)")
    p.add_argument("--neurogym", nargs="*", default=None, metavar="ENV_ID",
                   help="NeuroGym environments (none given: those in NEUROGYM, which train on the CPU preset)")
    p.add_argument("--cell", choices=("ctrnn", "gru", "lstm"), default="ctrnn")
    p.add_argument("--members", type=int, default=None)
    p.add_argument("--units", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("constraints and regularization (CTRNN)")
    g.add_argument("--dale", action="store_true", help="Dale's law (80%% excitatory units)")
    g.add_argument("--rec-density", type=float, default=1.0, help="fraction of recurrent connections")
    g.add_argument("--no-autapses", dest="autapses", action="store_false", help="no self-connections")
    g.add_argument("--fixed", nargs="*", default=[], help="weights kept at their initial values, e.g. W_rec W_in b")
    g.add_argument("--rate-l2", type=float, default=0.0, help="L2 penalty on firing rates")
    args = p.parse_args(argv)
    use_cpu_cores()  # one JAX CPU device per core, as `ctrnn-jax` does: members split over the cores
    preset = PRESETS[args.preset]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    rows = []
    t0 = time.perf_counter()
    tasks = list(args.tasks if args.tasks is not None else ([] if args.neurogym is not None else builtin))
    if args.neurogym is not None:
        tasks += [f"neurogym:{e}" for e in (args.neurogym or NEUROGYM)]
    for name in tasks:
        print(f"== {name}", file=sys.stderr)
        rows.append(run_task(name, args, preset))
        write_json(Path(args.out) / "gallery.json", {"preset": args.preset, "rows": rows,
                                                      "wall_s": time.perf_counter() - t0})
    table = [("| task | members solving | metric (per member) | fixed points at the task's inputs "
             "(median points / stable / slow points) | train s | total s |"), "|---|---|---|---|---|---|"]
    for r in rows:
        metric = ", ".join(f"{v:.3f}" for v in r["metric"])
        fps = "; ".join(f"{f['points_median']:.0f} / {f['stable_median']:.0f} / {f['slow_median']:.0f}"
                        if "points_median" in f
                        else (f"{f['cube'].get('mean_fixed_points', float('nan')):.0f} / "
                              f"{f['cube'].get('mean_stable', float('nan')):.0f} (means); all 8 memory states in "
                              f"{f['cube'].get('n_all_corners', '?')} members")
                        for f in r["fixed_points"])
        chance = f" (chance {r['chance']:.2f})" if r.get("chance") is not None else ""
        table.append(f"| {r['task']} | {r['n_success']}/{r['members']} | {r['metric_name']}{chance}: {metric} | "
                     f"{fps} | {r['train_s']:.0f} | {r['total_s']:.0f} |")
    text = "\n".join(table) + f"\n\nWall time in all: {time.perf_counter() - t0:.0f} s.\n"
    with atomic_write(Path(args.out) / "gallery.md", "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
