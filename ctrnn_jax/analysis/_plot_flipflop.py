"""Figures of the flip-flop study (Jarne's paper, Figs. 3-7): task samples, the test set, the state
space with its memory states and fixed points, realizations side by side, an ensemble overview.

Conventions (shapes, the returned `Figure`, optional PNG+PDF, `ax=`, lazy matplotlib) are those of
`_figure.py`.
"""

import os
from typing import TYPE_CHECKING

import numpy as np

from ..dynamics._fixed_point_set import FixedPoints
from ._figure import (
    _AMP,
    _INDEX_COLOURS,
    _INDEX_MARKERS,
    _TIME,
    _array,
    _check_fixed_points,
    _explained,
    _figure,
    _figure_or_axes,
    _same,
    _save,
    pca_projection,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _memory_states(targets: np.ndarray) -> np.ndarray:
    """`(T,)` int: the sign pattern of the targets as a binary number (bit i: target i > 0); -1 where
    any target is 0 (undefined memory state)."""
    bits = (targets > 0).astype(int)
    code = np.sum(bits * (1 << np.arange(targets.shape[1])), axis=1)
    return np.where(np.any(targets == 0, axis=1), -1, code)


def _state_label(code: int, n_bits: int) -> str:
    return " ".join("+" if code >> i & 1 else "−" for i in range(n_bits))


def _state_colours(n: int) -> list:
    """`n` distinct colours for the memory states, avoiding grey (used for undefined steps)."""
    import matplotlib

    if n <= 9:
        tab10 = matplotlib.colormaps["tab10"]
        return [tab10(i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)[:n]]
    return [matplotlib.colormaps["viridis"](i / (n - 1)) for i in range(n)]


def _draw_state_space(ax, states, targets, fixed_points, W_out, *, legend: str | None, title: str | None = None):
    """The 3-D PCA view of `plot_state_space` on a 3-D axis `ax`; `legend`: `"figure"` (right of the
    figure), `"axes"` (beside `ax`) or None."""
    x = states.astype(np.float64)
    mean, comps = pca_projection(x, 3)
    proj = (x - mean) @ comps.T
    codes = _memory_states(targets)
    n_bits = targets.shape[1]
    colours = _state_colours(2**n_bits)
    ax.plot(proj[:, 0], proj[:, 1], proj[:, 2], color="0.8", lw=0.4, zorder=1)
    undefined = codes < 0
    if np.any(undefined):
        ax.scatter(*proj[undefined].T, s=3, color="0.6", label="undefined", depthshade=False)
    for code in np.unique(codes[~undefined]):
        sel = codes == code
        ax.scatter(*proj[sel].T, s=4, color=colours[code], label=_state_label(int(code), n_bits), depthshade=False)
    scale = 0.06 * float(np.max(np.ptp(proj, axis=0))) if len(proj) > 1 else 1.0

    if fixed_points is not None and len(fixed_points):
        fp = fixed_points
        p = (fp.points.astype(np.float64) - mean) @ comps.T
        stable = fp.n_unstable == 0
        if np.any(stable):
            ax.scatter(*p[stable].T, s=22, color="black", marker="o", label="stable", depthshade=False, zorder=5)
        eigvecs = fp.eigvecs
        for index in sorted(set(fp.n_unstable[~stable].tolist())):
            sel = fp.n_unstable == index
            ax.scatter(
                *p[sel].T,
                s=18,
                facecolors="none",
                edgecolors=_INDEX_COLOURS.get(index, "tab:red"),
                lw=0.8,
                marker=_INDEX_MARKERS.get(index, "p"),
                label=f"saddle, index {index}",
                depthshade=False,
                zorder=5,
            )
        saddles = np.flatnonzero(~stable)
        if saddles.size:
            if eigvecs is None:  # e.g. a FixedPoints saved without eigenvectors: recompute them
                eigvals, vecs = np.linalg.eig(fp.jacobians[saddles].astype(np.float64))
            else:
                eigvals, vecs = fp.eigvals[saddles], eigvecs[saddles]
            for j, i in enumerate(saddles):
                for col in np.flatnonzero(np.abs(eigvals[j]) > 1):
                    v = np.real(vecs[j][: comps.shape[1], col])  # the hidden part (the LSTM's [h, c])
                    norm = np.linalg.norm(v)
                    if norm == 0:
                        continue
                    dv = (comps @ (v / norm)) * scale
                    seg = np.stack([p[i] - dv, p[i] + dv])
                    ax.plot(
                        *seg.T, color=_INDEX_COLOURS.get(int(fp.n_unstable[i]), "tab:red"), lw=0.7, alpha=0.7, zorder=4
                    )

    if W_out is not None:
        for o, w in enumerate(W_out):
            d = comps @ (w / np.linalg.norm(w)) if np.linalg.norm(w) > 0 else np.zeros(3)
            d = d * 4.0 * scale / max(float(np.linalg.norm(d)), 1e-12)
            ax.quiver(0, 0, 0, *d, color="tab:red", lw=1.2, arrow_length_ratio=0.15)
            ax.text(*(1.15 * d), f"$W_{{out}}$ row {o + 1}", color="tab:red", fontsize=7)

    ev = _explained(x, mean, comps)
    for setter, k in ((ax.set_xlabel, 0), (ax.set_ylabel, 1), (ax.set_zlabel, 2)):
        setter(f"PC {k + 1} ({100 * ev[k]:.0f}%)", fontsize=8, labelpad=-2)
    ax.tick_params(labelsize=6, pad=-2)
    ax.set_box_aspect(None, zoom=0.85)  # room for the axis labels
    if title:
        ax.set_title(title, fontsize=9)
    if legend:
        options = dict(
            fontsize=7,
            markerscale=1.5,
            frameon=False,
            title="memory state (bits 1-3)\nand fixed points",
            title_fontsize=7,
        )
        if legend == "figure":
            ax.figure.legend(*ax.get_legend_handles_labels(), loc="outside right upper", **options)
        else:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), **options)


