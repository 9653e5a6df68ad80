"""`ctrnn-jax fixed-points` and `analyze` for a network without a task: a bare `ensemble.npz` of any
shape (e.g. imported from Keras) whose run folder, and so whose task, is unknown.

With no task there is no test set and no score. What remains is the network's dynamics at a constant
input `u` (default zeros):

- candidate states from each member's own trajectories under *probe trials*: `u` plus Gaussian noise
  for the first half of each trial, then `u` alone, so that the network relaxes towards its
  attractors at `u`;
- every member's fixed points at `u` from those candidates, linearized (stable points, saddles by
  index, slow points);
- figures (the eigenvalues of `W_rec`, the probe trajectories in their top-2 principal components
  with the fixed points, the Jacobian spectra at the fixed points) and `report.md`, for member 0
  unless another is chosen.
"""

import os
from pathlib import Path
from typing import TYPE_CHECKING

import jax
import numpy as np

from .._checks import check_int
from .._files import atomic_write, write_json
from ..dynamics._config import FixedPointConfig
from ..dynamics._stage import constant_inputs, fixed_point_stage, probe_trials
from ..training._evaluate import ensemble_states
from ._figure import _array, _check_fixed_points, _figure_or_axes, _finish_pc_plane, _save, pca_projection, save_figure
from ._task_report import fixed_point_summary

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def network_fixed_points(ensemble, inputs=None, *, config: FixedPointConfig | None = None, log=None) -> list:
    """`[(input (M,), FixedPoints), ...]`: the one fixed-point stage (`fixed_point_stage`) of a network without a
    task at each constant input (`inputs`: None for zeros, `(M,)` or `(P, M)`), with its candidates from probe
    trials and the state space."""
    found = fixed_point_stage(ensemble, None, inputs=inputs, config=config, log=log)
    return [(np.asarray(fp.inputs[0]), fp) for fp in found]


