"""Universality and individuality across architectures on the binary 3-bit flip-flop (issues #12, #18),
after Maheswaranathan, Williams, Golub, Ganguli & Sussillo (NeurIPS 2019), Fig. 1.

Trains one population per architecture into `OUT/<population>/` (normal run folders), every member to
criterion (validation MSE < 0.02, dead starts restarted): the vanilla RNN (CTRNN with `alpha = 1`), the
leaky CTRNN (`alpha = 0.25`), GRU, LSTM and UGRNN with tanh, and the vanilla RNN with relu. Then compares
every network with every other (`compare_ensembles`) into `OUT/compare/`:

- geometry: SVCCA (and 1 − CKA) and the Procrustes shape metric of the test-set activity;
- dynamics: the DSA-style distance of Hankel-DMD operators fitted to the test-set activity;
- topology: the distance between the graphs whose nodes are the memory states (attractors and marginal
  manifolds, slow points included) and whose edges are index-1 saddles; NaN (left out, and counted)
  for a network without memory states;
- the behavioural memory check (no finder): does each memory state hold for 10 trial lengths, and do
  small perturbations shrink, persist or grow.

Writes `OUT/universality.json` and `OUT/universality.md` (within- against between-architecture ratios,
memory states per network by mechanism, the memory check's verdicts and its agreement with the linear
classification).

    python experiments/universality.py --out runs/universality                 # CPU preset (~30 min)
    python experiments/universality.py --out runs/universality --preset gpu    # sweeps units and weight L2

The task is the binary flip-flop of the reference study: every bit gets a pulse at the start
(`start_pulse=True`; the steps before its first switch carry no target), so the memory states are the
8 corners and the expected graph is the cube (8 nodes, 12 edges); the output switches as soon as a pulse
ends (`--delay 0`, as in Sussillo & Barak 2013). `--task paper` trains the paper's 3-level task instead
(`first_pulse_can_be_zero`, target 0 before the first pulse). Departures from the reference study's
set-up are listed in `experiments/README.md`.

Options: `--populations NAME ...` (default all; names below), `--members`, `--units`, `--steps` (CTRNNs),
`--gated-steps` (GRU, LSTM, UGRNN), `--delay`, `--task`, `--seed`, `--figure PATH` (copy the MDS figure
pair there, e.g. docs/universality.png), `--graphs-figure PATH` (the topology graphs).
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
from ctrnn_jax.analysis._compare import compare_ensembles, within_between
from ctrnn_jax.dynamics._config import FixedPointConfig
from ctrnn_jax.io._eval import evaluate_run
from ctrnn_jax.io._run import load_run_ensemble, train_run
from ctrnn_jax.io._run_config import RunConfig
from ctrnn_jax.tasks._flipflop import FlipFlopConfig
from ctrnn_jax.training._ensemble import EnsembleConfig
from ctrnn_jax.training._train import TrainConfig

# architecture -> (cell, activation, alpha (CTRNN only), learning rate). At lr 1e-2 the vanilla RNN
# (alpha = 1) stayed at the "output 0" plateau (loss 0.95 after 3000 steps, 4 of 4 members); it gets 2e-3.
ARCHITECTURES = {
    "vanilla_tanh": ("ctrnn", "tanh", 1.0, 2e-3),
    "leaky_tanh": ("ctrnn", "tanh", 0.25, 1e-2),
    "gru": ("gru", "tanh", None, 1e-2),
    "lstm": ("lstm", "tanh", None, 1e-2),
    "ugrnn": ("ugrnn", "tanh", None, 1e-2),
    "vanilla_relu": ("ctrnn", "relu", 1.0, 2e-3),
}
MEASURES = ("svcca", "1 - cka", "procrustes", "dynamics", "topology", "topology_spectrum")

# `steps` (the most; training stops at the criterion) for the CTRNNs, `gated_steps` for the gated cells.
# The GPU preset sweeps units and weight L2 as the reference study did (every combination is a population).
PRESETS = {
    "cpu": {"members": 4, "units": [64], "l2": [0.0], "steps": 6000, "gated_steps": 2500, "batch": 32,
            "candidates": 256, "restarts": 2},
    "gpu": {"members": 64, "units": [64, 128, 256], "l2": [0.0, 0.05], "steps": 8000, "gated_steps": 4000,
            "batch": 64, "candidates": 512, "restarts": 2},
}


def study_task(kind: str, delay: int) -> FlipFlopConfig:
    """The study's task: `cube` (every bit pulsed at the start, binary targets) or `paper` (3-level)."""
    if kind == "cube":
        return FlipFlopConfig(delay=delay, start_pulse=True, first_pulse_can_be_zero=False)
    return FlipFlopConfig(delay=delay)


