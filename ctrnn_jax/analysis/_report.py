"""`ctrnn-jax analyze`: every figure and analysis of the paper for a run folder or an `ensemble.npz`,
collected in `report.md` next to a `figures/` folder (PNG + PDF)."""

import dataclasses
import math
from pathlib import Path

import jax
import numpy as np

from .._files import atomic_write, write_json
from ..dynamics._cube import cube_analysis, ensemble_summary
from ..dynamics._fixed_points import FixedPoints
from ..tasks._flipflop import FlipFlopConfig, flipflop_test_set, sample_flipflop
from ..training._ensemble import get_member, make_ensemble
from ..training._evaluate import ensemble_outputs, ensemble_states, evaluate

REPORT = "report.md"


def _fmt(x, spec=".4f") -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def is_paper_case(ensemble, task) -> bool:
    """The 3-bit flip-flop (`task` None means the flip-flop), on any cell (CTRNN, GRU, LSTM, UGRNN): the
    paper's analyses apply (the cube of memory states); anything else gets the generic report
    (`_task_report`). Gated cells skip the `W_rec` figures (their `W_rec` stacks the gates' blocks)."""
    return task is None or (isinstance(task, FlipFlopConfig) and task.n_bits == 3)


def analyze_run(path: str | Path, *, out_dir: str | Path | None = None, seed: int = 0, log=print,
                fp_config=None, task=None, inputs=None) -> Path:
    """Make every figure and `report.md` for a run folder (or an `ensemble.npz`).

    A run folder's task is in its `config.json`. A bare `ensemble.npz` is analysed on `task` (a task
    or a registered name; the flip-flop gets `n_bits = M`), by default the 3-bit flip-flop when
    `M = O = 3`, otherwise without a task (`_network_report`: fixed points at the constant `inputs`,
    default zeros; see `task_for_ensemble`).

    Reuses the run's `fixed_points.npz` and `metrics.csv` when present (else finds the fixed points).
    Figures go to `OUT/figures/`; `OUT` is the run folder, or `<npz stem>_report/` next to an npz file.
    Returns the path of `report.md`.
    """
    from ..dynamics._config import FixedPointConfig
    from ..io._run import FIXED_POINTS, METRICS, load_run_ensemble, read_losses, write_fixed_points
    from . import _analysis as analysis
    from ._plot_ensemble import plot_robustness, plot_similarity_matrices, plot_training_curves
    from ._plot_flipflop import (
        plot_ensemble_overview,
        plot_realizations,
        plot_state_space,
        plot_task_samples,
        plot_test_set,
    )
    from ._figure import save_figure
    from ._plot_network import plot_connectivity, plot_eigenvalues, plot_fixed_point_spectra, plot_spectra_grid
    path = Path(path)
    ensemble, config = load_run_ensemble(path)
    if config is None:  # a bare ensemble.npz: the task given, else inferred from the sizes, else none
        from ..io._run import RunConfig, task_for_ensemble
        task = task_for_ensemble(ensemble, task)
        if task is None:
            from ._network_report import analyze_network
            return analyze_network(path, out_dir=out_dir, inputs=inputs, seed=seed, log=log, fp_config=fp_config)
    elif task is not None and (task if isinstance(task, str) else getattr(task, "name", None)) != config.task.name:
        raise ValueError(f"{path}: a run folder of the {config.task.name} task (config.json); `task` is for a "
                         "bare ensemble.npz.")
    if inputs is not None:
        raise ValueError("`inputs` is for a network without a task; with a task, its own fixed-point inputs are "
                         "used (`task.fixed_point_inputs()`).")
    if not is_paper_case(ensemble, config.task if config else task):
        from ._task_report import analyze_task_run  # any other task: its own, generic report
        return analyze_task_run(path, out_dir=out_dir, seed=seed, log=log, config=config or RunConfig(task=task),
                                fp_config=fp_config)
    run_dir = path if path.is_dir() else None
    out = Path(out_dir) if out_dir is not None else (run_dir if run_dir else path.with_name(path.stem + "_report"))
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    task = config.task if config else task
    threshold = config.threshold if config else 0.02
    k_total = ensemble.W_rec.shape[0]
    key = jax.random.key(seed)

    inputs, targets = flipflop_test_set(task)
    metrics = evaluate(ensemble, inputs, targets, threshold=threshold)
    states = np.asarray(ensemble_states(ensemble, inputs))[:, 0]  # (K, T, N)
    outputs = np.asarray(ensemble_outputs(ensemble, inputs))[:, 0]  # (K, T, O)
    fp_file = (run_dir / FIXED_POINTS) if run_dir else None
    if fp_file is not None and fp_file.is_file():
        fixed_points = FixedPoints.from_npz(fp_file)
    else:
        log("finding fixed points ...")
        fp_file = out / FIXED_POINTS
        write_fixed_points(ensemble, fp_file, task=task,
                           config=dataclasses.replace(fp_config or FixedPointConfig(seed=seed), eigvecs=True))
        fixed_points = FixedPoints.from_npz(fp_file)
    per_member = cube_analysis(fixed_points, ensemble, states)
    summary = ensemble_summary(per_member)
    W_rec = np.asarray(ensemble.W_rec)
    square = W_rec.shape[-1] == W_rec.shape[-2]  # a gated cell's W_rec stacks its gates: no W_rec spectra
    n_outside = np.sum(np.abs(np.linalg.eigvals(W_rec)) > 1, axis=1) if square else np.full(k_total, np.nan)
    fp_plot = fixed_points  # the LSTM's [h, c]: the state-space figures show h
    if fixed_points.points.shape[1] != states.shape[-1]:
        n = states.shape[-1]
        fp_plot = dataclasses.replace(fixed_points, points=fixed_points.points[:, :n], eigvecs=None if
                                      fixed_points.eigvecs is None else fixed_points.eigvecs[:, :n, :])
    order = np.argsort(np.where(np.isfinite(metrics["mse"]), metrics["mse"], np.inf))
    best = int(order[0])
    log(f"analysing {k_total} members; best member {best} (test MSE {metrics['mse'][best]:.4f})")

    written = {}
    x3, y3 = sample_flipflop(jax.random.fold_in(key, 1), task, 3)
    written["task"] = save_figure(plot_task_samples(np.asarray(x3), np.asarray(y3)), figs / "task_samples")
    if square:
        written["connectivity"] = save_figure(plot_connectivity(W_rec[best]), figs / "connectivity")
    initial = None
    if config is not None:
        k_model, _ = jax.random.split(jax.random.key(config.train.seed))
        initial = np.asarray(make_ensemble(config.ensemble, key=k_model).W_rec)[best]
    if square:
        written["eigenvalues"] = save_figure(plot_eigenvalues(W_rec[best], W_rec_initial=initial), figs / "eigenvalues")
        written["spectra"] = save_figure(plot_spectra_grid(W_rec), figs / "spectra_members")
    written["test_set"] = save_figure(plot_test_set(np.asarray(inputs[0]), outputs[best], np.asarray(targets[0])),
                                      figs / "test_set")
    W_out = np.asarray(get_member(ensemble, best).W_out)
    written["state_space"] = save_figure(plot_state_space(states[best], np.asarray(targets[0]),
                                                          fixed_points=fp_plot.select(best), W_out=W_out),
                                         figs / "state_space")
    shown = [int(k) for k in order[: min(4, k_total)]]
    written["realizations"] = save_figure(plot_realizations(
        [states[k] for k in shown], np.asarray(targets[0]),
        fixed_points_list=[fp_plot.select(k) for k in shown]), figs / "realizations")
    losses = read_losses(run_dir / METRICS, k_total) if run_dir else None
    if losses is not None:
        written["training"] = save_figure(plot_training_curves(losses, steps=np.arange(1, len(losses) + 1)),
                                          figs / "training_curves")
    written["fp_spectra"] = save_figure(plot_fixed_point_spectra(fixed_points.select(best)),
                                        figs / "fixed_point_spectra")
    disparity = np.asarray([d["cube_disparity"] for d in per_member], float)
    n_stable = np.asarray([d["n_stable"] for d in per_member])
    written["overview"] = save_figure(plot_ensemble_overview(metrics["mse"], n_stable, disparity, n_outside,
                                                             threshold=threshold), figs / "ensemble_overview")

    log("robustness sweep ...")
    robust = analysis.robustness_sweep(ensemble, key=jax.random.fold_in(key, 2), config=task, threshold=threshold)
    written["robustness"] = save_figure(plot_robustness(robust), figs / "robustness")
    comparison = analysis.compare_realizations(ensemble, fixed_points)
    written["comparison"] = save_figure(plot_similarity_matrices(comparison["procrustes"], comparison["cka"]),
                                        figs / "realization_similarity")

    results = {
        "threshold": threshold, "n_members": k_total, "n_success": int(metrics["success"].sum()),
        "mse": metrics["mse"].tolist(), "norm": metrics["norm"].tolist(), "success": metrics["success"].tolist(),
        "n_eigenvalues_outside_unit_circle": n_outside.tolist(), "cube_summary": summary,
        "robustness": {k: np.asarray(v).tolist() for k, v in robust.items()},
        "procrustes": np.asarray(comparison["procrustes"]).tolist(), "cka": np.asarray(comparison["cka"]).tolist(),
    }
    from ..io._run import _jsonable
    write_json(out / "analysis.json", _jsonable(results))
    report = _markdown(out, figs, written, metrics, per_member, summary, n_outside, robust, comparison, threshold,
                       best, path)
    with atomic_write(out / REPORT, "w") as f:
        f.write(report)
    return out / REPORT


