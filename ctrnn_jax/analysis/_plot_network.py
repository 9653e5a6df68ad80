"""Figures of a network's weights and linearization: connectivity matrix, eigenvalues of `W_rec`
(one network or a grid of members), and the Jacobian spectra at its fixed points.

Conventions (shapes, the returned `Figure`, optional PNG+PDF, `ax=`, lazy matplotlib) are those of
`_figure.py`.
"""

import math
import os
from typing import TYPE_CHECKING

import numpy as np

from ..dynamics._fixed_point_set import FixedPoints
from ._figure import (
    _INDEX_COLOURS,
    _INDEX_MARKERS,
    _check_fixed_points,
    _figure,
    _figure_or_axes,
    _same,
    _save,
    _square,
    _square_limits,
    _unit_circle,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_connectivity(W_rec: object, path: str | os.PathLike | None = None, *, ax: "Axes | None" = None) -> "Figure":
    """The recurrent weight matrix as a heat map (paper Fig. 4, left), with a colour scale symmetric
    about 0 (`vmax = max |W|`) and a colour bar. The input is not modified.

    **Arguments:**

    - `W_rec`: array of shape `(N, N)`, `W_rec[post, pre]`: rows post-synaptic, columns pre-synaptic.
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).
    - `ax`: `None` (a new figure) or a matplotlib `Axes` to draw into (of any figure).

    **Returns:** the `Figure` (with `ax`, the one holding it); with `path`, also written as PNG and PDF
    (see `save_figure`).
    """
    W = np.array(_square("W_rec", W_rec), dtype=np.float64)  # a copy
    vmax = float(np.nanmax(np.abs(W))) or 1.0
    fig, ax = _figure_or_axes(ax, 5.2, 4.4)
    im = ax.imshow(W, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_xlabel("pre-synaptic unit (column)")
    ax.set_ylabel("post-synaptic unit (row)")
    ax.set_title(f"recurrent weights $W_{{rec}}$ (N = {W.shape[0]})", fontsize=10)
    fig.colorbar(im, ax=ax, label="weight (arb. units)", shrink=0.9)
    return _save(fig, path)


def plot_eigenvalues(
    W_rec: object, path: str | os.PathLike | None = None, *, W_rec_initial: object = None, ax: "Axes | None" = None
) -> "Figure":
    """Eigenvalues of the recurrent matrix in the complex plane, with the unit circle (paper Fig. 4,
    right); optionally the initial matrix's too, for a before/after comparison.

    **Arguments:**

    - `W_rec`: array of shape `(N, N)`, the (trained) recurrent weights.
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).
    - `W_rec_initial`: `None` or an array of shape `(N, N)`, the weights before training.
    - `ax`: `None` (a new figure) or a matplotlib `Axes` to draw into (of any figure).

    **Returns:** the `Figure` (with `ax`, the one holding it); with `path`, also written as PNG and PDF
    (see `save_figure`).
    """
    W = _square("W_rec", W_rec)
    W0 = None
    if W_rec_initial is not None:
        W0 = _square("W_rec_initial", W_rec_initial)
        _same(("W_rec", "W_rec_initial"), (W.shape, W0.shape), "(N, N)")
    eig = np.linalg.eigvals(W.astype(np.float64))
    fig, ax = _figure_or_axes(ax, 4.8, 4.4)
    _unit_circle(ax)
    eigs = [eig]
    if W0 is not None:
        eig0 = np.linalg.eigvals(W0.astype(np.float64))
        eigs.append(eig0)
        ax.scatter(eig0.real, eig0.imag, s=14, facecolors="none", edgecolors="0.5", label="before training")
    ax.scatter(eig.real, eig.imag, s=12, color="tab:blue", label="after training" if W0 is not None else "W_rec")
    _square_limits(ax, *eigs)
    outside = int(np.sum(np.abs(eig) > 1))
    ax.set_title(f"eigenvalues of $W_{{rec}}$ ({outside} of {eig.size} outside the unit circle)", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    return _save(fig, path)


def plot_spectra_grid(W_recs: object, path: str | os.PathLike | None = None, *, max_members: int = 9) -> "Figure":
    """Eigenvalue spectra of several members' recurrent matrices on a grid (paper Fig. 5).

    **Arguments:**

    - `W_recs`: array of shape `(K, N, N)`, the stacked recurrent weights of an ensemble.
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).
    - `max_members`: plot the first `min(K, max_members)` members (>= 1).

    **Returns:** the `Figure`; with `path`, also written as PNG and PDF (see `save_figure`).
    """
    W = _square("W_recs", W_recs, batch=True)
    if isinstance(max_members, bool) or not isinstance(max_members, int) or max_members < 1:
        raise ValueError(f"`max_members` must be an int >= 1, got {max_members!r}.")
    k = min(W.shape[0], max_members)
    eigs = [np.linalg.eigvals(W[i].astype(np.float64)) for i in range(k)]
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    fig = _figure(2.6 * cols + 0.4, 2.6 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= k:
            ax.set_visible(False)
            continue
        _unit_circle(ax)
        ax.scatter(eigs[i].real, eigs[i].imag, s=6, color="tab:blue")
        ax.set_title(f"member {i} ({int(np.sum(np.abs(eigs[i]) > 1))} outside)", fontsize=8)
        _square_limits(ax, *eigs)  # the same limits everywhere
        if i % cols:
            ax.set_ylabel("")
            ax.tick_params(labelleft=False)
        if i + cols < k:
            ax.set_xlabel("")
            ax.tick_params(labelbottom=False)
    fig.suptitle("eigenvalues of $W_{rec}$ across members (unit circle dashed)", fontsize=10)
    return _save(fig, path)


def plot_fixed_point_spectra(fixed_points: FixedPoints, path: str | os.PathLike | None = None) -> "Figure":
    """Eigenvalues of the Jacobian of the one-step map at one member's fixed points: stable points, marginal
    points, saddles of each index and analysed slow points in their own colour, with the unit circle
    (|λ| > 1: unstable direction). The legend's counts are the table's (`FixedPoints.counts`): distinct
    exact points of each kind, and the analysed slow points apart.

    **Arguments:**

    - `fixed_points`: a `FixedPoints` of one member (`fixed_points.select(k)`), with `eigvals (P, N)`.
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).

    **Returns:** the `Figure`; with `path`, also written as PNG and PDF (see `save_figure`).
    """
    fp = _check_fixed_points("fixed_points", fixed_points)
    eigvals = np.asarray(fp.eigvals)
    if eigvals.ndim != 2 or eigvals.shape[0] != len(fp):
        raise ValueError(f"`fixed_points.eigvals` must have shape (P = {len(fp)}, N), got {eigvals.shape}.")
    fig = _figure(9.0, 4.4)
    ax, zoom = fig.subplots(1, 2)
    r = max(1.1, float(np.max(np.abs(eigvals))) + 0.03) if eigvals.size else 1.1
    # the table's groups (`FixedPoints.counts`): the exact points by kind (stable, marginal, saddles of each
    # index), then the analysed slow points; each label counts the points of its group, as the table does
    kind, exact = np.asarray(fp.kind), np.asarray(fp.exact)
    groups = [
        (
            f"saddles, index {i}",
            exact & (fp.n_unstable == i),
            _INDEX_COLOURS.get(i, "tab:red"),
            _INDEX_MARKERS.get(i, "p"),
            6,
        )
        for i in sorted(set(np.asarray(fp.n_unstable[exact]).tolist()) - {0}, reverse=True)
    ]
    groups += [
        ("slow points (analysed)", ~exact, "tab:gray", "x", 6),
        ("marginal", exact & (kind == "marginal"), "tab:green", "D", 6),
        ("stable", exact & (kind == "stable"), _INDEX_COLOURS.get(0, "tab:blue"), "o", 8),
    ]  # on top
    for a in (ax, zoom):
        _unit_circle(a)
        for name, sel, colour, marker, size in groups:
            if not np.any(sel):
                continue
            e = eigvals[sel].ravel()
            a.scatter(
                e.real,
                e.imag,
                s=size,
                alpha=0.6,
                color=colour,
                marker=marker,
                label=f"{name} ({int(sel.sum())} points)",
                lw=0,
            )
    _square_limits(ax, eigvals.ravel())
    zoom.set_aspect("auto")
    zoom.set_xlim(0.85, r)
    zoom.set_ylim(-(r - 0.85) / 2, (r - 0.85) / 2)
    zoom.set_title("near λ = 1 (|λ| > 1: unstable direction)", fontsize=9)
    member = f"member {int(fp.member[0])}: " if len(fp) else ""
    ax.set_title(f"{member}Jacobian eigenvalues at the fixed points", fontsize=9)
    if len(fp):
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles[::-1], labels[::-1], fontsize=7, loc="outside right upper", frameon=False, markerscale=2)
    else:
        ax.text(0.0, 0.0, "no fixed points", ha="center", va="center")
    return _save(fig, path)