def plot_probe_state_space(states: object, path: str | os.PathLike | None = None, *, fixed_points: object = None,
                           title: str | None = None, ax: "Axes | None" = None) -> "Figure":
    """Probe trajectories of one member in their top-2 principal components (the noisy first halves
    light, the relaxing second halves dark), with the fixed points (stable: filled; saddles: open).

    **Arguments:**

    - `states`: `(B, T, N)` hidden states on the probe trials.
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).
    - `fixed_points`: `None` or a `FixedPoints` of this member (its `points` are `(P, N)`).
    - `title`: `None` or the panel's title.
    - `ax`: `None` (a new figure) or a matplotlib `Axes` to draw into (of any figure).

    **Returns:** the `Figure` (with `ax`, the one holding it); with `path`, also written as PNG and PDF
    (see `save_figure`).
    """
    states = _array("states", states, 3, "(B, T, N)")
    b, t, n = states.shape
    if fixed_points is not None:
        _check_fixed_points("fixed_points", fixed_points, n)
    mean, comps = pca_projection(states.reshape(b * t, n), min(2, n))
    fig, ax = _figure_or_axes(ax, 5.6, 4.6)
    for i in range(min(b, 40)):
        p = (states[i] - mean) @ comps.T
        ax.plot(p[: t // 2 + 1, 0], p[: t // 2 + 1, -1], lw=0.5, alpha=0.3, color="tab:blue",
                label="driven (input + noise)" if i == 0 else None)
        ax.plot(p[t // 2:, 0], p[t // 2:, -1], lw=0.8, alpha=0.7, color="tab:red",
                label="relaxing (constant input)" if i == 0 else None)
    _finish_pc_plane(ax, fixed_points, n, mean, comps, title)
    return _save(fig, path)


def analyze_network(path, *, out_dir=None, inputs=None, seed: int = 0, member: int = 0, log=print,
                    fp_config: FixedPointConfig | None = None) -> Path:
    """Figures, `analysis.json` and `report.md` for an `ensemble.npz` without a task: every member's
    fixed points at each constant input (`inputs`: None for zeros, `(M,)` or `(P, M)`), with figures
    of `member`. Writes to `out_dir` (default `<npz stem>_report/` next to the file); returns the path
    of `report.md`."""
    from ..io._serialisation import load_npz
    from ._plot_network import plot_eigenvalues, plot_fixed_point_spectra
    path = Path(path)
    ensemble = load_npz(path)
    k_total, m = ensemble.W_in.shape[0], ensemble.W_in.shape[-1]
    check_int("member", member, 0)
    if member >= k_total:
        raise ValueError(f"`member` must be < K = {k_total}, got {member}.")
    constants = constant_inputs(ensemble, None, inputs)
    out = Path(out_dir) if out_dir is not None else path.with_name(path.stem + "_report")
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    cell = ensemble.cell
    written = {}
    spectral = None
    if ensemble.recurrent_matrix is not None:  # a gated cell's W_rec stacks its gates
        eig = np.abs(np.linalg.eigvals(np.asarray(ensemble.W_rec, np.float64)))
        spectral = {"spectral_radius": eig.max(axis=1).tolist(), "outside_unit_circle": (eig > 1).sum(1).tolist()}
        written["eigenvalues"] = save_figure(plot_eigenvalues(np.asarray(ensemble.W_rec)[member]), figs / "eigenvalues")
    log("finding fixed points ...")
    config = fp_config or FixedPointConfig(n_candidates=256, seed=seed)
    found = network_fixed_points(ensemble, constants, config=config)
    summaries = []
    for i, (u, fps) in enumerate(found):
        fps.to_npz(out / f"fixed_points_{i}.npz")
        summaries.append({"input": u.tolist(), "per_member": fixed_point_summary(fps, k_total)})
        mine = fps.select(member)
        trials = probe_trials(u, key=jax.random.split(jax.random.fold_in(jax.random.key(config.seed), i), 3)[0])
        states = np.asarray(ensemble_states(ensemble, trials))[member]
        if len(mine) == 0 or mine.points.shape[1] == states.shape[-1]:  # (an LSTM's points are [h, c])
            written[f"state_space_{i}"] = save_figure(plot_probe_state_space(
                states, fixed_points=mine,
                title=f"member {member}, fixed points at input {np.round(u, 3).tolist()}"), figs / f"state_space_{i}")
        written[f"fixed_point_spectra_{i}"] = save_figure(plot_fixed_point_spectra(mine),
                                                          figs / f"fixed_point_spectra_{i}")
    analysis = {"task": None, "cell": cell, "members": k_total, "inputs": m, "units": ensemble.W_rec.shape[-1],
                "outputs": ensemble.W_out.shape[-2], "figures_member": member, "fixed_points": summaries,
                **({"W_rec": spectral} if spectral else {})}
    write_json(out / "analysis.json", analysis)
    report = out / "report.md"
    with atomic_write(report, "w") as f:
        f.write(_markdown(path, analysis, summaries, spectral, written, out))
    return report


def _markdown(source, analysis, summaries, spectral, written, out) -> str:
    lines = [f"# Analysis of `{source}` (no task)", "",
             f"{analysis['members']} member(s) of {analysis['cell']} with M = {analysis['inputs']} inputs, "
             f"N = {analysis['units']} units, O = {analysis['outputs']} outputs. No run folder and no task: no "
             "test set and no score; the fixed points at each constant input below were found from each "
             "member's trajectories under probe trials (the input plus noise, then the input alone). Give "
             "`--task NAME` to analyse the network on a task.", "",
             ("| member | " + ("spectral radius of W_rec | eigenvalues outside the unit circle | " if spectral else "")
              + " | ".join(f"fixed points at input {i} (stable / saddles by index; slow points)"
                           for i in range(len(summaries))) + " |"),
             "|---|" + ("---|---|" if spectral else "") + "---|" * len(summaries)]
    for k in range(analysis["members"]):
        cells = [f"{spectral['spectral_radius'][k]:.3f}", str(spectral["outside_unit_circle"][k])] if spectral else []
        for s in summaries:
            row = s["per_member"][k]
            saddles = ", ".join(f"{c} of index {i}" for i, c in row["saddles"].items()) or "none"
            cells.append(f"{row['points']} ({row['stable']} / {saddles}; {row['slow']} slow)")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines.append("")
    for i, s in enumerate(summaries):
        lines.append(f"Input {i}: `{np.round(s['input'], 4).tolist()}`.")
    lines.append("")
    for name, paths in written.items():
        png = next(p for p in paths if str(p).endswith(".png"))
        lines += [f"![{name}]({Path(png).relative_to(out).as_posix()})", ""]
    return "\n".join(lines)