def plot_task_samples(inputs: object, targets: object, path: str | os.PathLike | None = None) -> "Figure":
    """Training samples (paper Fig. 3): one column per sample (the first three), one row per channel,
    the input pulses with the target overlaid.

    **Arguments:**

    - `inputs`: array of shape `(S, T, M)`, the input series of `S >= 1` samples.
    - `targets`: array of shape `(S, T, O)`, their targets.
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).

    **Returns:** the `Figure`; with `path`, also written as PNG and PDF (see `save_figure`).
    """
    inputs = _array("inputs", inputs, 3, "(S, T, M)")
    targets = _array("targets", targets, 3, "(S, T, O)")
    _same(("inputs", "targets"), (inputs.shape[:2], targets.shape[:2]), "(S, T, ...) with the same S and T")
    s = min(3, inputs.shape[0])
    rows = max(inputs.shape[2], targets.shape[2])
    fig = _figure(3.2 * s + 0.6, 1.5 * rows + 0.6)
    axes = fig.subplots(rows, s, sharex=True, sharey=True, squeeze=False)
    t = np.arange(inputs.shape[1])
    for c in range(s):
        axes[0, c].set_title(f"sample {c + 1}", fontsize=9)
        for r in range(rows):
            ax = axes[r, c]
            if r < inputs.shape[2]:
                ax.plot(t, inputs[c, :, r], color=f"C{r}", lw=0.9, label="input")
            if r < targets.shape[2]:
                ax.plot(t, targets[c, :, r], color="black", lw=1.2, ls="--", label="target")
            if c == 0:
                ax.set_ylabel(f"channel {r + 1}\n{_AMP}", fontsize=8)
        axes[-1, c].set_xlabel(_TIME, fontsize=8)
    axes[0, -1].legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def plot_test_set(inputs: object, outputs: object, targets: object, path: str | os.PathLike | None = None) -> "Figure":
    """The 8-memory-state test set (paper Fig. 6A): per channel, the input pulses, the network's
    output and the target.

    **Arguments:**

    - `inputs`: array of shape `(T, 3)` (in general `(T, C)`), one trial's inputs.
    - `outputs`: array of shape `(T, 3)`, the network's outputs on it.
    - `targets`: array of shape `(T, 3)`, the targets.
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).

    **Returns:** the `Figure`; with `path`, also written as PNG and PDF (see `save_figure`).
    """
    inputs = _array("inputs", inputs, 2, "(T, 3)")
    outputs = _array("outputs", outputs, 2, "(T, 3)")
    targets = _array("targets", targets, 2, "(T, 3)")
    _same(("inputs", "outputs"), (inputs.shape, outputs.shape), "(T, 3)")
    _same(("inputs", "targets"), (inputs.shape, targets.shape), "(T, 3)")
    c = inputs.shape[1]
    fig = _figure(8.0, 1.6 * c + 0.7)
    axes = fig.subplots(c, 1, sharex=True, squeeze=False)[:, 0]
    t = np.arange(inputs.shape[0])
    for i, ax in enumerate(axes):
        ax.fill_between(t, inputs[:, i], color=f"C{i}", alpha=0.35, lw=0, label="input")
        ax.plot(t, targets[:, i], color="black", lw=1.0, ls="--", label="target")
        ax.plot(t, outputs[:, i], color="tab:red", lw=1.2, label="output")
        ax.set_ylabel(f"channel {i + 1}\n{_AMP}", fontsize=8)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=3, fontsize=8, frameon=False)
    axes[-1].set_xlabel(_TIME)
    return _save(fig, path)


