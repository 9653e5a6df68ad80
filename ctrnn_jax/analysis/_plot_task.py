"""Figures for any task: test trials with their loss mask, and the PCA state space of the trials with
the fixed points found at the task's inputs.

Conventions (shapes, the returned `Figure`, optional PNG+PDF, `ax=`, lazy matplotlib) are those of
`_figure.py`.
"""

import os
from typing import TYPE_CHECKING

import numpy as np

from ._figure import (
    _AMP,
    _array,
    _check_fixed_points,
    _figure,
    _figure_or_axes,
    _finish_pc_plane,
    _same,
    _save,
    pca_projection,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_task_trials(
    inputs: object,
    outputs: object,
    targets: object,
    mask: object,
    path: str | os.PathLike | None = None,
    *,
    max_trials: int = 6,
) -> "Figure":
    """Test trials of any task: each trial's input channels, and its output against the target,
    with the steps the loss ignores (mask 0) shaded grey.

    **Arguments:**

    - `inputs`: `(B, T, M)`; `outputs`, `targets`, `mask`: `(B, T, O)` (one member's outputs).
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).
    - `max_trials`: at most this many trials (the first ones) are drawn, one column each.

    **Returns:** the `Figure`; with `path`, also written as PNG and PDF (see `save_figure`).
    """
    inputs = _array("inputs", inputs, 3, "(B, T, M)")
    outputs = _array("outputs", outputs, 3, "(B, T, O)")
    targets = _array("targets", targets, 3, "(B, T, O)")
    mask = _array("mask", mask, 3, "(B, T, O)")
    _same(("outputs", "targets"), (outputs.shape, targets.shape), "(B, T, O)")
    _same(("outputs", "mask"), (outputs.shape, mask.shape), "(B, T, O)")
    if inputs.shape[:2] != outputs.shape[:2]:
        raise ValueError(f"`inputs` {inputs.shape} and `outputs` {outputs.shape} must share B and T.")
    n = min(int(max_trials), inputs.shape[0])
    if n < 1:
        raise ValueError(f"`max_trials` must be >= 1, got {max_trials}.")
    fig = _figure(2.6 * n + 0.6, 4.2)
    axes = fig.subplots(2, n, sharex=True, sharey="row", squeeze=False)
    t = np.arange(inputs.shape[1])
    for j in range(n):
        top, bottom = axes[0, j], axes[1, j]
        for c in range(inputs.shape[2]):
            top.plot(t, inputs[j, :, c], lw=0.9, color=f"C{c}", label=f"input {c + 1}")
        ignored = mask[j, :, 0] == 0
        bottom.fill_between(t, -1.5, 1.5, where=ignored, color="0.85", lw=0, step="mid", label="not scored")
        for o in range(outputs.shape[2]):
            bottom.plot(t, targets[j, :, o], color="black", ls="--", lw=1.0, label="target" if o == 0 else None)
            bottom.plot(t, outputs[j, :, o], color="tab:red", lw=1.2, label="output" if o == 0 else None)
        top.set_title(f"trial {j}", fontsize=9)
        bottom.set_xlabel("time (steps)")
    axes[0, 0].set_ylabel(f"input\n{_AMP}", fontsize=8)
    axes[1, 0].set_ylabel(f"output\n{_AMP}", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    h2, l2 = axes[1, 0].get_legend_handles_labels()
    fig.legend(
        handles + h2, labels + l2, loc="outside upper center", ncols=len(labels) + len(l2), fontsize=8, frameon=False
    )
    return _save(fig, path)


def plot_task_state_space(
    states: object,
    groups: object,
    path: str | os.PathLike | None = None,
    *,
    fixed_points: object = None,
    title: str | None = None,
    group_names=None,
    ax: "Axes | None" = None,
) -> "Figure":
    """Test trajectories of one member in their top-2 principal components, coloured by the trial's group (the
    task's `trial_groups`: e.g. the correct answer, the action, a condition), with the fixed points (stable:
    filled; saddles: open) when given.

    **Arguments:**

    - `states`: `(B, T, N)` hidden states on the test trials.
    - `groups`: `(B,)` each trial's group (numbers, e.g. ±1 answers, or labels 0, 1, ...).
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).
    - `fixed_points`: `None` or a `FixedPoints` of this member (its `points` are `(P, N)`).
    - `title`: `None` or the panel's title.
    - `group_names`: `None` (legend `answer +1`, `answer −1`, ...: the groups are answers) or the legend name of
      each distinct group value, in sorted order of the values.
    - `ax`: `None` (a new figure) or a matplotlib `Axes` to draw into (of any figure).

    **Returns:** the `Figure` (with `ax`, the one holding it); with `path`, also written as PNG and PDF
    (see `save_figure`).
    """
    states = _array("states", states, 3, "(B, T, N)")
    groups = np.asarray(groups).reshape(-1)
    if groups.shape[0] != states.shape[0]:
        raise ValueError(f"`groups` must have B = {states.shape[0]} entries, got {groups.shape[0]}.")
    values = sorted(set(groups.tolist()))
    names = [f"answer {v:+g}" for v in values] if group_names is None else [str(n) for n in group_names]
    if len(names) != len(values):
        raise ValueError(f"`group_names` must name each of the {len(values)} group(s) {values}, got {len(names)}.")
    colours = (
        "tab:blue",
        "tab:orange",
        "tab:green",
        "tab:purple",
        "tab:red",
        "tab:brown",
        "tab:pink",
        "tab:gray",
        "tab:olive",
        "tab:cyan",
    )
    fig, ax, mean, comps = _pc_plane(states, fixed_points, ax)
    for j, value in enumerate(values):
        members = np.flatnonzero(groups == value)
        for i in members[:40]:
            p = (states[i] - mean) @ comps.T
            ax.plot(
                p[:, 0],
                p[:, -1],
                lw=0.6,
                alpha=0.5,
                color=colours[j % len(colours)],
                label=f"{names[j]} ({len(members)} trials)" if i == members[0] else None,
            )
    _finish_pc_plane(ax, fixed_points, states.shape[-1], mean, comps, title)
    return _save(fig, path)


def _pc_plane(states: np.ndarray, fixed_points, ax):
    """What both state-space planes start with: the fixed points checked against `(B, T, N)` states, the top-2
    principal axes of the states, and the panel: `(fig, ax, mean, comps)`."""
    b, t, n = states.shape
    if fixed_points is not None:
        _check_fixed_points("fixed_points", fixed_points, n)
    mean, comps = pca_projection(states.reshape(b * t, n), min(2, n))
    fig, ax = _figure_or_axes(ax, 5.6, 4.6)
    return fig, ax, mean, comps


def plot_probe_state_space(
    states: object,
    path: str | os.PathLike | None = None,
    *,
    fixed_points: object = None,
    title: str | None = None,
    ax: "Axes | None" = None,
) -> "Figure":
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
    fig, ax, mean, comps = _pc_plane(states, fixed_points, ax)
    for i in range(min(b, 40)):
        p = (states[i] - mean) @ comps.T
        ax.plot(
            p[: t // 2 + 1, 0],
            p[: t // 2 + 1, -1],
            lw=0.5,
            alpha=0.3,
            color="tab:blue",
            label="driven (input + noise)" if i == 0 else None,
        )
        ax.plot(
            p[t // 2 :, 0],
            p[t // 2 :, -1],
            lw=0.8,
            alpha=0.7,
            color="tab:red",
            label="relaxing (constant input)" if i == 0 else None,
        )
    _finish_pc_plane(ax, fixed_points, n, mean, comps, title)
    return _save(fig, path)
