"""`ctrnn-jax analyze` for any task other than the 3-bit flip-flop: test-set scores, figures, the
fixed points at the task's constant inputs, and `report.md`.

The flip-flop keeps its own, fuller report (`_report.py`: the cube of memory states, robustness,
realizations). Here, for every task:

- `eval` on the task's test set (its own `score`: accuracy for the decision tasks);
- figures: training curves, test trials of the best member, its eigenvalues (CTRNN), its test
  trajectories in PCA space with its fixed points, and the Jacobian spectra at those points;
- fixed points of every member at each of `task.fixed_point_inputs()` (e.g. each context cue),
  from candidates on the member's own test trajectories: count, stable points, saddles by index.
"""

from pathlib import Path

import numpy as np

from .._files import atomic_write, write_json
from ..dynamics._config import FixedPointConfig
from ..dynamics._stage import fixed_point_stage
from ..training._evaluate import ensemble_outputs, ensemble_states


def fixed_point_summary(fixed_points, n_members: int) -> list[dict]:
    """Per member: number of fixed points, stable ones, saddles by index (`{index: count}`), and
    slow points (`tol_q < q <= slow_tol`: where the flow nearly stops without a fixed point)."""
    rows = []
    for k in range(n_members):
        sel = np.asarray(fixed_points.member) == k
        index = np.asarray(fixed_points.n_unstable)[sel]
        rows.append({"member": k, "points": int(sel.sum()), "stable": int(np.sum(index == 0)),
                     "saddles": {int(i): int(np.sum(index == i)) for i in sorted(set(index.tolist())) if i > 0},
                     "slow": int(np.sum(np.asarray(fixed_points.slow_member) == k))})
    return rows


def task_fixed_points(ensemble, task, *, inputs=None, config: FixedPointConfig | None = None, log=None) -> list:
    """`[(input (M,), FixedPoints), ...]`: the one fixed-point stage (`fixed_point_stage`) at each of the task's
    constant inputs (or `inputs`), with its candidates from the task's trials and the state space."""
    found = fixed_point_stage(ensemble, task, inputs=inputs, config=config, log=log)
    return [(np.asarray(fp.inputs[0]), fp) for fp in found]