def train_population(run: Path, architecture: str, *, task, members: int, units: int, steps: int, batch: int,
                     seed: int, l2: float = 0.0, noise_std: float = 0.0, stop_mse: float | None = 0.02) -> None:
    """Train (or keep, if already trained on the same task) one population into the run folder `run`, to
    criterion (validation MSE < `stop_mse`, dead starts restarted after 500 steps; `stop_mse=None`: every
    step, no restarts)."""
    if (run / "ensemble.npz").is_file():
        _, config = load_run_ensemble(run)
        if config.task != task:
            hint = ""
            if isinstance(config.task, FlipFlopConfig):
                kind = "cube" if config.task.start_pulse else "paper"
                hint = f" or --task {kind} --delay {config.task.delay}"
            raise SystemExit(f"error: {run} was trained on another task ({config.task}); use a new --out{hint}")
        return
    cell, activation, alpha, lr = ARCHITECTURES[architecture]
    ensemble = EnsembleConfig(members=members, units=units, cell=cell, activation=activation,
                              **({"alpha": alpha} if alpha is not None else {}))
    train = TrainConfig(steps=steps, batch_size=batch, learning_rate=lr, seed=seed, stop_mse=stop_mse,
                        restart_after=None if stop_mse is None else 500, weight_l2=l2,
                        noise_std=noise_std)
    print(f"training {run.name} ({members} x N = {units} {cell}/{activation}, at most {steps} steps) ...",
          file=sys.stderr)
    train_run(run, RunConfig(ensemble=ensemble, train=train, task=task), log=lambda m: print(m, file=sys.stderr))


def populations(preset: dict, architectures) -> list[tuple[str, str, int, float]]:
    """`(name, architecture, units, l2)` for every population of a preset."""
    single = len(preset["units"]) == 1 and len(preset["l2"]) == 1
    return [(a if single else f"{a}_n{n}_l2{l2:g}", a, n, l2)
            for a in architectures for n in preset["units"] for l2 in preset["l2"]]


def mechanisms(graph) -> dict:
    """Memory states of one network by mechanism: `{"attractor": a, "marginal": m}` (its graph's nodes)."""
    dims = np.zeros(graph.n_nodes, int) if graph.dimension is None else np.asarray(graph.dimension)
    return {"attractor": int(np.sum(dims == 0)), "marginal": int(np.sum(dims > 0))}


