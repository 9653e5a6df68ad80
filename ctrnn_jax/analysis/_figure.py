"""What every figure shares: shape checks, a pyplot-free `Figure`, PNG+PDF saving, axis helpers, PCA.

Every plotting function of `ctrnn_jax.analysis` validates its inputs first (a `ValueError` naming the
argument, before anything is drawn), draws on a `matplotlib.figure.Figure` (no pyplot, so no global
state and no GUI backend) and returns that `Figure`. With a `path` (a file name without suffix, or
ending in `.png`/`.pdf`) the figure is also written as PNG and PDF next to each other, atomically
(`save_figure`). A function that draws one panel also takes `ax=`: it then draws into that axes of any
figure (e.g. a pyplot one in a notebook) and returns the figure holding it. matplotlib is imported only
inside these functions, so `import ctrnn_jax` never needs it. Time is in steps (1 step = 1 ms in the
paper); activities, inputs and outputs are in arbitrary units.

Only NumPy is used for the arithmetic (eigenvalues, PCA): the arrays are small and on the host.
"""

import os
from pathlib import Path

import numpy as np

from .._files import atomic_write
from ..dynamics._fixed_point_set import FixedPoints

_TIME = "time (steps, 1 step = 1 ms)"
_AMP = "amplitude (arb. units)"
_DPI = 150
_INDEX_MARKERS = {1: "^", 2: "s", 3: "D"}  # saddle index -> hollow marker; higher indices "p"
_INDEX_COLOURS = {0: "black", 1: "tab:orange", 2: "tab:purple", 3: "tab:brown"}


def _array(name: str, x: object, ndim: int, expected: str, *, min_size: int = 1) -> np.ndarray:
    """`x` as a float NumPy array of `ndim` dimensions, each at least `min_size` long."""
    try:
        a = np.asarray(x)
    except Exception as e:  # noqa: BLE001 - anything not array-like
        raise ValueError(f"`{name}` must be an array of shape {expected}, got {type(x).__name__} ({e}).") from None
    if a.ndim != ndim or any(s < min_size for s in a.shape):
        raise ValueError(f"`{name}` must be an array of shape {expected}, got shape {a.shape}.")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(f"`{name}` must be numeric, got dtype {a.dtype}.")
    return a


def _same(names: tuple[str, str], shapes: tuple, expected: str) -> None:
    if shapes[0] != shapes[1]:
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must both have shape {expected}, got {shapes[0]} and {shapes[1]}."
        )


def _square(name: str, W: object, *, batch: bool = False) -> np.ndarray:
    expected = "(K, N, N)" if batch else "(N, N)"
    W = _array(name, W, 3 if batch else 2, expected)
    if W.shape[-1] != W.shape[-2]:
        raise ValueError(f"`{name}` must be an array of shape {expected}, got shape {W.shape}.")
    return W


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # lazy: matplotlib only where plotting happens

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig, path: str | os.PathLike) -> list[Path]:
    """Write a figure as `<stem>.png` and `<stem>.pdf`, each atomically.

    Each file is written to a temporary file in the same folder and then renamed onto its name
    (`os.replace`), so an interrupted save never leaves a partial file, nor a half-written figure over
    an older good one. The parent folder is created if needed.

    **Arguments:**

    - `fig`: a `matplotlib.figure.Figure` (e.g. the one a `plot_*` function returns).
    - `path`: output file name, without suffix or with `.png`/`.pdf` (the stem is used either way).

    **Returns:** the written paths `[png, pdf]`.
    """
    path = Path(path)
    if path.suffix.lower() in (".png", ".pdf"):
        path = path.with_suffix("")
    written = []
    for fmt in ("png", "pdf"):
        out = path.with_name(f"{path.name}.{fmt}")
        with atomic_write(out, "wb") as f:  # a temporary file, then os.replace
            fig.savefig(f, format=fmt, dpi=_DPI)
        written.append(out)
    return written


def _save(fig, path: str | os.PathLike | None):
    """End a plotting function: the top-level `Figure` of `fig` (itself, or the one holding a
    `SubFigure`), written with `save_figure` when `path` is given."""
    fig = fig.figure  # a Figure's `.figure` is itself
    if path is not None:
        save_figure(fig, path)
    return fig


def _figure_or_axes(ax, width: float, height: float, *, projection: str | None = None):
    """`(figure, axes)` to draw one panel on: a new `_figure(width, height)` with one axes when `ax` is
    None, else `ax` and the figure holding it (`ValueError` if `ax` is not an axes or, with `projection`,
    not of that projection)."""
    if ax is None:
        fig = _figure(width, height)
        return fig, (fig.add_subplot(projection=projection) if projection else fig.subplots())
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise ValueError(f"`ax` must be a matplotlib Axes or None, got {type(ax).__name__}.")
    if projection is not None and ax.name != projection:
        raise ValueError(
            f"`ax` must be a {projection.upper()} axes (e.g. `fig.add_subplot(projection="
            f"'{projection}')`), got a {ax.name!r} axes."
        )
    return ax.figure, ax