def analyze_task_run(path, *, out_dir=None, seed: int = 0, log=print, config=None,
                     fp_config: FixedPointConfig | None = None) -> Path:
    """Make the figures, `analysis.json` and `report.md` for a run folder of any task (or an
    `ensemble.npz` with `config`, e.g. a flip-flop GRU). Returns the path of `report.md` (in
    `out_dir`, default the run folder, or `<npz stem>_report/` next to an npz file)."""
    from ..io._run import METRICS, RunConfig, evaluate_run, load_run_ensemble, read_losses
    from ._plot_ensemble import plot_training_curves
    from ._plot_network import plot_eigenvalues, plot_fixed_point_spectra
    from ._figure import save_figure
    from ._plot_task import plot_task_state_space, plot_task_trials
    path = Path(path)
    ensemble, stored = load_run_ensemble(path)
    config = config or stored or RunConfig()
    task = config.task
    out = Path(out_dir) if out_dir is not None else (path if path.is_dir() else path.with_name(path.stem + "_report"))
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    result = evaluate_run(ensemble, config)
    metric = np.asarray(result["metric"] if "metric" in result else -np.asarray(result["mse"]), np.float64)
    k_total = len(metric)
    best = int(np.nanargmax(np.where(np.isfinite(metric), metric, -np.inf)))
    inputs, targets, mask = (np.asarray(a) for a in task.test_set())
    outputs = np.asarray(ensemble_outputs(ensemble, inputs))  # (K, B, T, O)
    states = np.asarray(ensemble_states(ensemble, inputs))  # (K, B, T, N)
    written = {}
    losses = read_losses(path / METRICS, k_total) if path.is_dir() else None
    if losses is not None:
        written["training_curves"] = save_figure(plot_training_curves(losses), figs / "training_curves")
    order = _spread_trials(targets, mask)
    written["test_trials"] = save_figure(plot_task_trials(inputs[order], outputs[best][order], targets[order],
                                                          mask[order]), figs / "test_trials")
    if ensemble.recurrent_matrix is not None:  # a gated cell's W_rec stacks its gates
        written["eigenvalues"] = save_figure(plot_eigenvalues(np.asarray(ensemble.W_rec)[best]), figs / "eigenvalues")
    log("finding fixed points ...")
    found = task_fixed_points(ensemble, task, config=fp_config or FixedPointConfig(n_candidates=256, seed=seed))
    summaries = []
    answers = np.sign(np.sum(targets * (mask > 0), axis=(1, 2)))
    for i, (u, fps) in enumerate(found):
        fps.to_npz(out / f"fixed_points_{i}.npz")
        summaries.append({"input": u.tolist(), "per_member": fixed_point_summary(fps, k_total)})
        mine = fps.select(best)
        n = states.shape[-1]
        if len(mine) == 0 or mine.points.shape[1] == n:
            written[f"state_space_{i}"] = save_figure(plot_task_state_space(
                states[best], answers, fixed_points=mine,
                title=f"member {best}, fixed points at input {np.round(u, 3).tolist()}"), figs / f"state_space_{i}")
        written[f"fixed_point_spectra_{i}"] = save_figure(plot_fixed_point_spectra(mine),
                                                          figs / f"fixed_point_spectra_{i}")
    analysis = {"task": task.name, "eval": result, "best_member": best, "fixed_points": summaries}
    write_json(out / "analysis.json", analysis)
    report = out / "report.md"
    with atomic_write(report, "w") as f:
        f.write(_markdown(task, result, summaries, written, figs, out, best))
    return report


def _spread_trials(targets, mask, n: int = 6) -> np.ndarray:
    """Up to `n` test trials alternating between the answers (so both choices are shown)."""
    answers = np.sign(np.sum(targets * (mask > 0), axis=(1, 2)))
    groups = [np.flatnonzero(answers == a) for a in sorted(set(answers.tolist()))]
    picked = [g[i] for i in range(n) for g in groups if i < len(g)][:n]
    return np.asarray(picked, int)


def _markdown(task, result, summaries, written, figs, out, best) -> str:
    name = result.get("metric_name", "metric")
    compare = "<" if name == "mse" else ">="  # the flip-flop's success is a test MSE below the threshold
    lines = [f"# {task.name}: ensemble report", "",
             f"{result['n_success']} of {result['n_members']} members solve the task ({name} {compare} "
             f"{result['threshold']} on the {result['test_set']}). Best member: {best}.", "",
             f"| member | {name} | test MSE (masked) | success | " +
             " | ".join(f"fixed points at input {i} (stable / saddles by index; slow points)"
                        for i in range(len(summaries))) + " |",
             "|---|---|---|---|" + "---|" * len(summaries)]
    for k in range(result["n_members"]):
        cells = []
        for s in summaries:
            row = s["per_member"][k]
            saddles = ", ".join(f"{c} of index {i}" for i, c in row["saddles"].items()) or "none"
            cells.append(f"{row['points']} ({row['stable']} / {saddles}; {row.get('slow', 0)} slow)")
        lines.append(f"| {k} | {result.get('metric', result['mse'])[k]:.4f} | {result['mse'][k]:.4f} | "
                     f"{'yes' if result['success'][k] else 'no'} | " + " | ".join(cells) + " |")
    lines.append("")
    for i, s in enumerate(summaries):
        lines.append(f"Input {i}: `{np.round(s['input'], 4).tolist()}`.")
    lines.append("")
    for key, paths in written.items():
        png = [p for p in paths if str(p).endswith(".png")][0]
        lines += [f"![{key}]({Path(png).relative_to(out)})", ""]
    return "\n".join(lines)