def why_no_graph(graph) -> str | None:
    """Why a network's topology graph is empty or has no edge (None when it has both nodes and edges)."""
    if graph.n_nodes == 0:
        return "no memory state: no stable or marginal point whose readout holds over the longest hold"
    if graph.n_edges == 0:
        return (f"{graph.n_nodes} memory state(s) but no index-1 saddle joining two of them ({graph.n_unmatched} "
                "saddle branches reached no memory state; the saddle completion pairs exact points only)")
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    p.add_argument("--populations", nargs="+", choices=sorted(ARCHITECTURES), default=list(ARCHITECTURES))
    p.add_argument("--members", type=int, default=None)
    p.add_argument("--units", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="most training steps of the CTRNNs")
    p.add_argument("--gated-steps", type=int, default=None, help="most training steps of the gated cells")
    p.add_argument("--delay", type=int, default=0,
                   help="steps between a pulse's end and the output's switch (0 here; 20 in the paper's code)")
    p.add_argument("--task", choices=("cube", "paper"), default="cube")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure", type=Path, default=None, help="also copy the MDS figure pair (PNG) here")
    p.add_argument("--graphs-figure", type=Path, default=None, help="also copy the topology graphs (PNG) here")
    p.add_argument("--train-only", action="store_true", help="train the populations and stop")
    p.add_argument("--stop-mse", type=lambda v: None if v == "none" else float(v), default=0.02,
                   help="train to this validation MSE (default 0.02); 'none': every step, no restarts")
    args = p.parse_args(argv)
    use_cpu_cores()
    preset = dict(PRESETS[args.preset])
    for name in ("members", "steps", "gated_steps"):
        if getattr(args, name) is not None:
            preset[name] = getattr(args, name)
    if args.units is not None:
        preset["units"] = [args.units]
    task = study_task(args.task, args.delay)  # bad values raise here, before any training
    pops = populations(preset, args.populations)
    times = {}
    for i, (name, arch, units, l2) in enumerate(pops):
        t0 = time.perf_counter()
        steps = preset["steps"] if ARCHITECTURES[arch][0] == "ctrnn" else preset["gated_steps"]
        train_population(args.out / name, arch, task=task, members=preset["members"], units=units, steps=steps,
                         batch=preset["batch"], seed=args.seed + i, l2=l2, stop_mse=args.stop_mse)
        times[name] = time.perf_counter() - t0
    if args.train_only:
        return 0

    ensembles, names, success, evals = [], [], [], {}
    for name, *_ in pops:
        ensemble, run_config = load_run_ensemble(args.out / name)
        ensembles.append(ensemble)
        names.append(name)
        record = json.loads((args.out / name / "eval.json").read_text())  # the training record (criterion, restarts)
        evals[name] = {**record, **evaluate_run(ensemble, run_config)}  # test metrics by today's evaluation
        success.append(np.asarray(evals[name]["success"], bool))
    t0 = time.perf_counter()
    config = FixedPointConfig(n_candidates=preset["candidates"], restarts=preset["restarts"], seed=args.seed)
    result = compare_ensembles(ensembles, names=names, task=task, success=success, config=config,
                               log=lambda m: print(m, file=sys.stderr))
    report = result.write(args.out / "compare", overwrite=True)
    times["compare"] = time.perf_counter() - t0
    summary = summarise(result, pops, evals, task, preset, args, times)
    write_json(args.out / "universality.json", summary)
    lines = markdown(summary)
    with atomic_write(args.out / "universality.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"report: {report}")
    for target, source in ((args.figure, "mds_by_cell.png"), (args.graphs_figure, "topology_graphs.png")):
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(args.out / "compare" / "figures" / source, target)
    return 0


def summarise(result, pops, evals, task, preset, args, times) -> dict:
    """The study's numbers: per population and the within/between table over subsets of networks."""
    members = result.members
    solved = np.asarray([bool(m["success"]) for m in members])
    arch = {name: a for name, a, *_ in pops}
    groups = np.asarray([arch[m["run"]] for m in members])  # within/between: the architecture
    graphs = result.graphs
    n_memory = np.asarray([g.n_nodes for g in graphs])
    full = n_memory >= 2 ** task.n_bits
    verdicts = [m.get("memory_check") for m in members]  # the behavioural check's verdict per network
    distances = {name: np.asarray(getattr(result, name)) for name in MEASURES if name != "1 - cka"}
    distances["1 - cka"] = 1.0 - np.asarray(result.cka)
    table = {}
    for subset, mask in (("all", np.ones(len(members), bool)), ("solved", solved),
                         (f"solved, >= {2 ** task.n_bits} memory states", solved & full)):
        idx = np.flatnonzero(mask)
        table[subset] = {m: within_between(d[np.ix_(idx, idx)], groups[idx]) for m, d in distances.items()}
    # the memory check (no finder) against the linear classification of the graph's memory states: a network
    # whose memory states are all attractors should be "attractors", one with a marginal state "marginal"
    linear = ["none" if g.n_nodes == 0 else ("marginal" if mechanisms(g)["marginal"] else "attractors")
              for g in graphs]
    disagree = [{"run": m["run"], "member": m["member"], "linear": lin, "check": v}
                for m, lin, v in zip(members, linear, verdicts) if v is not None and lin != v]
    agreement = {"agree": sum(v is not None for v in verdicts) - len(disagree), "of": sum(v is not None for v in verdicts),
                 "disagreements": disagree}
    per_pop = {}
    for name, a, units, l2 in pops:
        idx = [i for i, m in enumerate(members) if m["run"] == name]
        per_pop[name] = {
            "architecture": a, "units": units, "l2": l2, "members": len(idx),
            "solved": int(solved[idx].sum()), "test_mse": [float(v) for v in evals[name]["mse"]],
            "criterion_step": evals[name].get("criterion_step"), "restarts": evals[name].get("restarts"),
            "memory_states": [mechanisms(graphs[i]) for i in idx],
            "edges": [graphs[i].n_edges for i in idx],
            "memory_check": [verdicts[i] for i in idx],
            "why_no_graph": [why_no_graph(graphs[i]) for i in idx],
        }
    return {"preset": args.preset, "settings": preset, "task": task.to_dict(), "seconds": times,
            "populations": per_pop, "within_between": table,
            "no_memory_states": int(np.sum(n_memory == 0)), "networks": len(members),
            "agreement": agreement}


def markdown(summary: dict) -> list[str]:
    lines = ["# Universality across architectures on the binary 3-bit flip-flop\n",
             (f"Preset `{summary['preset']}`: {summary['settings']}; task: {summary['task']}. "
              "Comparison report: `compare/report.md`.\n"),
             (f"{summary['no_memory_states']} of {summary['networks']} networks have no memory states (their "
              "topology distances are undefined and left out).\n"),
             ("| population | solved | test MSE | criterion step | memory states (attractor + marginal) | "
              "edges | memory check | seconds |"),
             "|---|---|---|---|---|---|---|---|"]
    for name, row in summary["populations"].items():
        mse = ", ".join(f"{v:.3f}" for v in row["test_mse"])
        states = ", ".join(f"{s['attractor']}+{s['marginal']}" for s in row["memory_states"])
        lines.append(f"| {name} | {row['solved']}/{row['members']} | {mse} | {row['criterion_step']} | {states} | "
                     f"{row['edges']} | {', '.join(str(v) for v in row['memory_check'])} | "
                     f"{summary['seconds'].get(name, 0):.0f} |")
    lines += ["", "Mean distance within and between architectures (NaN pairs left out):\n",
              "| networks | measure | within | between | between / within | pairs left out |", "|---|---|---|---|---|---|"]
    for subset, rows in summary["within_between"].items():
        for measure, row in rows.items():
            lines.append(f"| {subset} | {measure} | {row['within']:.3f} | {row['between']:.3f} | "
                         f"{row['ratio']:.2f} | {row.get('excluded_pairs', 0)} |")
    reasons = [f"- {name} #{i}: {why}" for name, row in summary["populations"].items()
               for i, why in enumerate(row["why_no_graph"]) if why]
    if reasons:
        lines += ["", "Networks without a full graph, and why:", *reasons]
    a = summary["agreement"]
    lines += ["", (f"Memory check (no finder) against the linear classification of the memory states: {a['agree']} "
                   f"of {a['of']} networks agree."), *[f"- disagreement: {d}" for d in a["disagreements"]]]
    return lines


if __name__ == "__main__":
    sys.exit(main())
