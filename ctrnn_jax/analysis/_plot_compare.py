"""Figures of a comparison across networks (`compare_ensembles`): the pair of MDS embeddings (geometry,
topology; Maheswaranathan et al. 2019, Fig. 1), the distance matrices, and topology graphs.

Conventions (shapes, the returned `Figure`, optional PNG+PDF, lazy matplotlib) are those of `_figure.py`.
"""

import os
from typing import TYPE_CHECKING

import numpy as np

from ..dynamics._topology import MemberGraph
from ._figure import _array, _figure, _save

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_MARKERS = "osD^v<>ph*"


def _groups(name: str, groups, p: int) -> list:
    groups = [str(g) for g in groups]
    if len(groups) != p:
        raise ValueError(f"`{name}` must have one entry per network ({p}), got {len(groups)}.")
    return groups


def _scatter(ax, coords, groups, title, xlabel, ylabel) -> None:
    missing = int(np.sum(~np.isfinite(coords).all(axis=1)))  # left out of the embedding (NaN rows)
    if missing:
        title = f"{title} ({missing} not embedded)"
    names = list(dict.fromkeys(groups))
    colours = [f"C{i % 10}" for i in range(len(names))]
    for i, name in enumerate(names):
        sel = np.asarray([g == name for g in groups])
        ax.scatter(
            coords[sel, 0],
            coords[sel, 1],
            s=28,
            color=colours[i],
            marker=_MARKERS[i % len(_MARKERS)],
            alpha=0.8,
            label=name,
            edgecolors="none",
        )
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def plot_mds_pair(geometry: object, topology: object, groups, path: str | os.PathLike | None = None) -> "Figure":
    """Two panels: the 2-D MDS embedding of the geometry (SVCCA) distances and of the topology
    distances, each network a dot coloured by its group.

    **Arguments:**

    - `geometry`, `topology`: arrays of shape `(P, 2)`, the embeddings (`classical_mds`); NaN rows (the
      networks an embedding leaves out) are not drawn, and their number is given in the panel's title.
    - `groups`: `P` group names (run, cell/activation).
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).

    **Returns:** the `Figure`; with `path`, also written as PNG and PDF (see `save_figure`).
    """
    geometry = _array("geometry", geometry, 2, "(P, 2)").astype(np.float64)
    topology = _array("topology", topology, 2, "(P, 2)").astype(np.float64)
    if geometry.shape[1] != 2 or topology.shape != geometry.shape:
        raise ValueError(
            f"`geometry` and `topology` must both have shape (P, 2), got {geometry.shape} and {topology.shape}."
        )
    groups = _groups("groups", groups, geometry.shape[0])
    fig = _figure(9.0, 4.2)
    left, right = fig.subplots(1, 2)
    _scatter(left, geometry, groups, "geometry: SVCCA distance", "MDS 1 (SVCCA)", "MDS 2 (SVCCA)")
    _scatter(right, topology, groups, "topology: fixed-point graph distance", "MDS 1 (topology)", "MDS 2 (topology)")
    right.legend(fontsize=7, loc="best")
    return _save(fig, path)


