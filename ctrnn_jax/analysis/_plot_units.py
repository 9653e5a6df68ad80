"""Figures of the unit-level analyses (`ctrnn_jax.analysis._units`): the cluster-by-task map of every member
and the distribution of the number of clusters and of cluster sizes across members.

Conventions (the returned `Figure`, optional PNG+PDF, lazy matplotlib) are those of `_figure.py`.
"""

import os
from typing import TYPE_CHECKING

import numpy as np

from ._figure import _figure, _save
from ._units import UnitClusters

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _check_clusters(clusters: object) -> UnitClusters:
    if not isinstance(clusters, UnitClusters):
        raise ValueError(f"`clusters` must be UnitClusters (from cluster_units), got {type(clusters).__name__}.")
    return clusters


def plot_cluster_task_map(
    clusters: UnitClusters, path: str | os.PathLike | None = None, *, max_members: int = 8
) -> "Figure":
    """The cluster-by-task map of each member: a heatmap of the mean normalised task variance (0 to 1) of each
    cluster (rows, labelled with the fraction of active units in it) in each component task (columns), one
    panel per member (the first `max_members`), titled with its `k` and silhouette.

    **Arguments:**

    - `clusters`: `UnitClusters` (`cluster_units`).
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF.
    - `max_members`: at most this many panels (>= 1).

    **Returns:** the `Figure`.
    """
    clusters = _check_clusters(clusters)
    if isinstance(max_members, bool) or not isinstance(max_members, int) or max_members < 1:
        raise ValueError(f"`max_members` must be an integer >= 1, got {max_members!r}.")
    n = min(max_members, clusters.k.shape[0])
    labels = clusters.labels_tasks
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = _figure(0.8 + cols * (1.0 + 0.45 * len(labels)), 0.8 + rows * (0.9 + 0.3 * max(int(clusters.k.max()), 1)))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    image = None
    for m, ax in enumerate(axes):
        if m >= n:
            ax.set_axis_off()
            continue
        k = int(clusters.k[m])
        data = clusters.profiles[m, :k] if k else np.full((1, len(labels)), np.nan)
        image = ax.imshow(data, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto", interpolation="nearest")
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(
            range(max(k, 1)),
            [f"{c} ({100 * clusters.fraction[m, c]:.0f}%)" for c in range(k)] if k else ["none"],
            fontsize=8,
        )
        ax.set_xlabel("task")
        ax.set_ylabel("cluster (fraction of units)")
        ax.set_title(f"member {m}: k = {k}, silhouette {clusters.silhouette[m]:.2f}", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=list(axes[:n]), label="normalised task variance", shrink=0.8)
    return _save(fig, path)


def plot_cluster_distribution(clusters: UnitClusters, path: str | os.PathLike | None = None) -> "Figure":
    """Across members: how many chose each number of clusters `k` (bars, left) and the sizes of all their
    clusters as fractions of active units (histogram, right), with the mean consistency of the cluster structure
    (matched clusters' profile correlation with member 0's) in the title.

    **Arguments:** `clusters` (`UnitClusters`); `path`: `None` or an output file name (PNG and PDF).

    **Returns:** the `Figure`.
    """
    from matplotlib.ticker import MaxNLocator

    clusters = _check_clusters(clusters)
    fig = _figure(8.0, 3.2)
    left, right = fig.subplots(1, 2)
    dist = clusters.k_distribution()
    left.bar(list(dist), list(dist.values()), color="C0", width=0.8)
    left.set_xlabel("number of clusters k (silhouette-chosen)")
    left.set_ylabel("members")
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_xticks(sorted(dist))
    sizes = clusters.cluster_sizes()
    right.hist(sizes, bins=np.linspace(0.0, 1.0, 21), color="C1")
    right.set_xlabel("cluster size (fraction of active units)")
    right.set_ylabel("clusters")
    finite = clusters.consistency[np.isfinite(clusters.consistency)]
    mean = f"{finite.mean():.2f}" if finite.size else "n/a"
    fig.suptitle(f"Unit clusters across {clusters.k.shape[0]} members (consistency with member 0: {mean})")
    return _save(fig, path)


__all__ = ["plot_cluster_distribution", "plot_cluster_task_map"]