def _markdown(out, figs, written, metrics, per_member, summary, n_outside, robust, comparison, threshold, best,
              source) -> str:
    def img(name, caption):
        if name not in written:
            return ""
        png = next(p for p in written[name] if str(p).endswith(".png"))
        return f"![{caption}]({Path(png).relative_to(out).as_posix()})\n\n*{caption}*\n\n"

    k = len(metrics["mse"])
    finite = metrics["mse"][np.isfinite(metrics["mse"])]
    lines = [f"# Analysis of `{source}`\n",
             "## Summary\n",
             "| quantity | value |", "|---|---|",
             f"| members | {k} |",
             f"| solve the task (test MSE < {threshold}) | {int(metrics['success'].sum())} of {k} |",
             f"| test MSE median (min–max) | {_fmt(float(np.median(finite)) if finite.size else math.nan)} "
             f"({_fmt(float(finite.min()) if finite.size else math.nan)}–"
             f"{_fmt(float(finite.max()) if finite.size else math.nan)}) |",
             f"| members with all 8 memory states (stable points at the 8 corners) | "
             f"{sum(1 for d in per_member if d['all_corners'])} of {k} |",
             f"| cube disparity median | {_fmt(summary.get('cube_disparity_median'))} |",
             f"| W_rec eigenvalues outside the unit circle, median | {_fmt(float(np.median(n_outside)), '.0f')} |",
             f"| best member | {best} |", ""]
    lines.append("## Per member\n")
    lines.append("| member | test MSE | norm | success | stable points | corners | saddles (index 1/2/3) "
                 "| cube disparity | eigenvalues of W_rec outside the unit circle |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for i, d in enumerate(per_member):
        s = d["n_saddles"]
        lines.append(f"| {i} | {_fmt(float(metrics['mse'][i]))} | {_fmt(float(metrics['norm'][i]), '.3f')} | "
                     f"{'yes' if metrics['success'][i] else 'no'} | {d['n_stable']} | {d['corners_recovered']}/8 | "
                     f"{s.get(1, 0)}/{s.get(2, 0)}/{s.get(3, 0)} | {_fmt(d['cube_disparity'])} | {_fmt(float(n_outside[i]), '.0f')} |")
    lines.append("")
    lines.append("## Figures\n")
    lines.append(img("task", "Three training samples: inputs per channel, target overlaid (paper Fig. 3)."))
    lines.append(img("test_set", f"The 8-memory-state test set with member {best}'s output (paper Fig. 6A)."))
    lines.append(img("state_space", f"Member {best}: activity on the test set in its top-3 PCs, coloured by memory "
                                    "state, with fixed points (paper Fig. 6C)."))
    lines.append(img("realizations", "Several realizations in their own top-3 PCs (paper Fig. 7)."))
    lines.append(img("connectivity", f"Recurrent weights of member {best} (paper Fig. 4 left)."))
    lines.append(img("eigenvalues", f"Eigenvalues of W_rec of member {best}, before and after training "
                                    "(paper Fig. 4 right)."))
    lines.append(img("spectra", "W_rec spectra across members (paper Fig. 5)."))
    lines.append(img("training", "Training loss per member; median highlighted."))
    lines.append(img("fp_spectra", f"Jacobian eigenvalues at member {best}'s fixed points, by saddle index."))
    lines.append(img("overview", "Ensemble overview: test MSE, stable points, cube disparity, W_rec eigenvalues "
                                 "outside the unit circle."))
    lines.append("## Robustness (paper 5.1)\n")
    lines.append("| input noise std | success rate |")
    lines.append("|---|---|")
    for level, rate in zip(robust["noise_levels"], robust["noise_success_rate"]):
        lines.append(f"| {float(level):g} | {float(rate):.2f} |")
    lines.append("")
    lines.append("| pulse amplitude scale | success rate |")
    lines.append("|---|---|")
    for level, rate in zip(robust["amplitude_scales"], robust["amplitude_success_rate"]):
        lines.append(f"| {float(level):g} | {float(rate):.2f} |")
    lines.append("")
    lines.append(img("robustness", "Test MSE against input noise and pulse amplitude, every member."))
    lines.append("## Comparing realizations\n")
    lines.append("Procrustes disparity between members' 8 memory states (in each member's top-3 PCs; 0 = same "
                 "geometry up to rotation, scale and translation) and linear CKA of the test-set activity "
                 "(1 = same representation up to rotation and scale).\n")
    lines.append(img("comparison", "Pairwise Procrustes disparity and linear CKA between members."))
    return "\n".join(lines) + "\n"