def _unit_circle(ax) -> None:
    theta = np.linspace(0.0, 2.0 * np.pi, 361)
    ax.plot(np.cos(theta), np.sin(theta), color="0.4", lw=0.8, ls="--", zorder=0)
    ax.axhline(0.0, color="0.85", lw=0.6, zorder=0)
    ax.axvline(0.0, color="0.85", lw=0.6, zorder=0)
    ax.set_aspect("equal")
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")


def _square_limits(ax, *eigs: np.ndarray) -> None:
    """Symmetric limits covering the unit circle and every eigenvalue."""
    r = max([1.0] + [float(np.max(np.abs(e))) for e in eigs if e.size])
    r *= 1.08
    ax.set_xlim(-r, r)
    ax.set_ylim(-r, r)


def _check_fixed_points(name: str, fp: object, n: int | None = None) -> FixedPoints:
    if not isinstance(fp, FixedPoints):
        raise ValueError(f"`{name}` must be a FixedPoints (e.g. `fixed_points.select(k)`), got {type(fp).__name__}.")
    if len(np.unique(fp.member)) > 1:
        raise ValueError(
            f"`{name}` must hold the fixed points of one member (use `fixed_points.select(k)`); it "
            f"has members {np.unique(fp.member).tolist()}."
        )
    if n is not None and len(fp) and fp.points.shape[1] != n:
        raise ValueError(f"`{name}` has points of dimension {fp.points.shape[1]}; the states have N = {n}.")
    return fp


def pca_projection(states: object, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of a state trajectory, by a centred SVD (NumPy).

    **Arguments:**

    - `states`: array of shape `(T, N)`, the activity at each time step.
    - `d`: the number of components, `1 <= d <= N`.

    **Returns:** `(mean, components)`: the mean state `(N,)` and the top-`d` principal axes `(d, N)`,
    orthonormal rows ordered by decreasing explained variance (zero rows if `T` is too small to give
    `d` of them). Each axis's sign makes its largest-magnitude loading positive. Project with
    `(states - mean) @ components.T`.
    """
    x = _array("states", states, 2, "(T, N)").astype(np.float64)
    n = x.shape[1]
    if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= n:
        raise ValueError(f"`d` must be an int in [1, N = {n}], got {d!r}.")
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    comps = vt[:d]
    signs = np.sign(comps[np.arange(comps.shape[0]), np.argmax(np.abs(comps), axis=1)])
    comps = comps * np.where(signs == 0, 1.0, signs)[:, None]
    if comps.shape[0] < d:
        comps = np.concatenate([comps, np.zeros((d - comps.shape[0], n))])
    return mean, comps


def _explained(x: np.ndarray, mean: np.ndarray, comps: np.ndarray) -> np.ndarray:
    total = np.sum((x - mean) ** 2)
    proj = (x - mean) @ comps.T
    return np.sum(proj**2, axis=0) / total if total > 0 else np.zeros(comps.shape[0])


def _draw_fixed_points(ax, fixed_points, n: int, mean: np.ndarray, comps: np.ndarray) -> None:
    """Fixed points `(P, N)` projected on the PCs `comps` (first and last used as the axes): stable
    points filled, saddles open; nothing when `fixed_points` is None or empty."""
    if fixed_points is None:
        return
    fp = _check_fixed_points("fixed_points", fixed_points, n)
    if not len(fp):
        return
    p = (np.asarray(fp.points) - mean) @ comps.T
    stable = np.asarray(fp.n_unstable) == 0
    if stable.any():
        ax.scatter(p[stable, 0], p[stable, -1], s=40, color="black", zorder=3, label="stable fixed point")
    if (~stable).any():
        ax.scatter(p[~stable, 0], p[~stable, -1], s=40, facecolors="none", edgecolors="black", zorder=3, label="saddle")


def _finish_pc_plane(ax, fixed_points, n: int, mean: np.ndarray, comps: np.ndarray, title) -> None:
    """End a state-space panel drawn on the PC 1 / PC 2 plane: the fixed points, axis labels, the
    optional title and the legend (`fixed_points` already checked)."""
    _draw_fixed_points(ax, fixed_points, n, mean, comps)
    ax.set_xlabel("PC 1 (a.u.)")
    ax.set_ylabel("PC 2 (a.u.)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False)