def plot_state_space(
    states: object,
    targets: object,
    path: str | os.PathLike | None = None,
    *,
    fixed_points: FixedPoints | None = None,
    W_out: object = None,
    ax: "Axes | None" = None,
) -> "Figure":
    """The activity on the test set in its top-3 principal components (paper Fig. 6C), coloured by
    memory state, with the fixed points projected on the same components.

    Memory state: the sign pattern of the targets (steps where any target is 0 are grey). Stable
    fixed points are filled black dots; saddles are hollow, with one marker and colour per index,
    and short lines along their unstable eigenvectors (real parts; the eigenvectors are recomputed
    from the Jacobians if `fixed_points.eigvecs` is `None`).

    **Arguments:**

    - `states`: array of shape `(T, N)`, one member's activity on the test set.
    - `targets`: array of shape `(T, 3)` (in general `(T, O)`), the test-set targets.
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).
    - `fixed_points`: `None` or the `FixedPoints` of this member (`fixed_points.select(k)`).
    - `W_out`: `None` or the readout `(O, N)`; its rows are drawn as arrows from the mean state.
    - `ax`: `None` (a new figure, the legend on its right) or a 3-D matplotlib axes to draw into (of any
      figure; `fig.add_subplot(projection="3d")`), the legend beside it; any other axes is a `ValueError`.

    **Returns:** the `Figure` (with `ax`, the one holding it); with `path`, also written as PNG and PDF
    (see `save_figure`).
    """
    states = _array("states", states, 2, "(T, N)")
    targets = _array("targets", targets, 2, "(T, 3)")
    if states.shape[0] != targets.shape[0]:
        raise ValueError(
            f"`states` (T, N) and `targets` (T, 3) must have the same T, got {states.shape} and {targets.shape}."
        )
    if states.shape[1] < 3:
        raise ValueError(f"`states` must be an array of shape (T, N) with N >= 3, got shape {states.shape}.")
    if fixed_points is not None:
        _check_fixed_points("fixed_points", fixed_points, states.shape[1])
    if W_out is not None:
        W_out = _array("W_out", W_out, 2, "(O, N)").astype(np.float64)
        if W_out.shape[1] != states.shape[1]:
            raise ValueError(f"`W_out` must be an array of shape (O, N = {states.shape[1]}), got shape {W_out.shape}.")
    legend = "figure" if ax is None else "axes"
    fig, ax = _figure_or_axes(ax, 7.0, 5.2, projection="3d")
    _draw_state_space(
        ax,
        states,
        targets,
        fixed_points,
        W_out,
        legend=legend,
        title="test-set activity in its top-3 principal components",
    )
    return _save(fig, path)


