"""Figures that summarise an ensemble: training curves, the robustness sweep, and the similarity
matrices between realizations.

Conventions (shapes, the returned `Figure`, optional PNG+PDF, `ax=`, lazy matplotlib) are those of
`_figure.py`.
"""

import os
import warnings
from typing import TYPE_CHECKING

import numpy as np

from ._figure import _array, _figure, _figure_or_axes, _save

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _held_at_last(losses: np.ndarray) -> np.ndarray:
    """`(S, K)` losses with each member's NaN steps after its last finite loss filled with that loss (a member
    held at the criterion, or stopped, counts at the loss it stopped at); NaN before its first loss stays."""
    s = losses.shape[0]
    finite = np.isfinite(losses)
    idx = np.where(finite, np.arange(s)[:, None], -1)
    idx = np.maximum.accumulate(idx, axis=0)  # the last finite row at or before each step
    filled = np.take_along_axis(losses, np.maximum(idx, 0), axis=0)
    return np.where(idx >= 0, filled, np.nan)


def plot_training_curves(
    losses: object, path: str | os.PathLike | None = None, *, steps: object = None, ax: "Axes | None" = None
) -> "Figure":
    """Training loss of every member against the step (log scale), with the ensemble median over every member:
    a member that stopped (held at the criterion: its loss is NaN from then on) counts at its last loss.

    **Arguments:**

    - `losses`: array of shape `(S, K)`, the loss at `S` logged steps for `K` members (NaN allowed,
      e.g. after a member stopped).
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).
    - `steps`: `None` (steps 1..S) or an array of shape `(S,)`, the step of each row.
    - `ax`: `None` (a new figure) or a matplotlib `Axes` to draw into (of any figure).

    **Returns:** the `Figure` (with `ax`, the one holding it); with `path`, also written as PNG and PDF
    (see `save_figure`).
    """
    losses = _array("losses", losses, 2, "(S, K)").astype(np.float64)
    if steps is None:
        steps = np.arange(1, losses.shape[0] + 1)
    else:
        steps = _array("steps", steps, 1, "(S,)")
        if steps.shape[0] != losses.shape[0]:
            raise ValueError(f"`steps` must be an array of shape (S = {losses.shape[0]},), got shape {steps.shape}.")
    fig, ax = _figure_or_axes(ax, 6.0, 4.0)
    for k in range(losses.shape[1]):
        label = f"member {k}" if losses.shape[1] <= 10 else ("members" if k == 0 else None)
        ax.plot(steps, losses[:, k], lw=0.7, alpha=0.6, label=label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows where every member is NaN
        median = np.nanmedian(_held_at_last(losses), axis=1)
    ax.plot(steps, median, color="black", lw=2.0, label="ensemble median (stopped members at their last loss)")
    if np.any(losses > 0):
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (MSE, arb. units²)")
    ax.set_title(f"training loss of {losses.shape[1]} members", fontsize=10)
    ax.legend(fontsize=7, ncols=2)
    ax.grid(True, which="major", alpha=0.3)
    return _save(fig, path)


def plot_robustness(sweep: dict, path: str | os.PathLike | None = None) -> "Figure":
    """Test MSE of every member against input noise and pulse amplitude (paper 5.1), success rate on a
    second axis.

    **Arguments:**

    - `sweep`: the dict of `robustness_sweep`: `noise_levels (L,)`, `noise_mse (L, K)`,
      `noise_success_rate (L,)`, `amplitude_scales (A,)`, `amplitude_mse (A, K)`,
      `amplitude_success_rate (A,)`.
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).

    **Returns:** the `Figure`; with `path`, also written as PNG and PDF (see `save_figure`).
    """
    panels = (
        ("noise_levels", "noise_mse", "noise_success_rate", "input noise std (arb. units)"),
        ("amplitude_scales", "amplitude_mse", "amplitude_success_rate", "pulse amplitude scale"),
    )
    for levels, mse, rate, _ in panels:
        for name in (levels, mse, rate):
            if name not in sweep:
                raise ValueError(f"`sweep` lacks `{name}`; pass the dict returned by `robustness_sweep`.")
        if np.ndim(sweep[mse]) != 2 or np.shape(sweep[mse])[0] != len(sweep[levels]):
            raise ValueError(f"`sweep['{mse}']` must have shape (len({levels}), K), got {np.shape(sweep[mse])}.")
    fig = _figure(10.0, 4.0)
    for ax, (levels, mse, rate, label) in zip(fig.subplots(1, 2), panels):
        x = np.asarray(sweep[levels], float)
        y = np.asarray(sweep[mse], float)
        ax.plot(x, y, color="0.6", lw=0.8)
        ax.plot(x, np.nanmedian(y, axis=1), color="C0", lw=2, label="median member")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("test MSE (arb. units²)")
        ax2 = ax.twinx()
        ax2.plot(x, np.asarray(sweep[rate], float), "s--", color="C3", label="success rate")
        ax2.set_ylim(-0.05, 1.05)
        ax2.set_ylabel("success rate", color="C3")
        ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_similarity_matrices(procrustes: object, cka: object, path: str | os.PathLike | None = None) -> "Figure":
    """Pairwise Procrustes disparity and linear CKA between members, as two heat maps.

    **Arguments:**

    - `procrustes`: `(K, K)` disparities (NaN where undefined).
    - `cka`: `(K, K)` linear CKA.
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).

    **Returns:** the `Figure`; with `path`, also written as PNG and PDF (see `save_figure`).
    """
    procrustes = np.asarray(procrustes, float)
    cka = np.asarray(cka, float)
    for name, m in (("procrustes", procrustes), ("cka", cka)):
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"`{name}` must be a square (K, K) matrix, got shape {m.shape}.")
    if procrustes.shape != cka.shape:
        raise ValueError(f"`procrustes` {procrustes.shape} and `cka` {cka.shape} must have the same shape.")
    fig = _figure(10.0, 4.2)
    for ax, m, title, vmax in zip(
        fig.subplots(1, 2),
        (procrustes, cka),
        ("Procrustes disparity of memory states", "linear CKA of activity"),
        (None, 1.0),
    ):
        im = ax.imshow(np.ma.masked_invalid(m), cmap="viridis", vmin=0, vmax=vmax)
        ax.set_title(title)
        ax.set_xlabel("member")
        ax.set_ylabel("member")
        fig.colorbar(im, ax=ax, shrink=0.85)
    return _save(fig, path)
