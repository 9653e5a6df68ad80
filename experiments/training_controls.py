"""Which training controls turn the marginal memories of gated cells into attractors (issue #18)?

Trains GRU and UGRNN populations (4 members of N = 64 by default) on the binary 3-bit flip-flop to
criterion, once per arm:

- `baseline`: the study's set-up (`experiments/universality.py`);
- `noise`: recurrent noise, `TrainConfig.noise_std` (Gaussian noise added to the state at every step);
- `l2`: a weight L2 penalty, `TrainConfig.weight_l2` (`weight_l2 · Σ_W mean(W²)` in the loss);
- `dense`: the dense-pulse task (1-step pulses at random times, Golub's and Sussillo & Barak's set-up).

For every member it finds the fixed points at zero input (slow points analysed: `fixed_point_stage`),
classifies them (stable / saddle / marginal, band δ = `FixedPointConfig.marginal_tol`), groups the
stable and marginal ones into memory states, and runs the behavioural memory check (no finder). Writes
`OUT/controls.json` and `OUT/controls.md`: per cell and arm the members solving, the stable points and
memory states by mechanism per member, the check's verdicts, and the fraction of members with >= 8
stable points (an attractor at every corner).

    python experiments/training_controls.py --out runs/controls            # CPU preset (~15 min)
    python experiments/training_controls.py --out runs/controls3 --task paper --stop-mse none --steps 1000
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
from universality import study_task, train_population  # experiments/ is the script's folder

from ctrnn_jax._cli import use_cpu_cores
from ctrnn_jax._files import atomic_write, write_json
from ctrnn_jax.io._eval import evaluate_run
from ctrnn_jax.io._run import load_run_ensemble

ARMS = ("baseline", "noise", "l2", "dense")


def arm_settings(arm: str, args) -> tuple:
    """`(task, l2, noise_std)` of an arm."""
    task = study_task(args.task, 0)
    if arm == "dense":
        task = dataclasses.replace(task, pulses="dense", width=1)
    return task, (args.l2 if arm == "l2" else 0.0), (args.noise if arm == "noise" else 0.0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cells", nargs="+", choices=("gru", "ugrnn", "lstm"), default=["gru", "ugrnn"])
    p.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--units", type=int, default=64)
    p.add_argument("--steps", type=int, default=2500, help="most training steps (training stops at the criterion)")
    p.add_argument("--noise", type=float, default=0.05, help="noise_std of the `noise` arm")
    p.add_argument("--l2", type=float, default=0.05, help="weight_l2 of the `l2` arm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task", choices=("cube", "paper"), default="cube",
                   help="the binary cube task (default) or the paper's 3-level task, both without output delay")
    p.add_argument("--stop-mse", type=lambda v: None if v == "none" else float(v), default=0.02,
                   help="train to this validation MSE (default 0.02); 'none': every step, no restarts")
    p.add_argument("--train-only", action="store_true", help="train every arm and stop")
    args = p.parse_args(argv)
    use_cpu_cores()
    names = [(cell, arm, f"{cell}_{arm}") for cell in args.cells for arm in args.arms]
    seconds = {}
    for cell, arm, name in names:
        task, l2, noise = arm_settings(arm, args)
        t0 = time.perf_counter()
        train_population(args.out / name, cell, task=task, members=args.members, units=args.units,
                         steps=args.steps, batch=32, seed=args.seed, l2=l2, noise_std=noise, stop_mse=args.stop_mse)
        seconds[name] = time.perf_counter() - t0
    if args.train_only:
        return 0
    from ctrnn_jax.dynamics._behaviour import memory_check
    from ctrnn_jax.dynamics._config import FixedPointConfig
    from ctrnn_jax.dynamics._memory_states import memory_states
    from ctrnn_jax.dynamics._stage import fixed_point_stage

    config = FixedPointConfig(n_candidates=256, restarts=2, seed=args.seed)
    rows = {}
    for cell, arm, name in names:
        task, l2, noise = arm_settings(arm, args)
        t0 = time.perf_counter()
        ensemble, run_config = load_run_ensemble(args.out / name)
        ev = evaluate_run(ensemble, run_config)
        train_record = json.loads((args.out / name / "eval.json").read_text())
        fp = fixed_point_stage(ensemble, task, config=config)[0]
        states = memory_states(fp, readouts=task.memory_readouts())
        check = memory_check(ensemble, task)
        k = fp.n_members
        stable = [int(np.sum((fp.member == m) & (fp.kind == "stable"))) for m in range(k)]
        exact_stable = [int(np.sum((fp.member == m) & (fp.kind == "stable") & fp.exact)) for m in range(k)]
        marginal = [int(np.sum((fp.member == m) & (fp.kind == "marginal"))) for m in range(k)]
        rows[name] = {
            "cell": cell, "arm": arm, "l2": l2, "noise_std": noise, "task": task.to_dict(),
            "solved": int(np.sum(ev["success"])), "members": k, "test_mse": ev["mse"],
            "criterion_step": train_record.get("criterion_step"),
            "stable_points": stable, "exact_stable_points": exact_stable, "marginal_points": marginal,
            "memory_states": [states.counts(m) for m in range(k)],
            "memory_check": [str(v) for v in check.verdict],
            "fraction_8_stable": float(np.mean(np.asarray(stable) >= 8)),
            "seconds": {"train": seconds[name], "analysis": time.perf_counter() - t0},
        }
        print(f"{name}: {rows[name]['solved']}/{k} solved, stable points {stable}, marginal {marginal}, "
              f"check {rows[name]['memory_check']}", file=sys.stderr)
    write_json(args.out / "controls.json", {"settings": vars(args) | {"out": str(args.out)}, "arms": rows})
    lines = ["# Training controls: marginal memories or attractors?\n",
             f"{args.members} members of N = {args.units} per cell and arm; noise_std {args.noise}, weight_l2 "
             f"{args.l2}; fixed points at zero input with slow points analysed.\n",
             ("| cell | arm | solved | test MSE | stable points per member | marginal points per member | "
              "memory states (attractor/marginal) | memory check | members with >= 8 stable points |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows.values():
        ms = ", ".join("/".join(str(v) for v in c.values()) for c in row["memory_states"])
        lines.append(f"| {row['cell']} | {row['arm']} | {row['solved']}/{row['members']} | "
                     f"{', '.join(f'{v:.3f}' for v in row['test_mse'])} | {row['stable_points']} | "
                     f"{row['marginal_points']} | {ms} | {', '.join(row['memory_check'])} | "
                     f"{row['fraction_8_stable']:.2f} |")
    with atomic_write(args.out / "controls.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
