"""Universality and individuality across architectures on the 3-bit flip-flop (issue #12), after
Maheswaranathan, Williams, Golub, Ganguli & Sussillo (NeurIPS 2019), Fig. 1.

Trains one population per architecture into `OUT/<population>/` (normal run folders): CTRNNs with tanh,
relu and softplus, GRUs, LSTMs and UGRNNs, on the default 3-bit flip-flop; then compares every network with
every other (`ctrnn-jax compare`'s library call) into `OUT/compare/`: SVCCA of the test-set activity
(geometry) and the distance between fixed-point topology graphs (topology), their MDS embeddings (the
Fig. 1 pair, `OUT/compare/figures/mds_by_cell.png`), and the mean distance within and between
architectures for both measures, over the networks that solve the task. Writes `OUT/universality.json`
and `OUT/universality.md`.

    python experiments/universality.py --out runs/universality                 # CPU preset (< 30 min alone)
    python experiments/universality.py --out runs/universality --preset gpu    # 64 networks per population

The task is the default 3-bit flip-flop except that the output switches as soon as a pulse ends
(`--delay 0`, as in Sussillo & Barak 2013 and Maheswaranathan et al. 2019). The paper's code switches
it 20 steps later; with that delay, GRUs, LSTMs and relu/softplus CTRNNs sit on the "output 0"
plateau (test MSE ~0.94) for thousands of steps, because holding the old output for 20 steps after the
pulse is a timer the gated cells must first learn (measured: `experiments/README.md`).
`--delay 20` runs the study on the paper's task.

Options: `--populations NAME ...` (default all; names below), `--members`, `--units`, `--steps` (CTRNNs),
`--gated-steps` (GRU, LSTM, UGRNN), `--delay`, `--seed`,
`--figure PATH` (copy the MDS figure pair there, e.g. docs/universality.png).
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ctrnn_jax._cli import use_cpu_cores
from ctrnn_jax._files import atomic_write, write_json
from ctrnn_jax.dynamics._config import FixedPointConfig
from ctrnn_jax.analysis._compare import (
    compare_ensembles,
    within_between,
    write_comparison,
)
from ctrnn_jax.io._run import RunConfig, load_run_ensemble, train_run
from ctrnn_jax.tasks._flipflop import FlipFlopConfig
from ctrnn_jax.training._ensemble import EnsembleConfig
from ctrnn_jax.training._train import TrainConfig

# population name -> (cell, activation)
POPULATIONS = {"ctrnn_tanh": ("ctrnn", "tanh"), "gru": ("gru", "tanh"), "lstm": ("lstm", "tanh"),
               "ugrnn": ("ugrnn", "tanh"), "ctrnn_relu": ("ctrnn", "relu"), "ctrnn_softplus": ("ctrnn", "softplus")}
NEAR_MSE = 0.05  # a second subset of networks for the table: close to the success threshold (0.02)

# `steps` for the CTRNNs, `gated_steps` for the GRU, LSTM and UGRNN. Measured (2 members, delay 0, lr 1e-2
# with decay 1e-3): gated cells of N = 32 solve in 800-1000 steps; tanh CTRNNs (alpha 0.25) need N = 64 and
# ~8000 steps (test MSE 0.009-0.010; N = 32 reached 0.022 at 8000 steps), like the main job.
PRESETS = {
    "cpu": {"members": 4, "units": 64, "steps": 8000, "gated_steps": 1000, "batch": 32, "candidates": 256,
            "restarts": 2},
    "gpu": {"members": 64, "units": 64, "steps": 8000, "gated_steps": 4000, "batch": 64, "candidates": 512,
            "restarts": 2},
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    p.add_argument("--populations", nargs="+", choices=sorted(POPULATIONS), default=list(POPULATIONS))
    p.add_argument("--members", type=int, default=None)
    p.add_argument("--units", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="training steps of the CTRNNs")
    p.add_argument("--gated-steps", type=int, default=None, help="training steps of the gated cells")
    p.add_argument("--delay", type=int, default=0,
                   help="steps between a pulse's end and the output's switch (0 here; 20 in the paper's code)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", type=Path, default=None, help="also copy the MDS figure pair (PNG) here")
    args = p.parse_args(argv)
    use_cpu_cores()
    preset = dict(PRESETS[args.preset])
    for name in ("members", "units", "steps", "gated_steps"):
        if getattr(args, name) is not None:
            preset[name] = getattr(args, name)
    task = FlipFlopConfig(delay=args.delay)  # bad values raise here, before any training
    times = {}
    for i, name in enumerate(args.populations):
        cell, activation = POPULATIONS[name]
        run = args.out / name
        t0 = time.perf_counter()
        steps = preset["steps"] if cell == "ctrnn" else preset["gated_steps"]
        if (run / "ensemble.npz").is_file():
            _, config = load_run_ensemble(run)
            if config.task != task:
                hint = f" or --delay {config.task.delay}" if isinstance(config.task, FlipFlopConfig) else ""
                raise SystemExit(f"error: {run} was trained on another task ({config.task}); use a new --out{hint}")
        else:
            config = RunConfig(
                ensemble=EnsembleConfig(members=preset["members"], units=preset["units"], cell=cell,
                                        activation=activation),
                train=TrainConfig(steps=steps, batch_size=preset["batch"], seed=args.seed + i),
                task=task)
            print(f"training {name} ({preset['members']} x N = {preset['units']}, {steps} steps) ...",
                  file=sys.stderr)
            train_run(run, config, log=lambda m: print(m, file=sys.stderr))
        times[name] = time.perf_counter() - t0

    ensembles, names, success, steps_trained, evals = [], [], [], {}, {}
    for name in args.populations:
        ensemble, config = load_run_ensemble(args.out / name)
        steps_trained[name] = config.train.steps  # a run resumed with more steps (`ctrnn-jax train --resume`)
        ensembles.append(ensemble)
        names.append(name)
        evals[name] = json.loads((args.out / name / "eval.json").read_text())  # per-member test metrics
        success.append(np.asarray(evals[name]["success"], bool))
    t0 = time.perf_counter()
    config = FixedPointConfig(n_candidates=preset["candidates"], restarts=preset["restarts"], seed=args.seed)
    result = compare_ensembles(ensembles, names=names, task=task, success=success, config=config,
                               log=lambda m: print(m, file=sys.stderr))
    report = write_comparison(result, args.out / "compare")
    times["compare"] = time.perf_counter() - t0

    members = result["members"]
    solved = np.asarray([bool(m["success"]) for m in members])
    groups = np.asarray([m["run"] for m in members])
    table = {}
    mse = np.concatenate([evals[name]["mse"] for name in names])
    near = np.isfinite(mse) & (mse < NEAR_MSE)
    # networks that hold the 2^3 memories in attractors: at least 8 stable points (the study's claim is about
    # fixed-point topology, which says nothing of networks that remember without attractors)
    attractors = np.asarray([g.n_nodes >= 2 ** task.n_bits for g in result["graphs"]])
    for subset, mask in (("all", np.ones(len(members), bool)), (f"test MSE < {NEAR_MSE}", near), ("solved", solved),
                         (f">= {2 ** task.n_bits} stable points", attractors),
                         (f"solved, >= {2 ** task.n_bits} stable points", solved & attractors)):
        idx = np.flatnonzero(mask)
        distances = {name: np.asarray(result[name]) for name in ("svcca", "topology", "topology_spectrum",
                                                                  "linearization")}
        distances["1 - cka"] = 1.0 - np.asarray(result["cka"])  # CKA is a similarity
        table[subset] = {measure: within_between(d[np.ix_(idx, idx)], groups[idx]) for measure, d in distances.items()}
    graphs = result["graphs"]
    # slow points (tol_q < q <= 1e-6, not fixed points): where a gated cell holds its memory with saturated
    # gates, the search ends on slow, marginal states instead of attractors
    slow = [np.bincount(np.asarray(fp.slow_member), minlength=fp.n_members).tolist() for fp in result["fixed_points"]]
    summary = {
        "preset": args.preset, "settings": preset, "task": task.to_dict(), "seconds": times,
        "populations": {name: {"steps": steps_trained[name], "members": int(np.sum(groups == name)),
                               "solved": int(np.sum(solved & (groups == name))),
                               "test_mse": [float(v) for v in evals[name]["mse"]],
                               "nodes": [graphs[i].n_nodes for i in np.flatnonzero(groups == name)],
                               "edges": [graphs[i].n_edges for i in np.flatnonzero(groups == name)],
                               "slow_points": slow[j]}
                        for j, name in enumerate(args.populations)},
        "within_between": table,
    }
    write_json(args.out / "universality.json", summary)
    lines = ["# Universality across architectures on the 3-bit flip-flop\n",
             (f"Preset `{args.preset}`: {preset}; task: the default flip-flop with `delay={task.delay}`. "
             "Comparison report: `compare/report.md`.\n"),
             ("| population | steps | solved | test MSE | stable points per network | topology edges per network | "
              "slow points per network | seconds (this call) |"),
             "|---|---|---|---|---|---|---|---|"]
    for name, row in summary["populations"].items():
        mse = ", ".join(f"{v:.3f}" for v in row["test_mse"])
        lines.append(f"| {name} | {row['steps']} | {row['solved']}/{row['members']} | {mse} | {row['nodes']} | "
                     f"{row['edges']} | {row['slow_points']} | {times[name]:.0f} |")
    lines += ["", "Mean distance within and between populations (architecture and activation):\n",
              "| networks | measure | within | between | between / within |", "|---|---|---|---|---|"]
    for subset, rows in table.items():
        for measure, row in rows.items():
            lines.append(f"| {subset} | {measure} | {row['within']:.3f} | {row['between']:.3f} | "
                         f"{row['ratio']:.2f} |")
    with atomic_write(args.out / "universality.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"report: {report}")
    if args.figure is not None:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.out / "compare" / "figures" / "mds_by_cell.png", args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