def plot_distance_matrices(
    geometry: object, topology: object, groups, path: str | os.PathLike | None = None
) -> "Figure":
    """The `(P, P)` geometry and topology distance matrices side by side, networks in the given order,
    with group boundaries marked.

    **Arguments:**

    - `geometry`, `topology`: arrays of shape `(P, P)`, the SVCCA and topology distances.
    - `groups`: `P` group names, in the networks' order.
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).

    **Returns:** the `Figure`; with `path`, also written as PNG and PDF (see `save_figure`).
    """
    geometry = _array("geometry", geometry, 2, "(P, P)").astype(np.float64)
    topology = _array("topology", topology, 2, "(P, P)").astype(np.float64)
    p = geometry.shape[0]
    if geometry.shape != (p, p) or topology.shape != (p, p):
        raise ValueError(
            f"`geometry` and `topology` must both have shape (P, P), got {geometry.shape} and {topology.shape}."
        )
    groups = _groups("groups", groups, p)
    bounds = [i for i in range(1, p) if groups[i] != groups[i - 1]]
    fig = _figure(9.0, 4.2)
    for ax, mat, title in zip(fig.subplots(1, 2), (geometry, topology), ("SVCCA distance", "topology distance")):
        im = ax.imshow(
            mat, cmap="viridis", vmin=0.0, vmax=max(1e-12, float(np.nanmax(mat)) if np.isfinite(mat).any() else 1.0)
        )
        for b in bounds:
            ax.axhline(b - 0.5, color="white", lw=0.8)
            ax.axvline(b - 0.5, color="white", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("network")
        ax.set_ylabel("network")
        fig.colorbar(im, ax=ax, shrink=0.8, label="distance")
    return _save(fig, path)


def _layout(g: MemberGraph) -> np.ndarray:
    """2-D node positions: the readout itself for O <= 2, an oblique projection of the first three
    readouts for O >= 3 (a cube or a 3×3×3 grid stays readable)."""
    o = g.outputs
    if o.shape[1] == 1:
        return np.stack([o[:, 0], np.zeros(len(o))], axis=1)
    if o.shape[1] == 2:
        return o
    return np.stack([o[:, 0] + 0.45 * o[:, 2], o[:, 1] + 0.3 * o[:, 2]], axis=1)


def plot_topology_graphs(graphs, titles, path: str | os.PathLike | None = None) -> "Figure":
    """One panel per `MemberGraph`: stable points placed at their readout (oblique projection of the
    first three readouts), labelled with their readout levels, and the index-1 saddles as edges.

    **Arguments:**

    - `graphs`: a non-empty list of `MemberGraph` (`topology_graph`).
    - `titles`: one title per graph.
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF
      are written (see `save_figure`).

    **Returns:** the `Figure`; with `path`, also written as PNG and PDF (see `save_figure`).
    """
    if not isinstance(graphs, (list, tuple)) or not graphs or not all(isinstance(g, MemberGraph) for g in graphs):
        raise ValueError("`graphs` must be a non-empty list of MemberGraphs.")
    titles = _groups("titles", titles, len(graphs))
    fig = _figure(3.2 * len(graphs), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(graphs)))
    for ax, g, title in zip(axes, graphs, titles):
        xy = _layout(g)
        for i, j in g.edges:
            ax.plot(xy[[i, j], 0], xy[[i, j], 1], color="tab:orange", lw=1.0, zorder=1)
        ax.scatter(xy[:, 0], xy[:, 1], s=22, color="black", zorder=2)
        if g.n_nodes <= 27:
            for (x, y), lab in zip(xy, g.labels):
                ax.annotate(
                    "".join("+" if v > 0 else ("−" if v < 0 else "0") for v in lab),
                    (x, y),
                    fontsize=5,
                    xytext=(2, 2),
                    textcoords="offset points",
                )
        if g.n_nodes == 0:  # e.g. memory held by saturated update gates: slow points, no attractor
            ax.text(
                0.5,
                0.5,
                "no stable fixed point",
                transform=ax.transAxes,
                ha="center",
                va="center",
                fontsize=8,
                color="0.4",
            )
        ax.set_title(f"{title}: {g.n_nodes} nodes, {g.n_edges} edges", fontsize=8)
        ax.set_xlabel("readout 1 (+ 0.45 × readout 3)" if g.outputs.shape[1] >= 3 else "readout 1")
        ax.set_ylabel("readout 2 (+ 0.3 × readout 3)" if g.outputs.shape[1] >= 3 else "readout 2")
        lo = min(-1.6, float(xy.min()) - 0.2) if xy.size else -1.6
        hi = max(1.6, float(xy.max()) + 0.2) if xy.size else 1.6
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
    return _save(fig, path)


__all__ = ["plot_distance_matrices", "plot_mds_pair", "plot_topology_graphs"]