def plot_realizations(
    states_list: list,
    targets: object,
    path: str | os.PathLike | None = None,
    *,
    fixed_points_list: list | None = None,
    max_members: int = 4,
) -> "Figure":
    """The state-space view of `plot_state_space` for several members side by side (paper Fig. 7),
    each in its own principal components.

    **Arguments:**

    - `states_list`: a list of `(T, N)` arrays, each member's activity on the test set (N may differ).
    - `targets`: array of shape `(T, 3)`, the test-set targets.
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).
    - `fixed_points_list`: `None` or a list as long as `states_list` of `FixedPoints` (one member
      each, `fixed_points.select(k)`) or `None`.
    - `max_members`: plot the first `min(len(states_list), max_members)` members (>= 1).

    **Returns:** the `Figure`; with `path`, also written as PNG and PDF (see `save_figure`).
    """
    if isinstance(states_list, np.ndarray) and states_list.ndim == 3:
        states_list = list(states_list)
    if not isinstance(states_list, (list, tuple)) or not states_list:
        raise ValueError(f"`states_list` must be a non-empty list of (T, N) arrays, got {type(states_list).__name__}.")
    if isinstance(max_members, bool) or not isinstance(max_members, int) or max_members < 1:
        raise ValueError(f"`max_members` must be an int >= 1, got {max_members!r}.")
    targets = _array("targets", targets, 2, "(T, 3)")
    states = []
    for i, s in enumerate(states_list):
        s = _array(f"states_list[{i}]", s, 2, "(T, N)")
        if s.shape[0] != targets.shape[0] or s.shape[1] < 3:
            raise ValueError(
                f"`states_list[{i}]` must be an array of shape (T = {targets.shape[0]}, N >= 3), got shape {s.shape}."
            )
        states.append(s)
    if fixed_points_list is not None:
        if not isinstance(fixed_points_list, (list, tuple)) or len(fixed_points_list) != len(states):
            raise ValueError(
                f"`fixed_points_list` must be a list of {len(states)} FixedPoints (or None entries), "
                f"one per entry of `states_list`."
            )
        for i, fp in enumerate(fixed_points_list):
            if fp is not None:
                _check_fixed_points(f"fixed_points_list[{i}]", fp, states[i].shape[1])
    k = min(len(states), max_members)
    fig = _figure(3.6 * k + 1.6, 4.0)
    for i in range(k):
        ax = fig.add_subplot(1, k, i + 1, projection="3d")
        fp = None if fixed_points_list is None else fixed_points_list[i]
        _draw_state_space(
            ax, states[i], targets, fp, None, legend="figure" if i == k - 1 else None, title=f"member {i}"
        )
    return _save(fig, path)


def plot_ensemble_overview(
    test_mse: object,
    n_stable: object,
    cube_disparity: object,
    n_eig_outside: object,
    path: str | os.PathLike | None = None,
    *,
    threshold: float = 0.02,
) -> "Figure":
    """Distributions over the members of four per-member numbers, as strip plots with the median.

    **Arguments:**

    - `test_mse`: array of shape `(K,)`, each member's test-set MSE (log axis; non-positive values
      are clipped for display).
    - `n_stable`: array of shape `(K,)`, its number of stable fixed points.
    - `cube_disparity`: array of shape `(K,)`, its Procrustes disparity to a cube (NaN: no cube; such
      members are counted in the panel title).
    - `n_eig_outside`: array of shape `(K,)`, its number of `W_rec` eigenvalues outside the unit circle.
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).
    - `threshold`: the success threshold on the MSE, drawn as a line.

    **Returns:** the `Figure`; with `path`, also written as PNG and PDF (see `save_figure`).
    """
    from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator

    names = ("test_mse", "n_stable", "cube_disparity", "n_eig_outside")
    arrays = [
        _array(n, a, 1, "(K,)").astype(np.float64)
        for n, a in zip(names, (test_mse, n_stable, cube_disparity, n_eig_outside))
    ]
    for n, a in zip(names[1:], arrays[1:]):
        _same(("test_mse", n), (arrays[0].shape, a.shape), "(K,)")
    k = arrays[0].shape[0]
    rng = np.random.default_rng(0)
    jitter = rng.uniform(-0.25, 0.25, k)
    fig = _figure(8.0, 5.2)
    axes = fig.subplots(2, 2).ravel()
    mse = arrays[0]
    success = mse <= threshold
    labels = (
        "test MSE (arb. units², log)",
        "number of stable fixed points",
        "cube disparity (Procrustes, 0 = cube)",
        "eigenvalues of $W_{rec}$ outside unit circle",
    )
    for i, (ax, values, label) in enumerate(zip(axes, arrays, labels)):
        finite = np.isfinite(values)
        if i == 0:
            positive = finite & (values > 0)
            values = np.where(positive, values, np.nan)
            finite = positive
        if np.any(finite):
            ax.scatter(
                values[finite & success], jitter[finite & success], s=30, color="tab:blue", label="success", alpha=0.8
            )
            ax.scatter(
                values[finite & ~success], jitter[finite & ~success], s=30, color="tab:red", marker="x", label="failure"
            )
            ax.axvline(np.median(values[finite]), color="black", lw=1.0, ls=":", label="median")
        n_missing = int(np.sum(~finite))
        title = f"{int(np.sum(finite))} members" + (f" ({n_missing} without a value)" if n_missing else "")
        ax.set_title(title, fontsize=8)
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylim(-0.6, 0.6)
        ax.set_yticks([])
        if i in (1, 3):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if i == 0:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.axvline(threshold, color="tab:green", lw=1.2, ls="--", label=f"threshold {threshold:g}")
            ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"ensemble overview: {int(success.sum())} of {k} members with MSE <= {threshold:g}", fontsize=10)
    return _save(fig, path)
