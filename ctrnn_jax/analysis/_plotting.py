"""Figures of the flip-flop study (Jarne's paper, Figs. 3-7) and of an ensemble, one function per figure.

Every function validates its array shapes first (a `ValueError` naming the argument), draws on a
`matplotlib.figure.Figure` (no pyplot, so no global state and no GUI backend), and writes the figure as
PNG and PDF next to each other: `path` is a file name without suffix (or ending in `.png`/`.pdf`), and
the return value is the list `[png_path, pdf_path]`. matplotlib is imported only inside these
functions, so `import ctrnn_jax` never needs it. Time is in steps (1 step = 1 ms in the paper);
activities, inputs and outputs are in arbitrary units.

Only NumPy is used for the arithmetic (eigenvalues, PCA): the arrays are small and on the host.
"""

import math
import os
import warnings
from pathlib import Path

import numpy as np

from ._fixed_points import FixedPoints

_TIME = "time (steps, 1 step = 1 ms)"
_AMP = "amplitude (arb. units)"
_DPI = 150
_INDEX_MARKERS = {1: "^", 2: "s", 3: "D"}  # saddle index -> hollow marker; higher indices "p"
_INDEX_COLOURS = {0: "black", 1: "tab:orange", 2: "tab:purple", 3: "tab:brown"}


# ----------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------


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
        raise ValueError(f"`{names[0]}` and `{names[1]}` must both have shape {expected}, got {shapes[0]} and "
                         f"{shapes[1]}.")


def _square(name: str, W: object, *, batch: bool = False) -> np.ndarray:
    expected = "(K, N, N)" if batch else "(N, N)"
    W = _array(name, W, 3 if batch else 2, expected)
    if W.shape[-1] != W.shape[-2]:
        raise ValueError(f"`{name}` must be an array of shape {expected}, got shape {W.shape}.")
    return W


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # lazy: matplotlib only where plotting happens

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path: str | os.PathLike) -> list[Path]:
    """Write `fig` as `<path>.png` and `<path>.pdf`; returns both paths."""
    path = Path(path)
    if path.suffix.lower() in (".png", ".pdf"):
        path = path.with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".pdf"):
        out = path.with_name(path.name + suffix)
        fig.savefig(out, dpi=_DPI)
        written.append(out)
    return written


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
        raise ValueError(f"`{name}` must hold the fixed points of one member (use `fixed_points.select(k)`); it "
                         f"has members {np.unique(fp.member).tolist()}.")
    if n is not None and len(fp) and fp.points.shape[1] != n:
        raise ValueError(f"`{name}` has points of dimension {fp.points.shape[1]}; the states have N = {n}.")
    return fp


# ----------------------------------------------------------------------------------------------------
# PCA and memory states
# ----------------------------------------------------------------------------------------------------


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


def _explained(x: np.ndarray, mean: np.ndarray, comps: np.ndarray) -> np.ndarray:
    total = np.sum((x - mean) ** 2)
    proj = (x - mean) @ comps.T
    return np.sum(proj ** 2, axis=0) / total if total > 0 else np.zeros(comps.shape[0])


def _draw_state_space(ax, states, targets, fixed_points, W_out, *, legend: bool, title: str | None = None):
    """The 3-D PCA view of `plot_state_space` on a 3-D axis `ax`."""
    x = states.astype(np.float64)
    mean, comps = pca_projection(x, 3)
    proj = (x - mean) @ comps.T
    codes = _memory_states(targets)
    n_bits = targets.shape[1]
    colours = _state_colours(2 ** n_bits)
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
            ax.scatter(*p[sel].T, s=18, facecolors="none", edgecolors=_INDEX_COLOURS.get(index, "tab:red"), lw=0.8,
                       marker=_INDEX_MARKERS.get(index, "p"), label=f"saddle, index {index}", depthshade=False,
                       zorder=5)
        saddles = np.flatnonzero(~stable)
        if saddles.size:
            if eigvecs is None:  # e.g. a FixedPoints saved without eigenvectors: recompute them
                eigvals, vecs = np.linalg.eig(fp.jacobians[saddles].astype(np.float64))
            else:
                eigvals, vecs = fp.eigvals[saddles], eigvecs[saddles]
            for j, i in enumerate(saddles):
                for col in np.flatnonzero(np.abs(eigvals[j]) > 1):
                    v = np.real(vecs[j][:, col])
                    norm = np.linalg.norm(v)
                    if norm == 0:
                        continue
                    dv = (comps @ (v / norm)) * scale
                    seg = np.stack([p[i] - dv, p[i] + dv])
                    ax.plot(*seg.T, color=_INDEX_COLOURS.get(int(fp.n_unstable[i]), "tab:red"), lw=0.7,
                            alpha=0.7, zorder=4)

    if W_out is not None:
        for o, w in enumerate(W_out):
            d = comps @ (w / np.linalg.norm(w)) if np.linalg.norm(w) > 0 else np.zeros(3)
            d = d * 4.0 * scale / max(np.linalg.norm(d), 1e-12)
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
        ax.figure.legend(*ax.get_legend_handles_labels(), loc="outside right upper", fontsize=7, markerscale=1.5,
                         frameon=False,
                         title="memory state (bits 1-3)\nand fixed points", title_fontsize=7)


# ----------------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------------


def plot_task_samples(inputs: object, targets: object, path: str | os.PathLike) -> list[Path]:
    """Training samples (paper Fig. 3): one column per sample (the first three), one row per channel,
    the input pulses with the target overlaid.

    **Arguments:**

    - `inputs`: array of shape `(S, T, M)`, the input series of `S >= 1` samples.
    - `targets`: array of shape `(S, T, O)`, their targets.
    - `path`: output file name, without suffix (or with `.png`); PNG and PDF are written.

    **Returns:** the list of written paths `[png, pdf]`.
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


def plot_connectivity(W_rec: object, path: str | os.PathLike) -> list[Path]:
    """The recurrent weight matrix as a heat map (paper Fig. 4, left), with a colour scale symmetric
    about 0 (`vmax = max |W|`) and a colour bar. The input is not modified.

    **Arguments:**

    - `W_rec`: array of shape `(N, N)`, `W_rec[post, pre]`: rows post-synaptic, columns pre-synaptic.
    - `path`: output file name, without suffix (or with `.png`); PNG and PDF are written.

    **Returns:** the list of written paths `[png, pdf]`.
    """
    W = np.array(_square("W_rec", W_rec), dtype=np.float64)  # a copy
    vmax = float(np.nanmax(np.abs(W))) or 1.0
    fig = _figure(5.2, 4.4)
    ax = fig.subplots()
    im = ax.imshow(W, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_xlabel("pre-synaptic unit (column)")
    ax.set_ylabel("post-synaptic unit (row)")
    ax.set_title(f"recurrent weights $W_{{rec}}$ (N = {W.shape[0]})", fontsize=10)
    fig.colorbar(im, ax=ax, label="weight (arb. units)", shrink=0.9)
    return _save(fig, path)


def plot_eigenvalues(W_rec: object, path: str | os.PathLike, *, W_rec_initial: object = None) -> list[Path]:
    """Eigenvalues of the recurrent matrix in the complex plane, with the unit circle (paper Fig. 4,
    right); optionally the initial matrix's too, for a before/after comparison.

    **Arguments:**

    - `W_rec`: array of shape `(N, N)`, the (trained) recurrent weights.
    - `path`: output file name, without suffix (or with `.png`); PNG and PDF are written.
    - `W_rec_initial`: `None` or an array of shape `(N, N)`, the weights before training.

    **Returns:** the list of written paths `[png, pdf]`.
    """
    W = _square("W_rec", W_rec)
    W0 = None
    if W_rec_initial is not None:
        W0 = _square("W_rec_initial", W_rec_initial)
        _same(("W_rec", "W_rec_initial"), (W.shape, W0.shape), "(N, N)")
    eig = np.linalg.eigvals(W.astype(np.float64))
    fig = _figure(4.8, 4.4)
    ax = fig.subplots()
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


def plot_spectra_grid(W_recs: object, path: str | os.PathLike, *, max_members: int = 9) -> list[Path]:
    """Eigenvalue spectra of several members' recurrent matrices on a grid (paper Fig. 5).

    **Arguments:**

    - `W_recs`: array of shape `(K, N, N)`, the stacked recurrent weights of an ensemble.
    - `path`: output file name, without suffix (or with `.png`); PNG and PDF are written.
    - `max_members`: plot the first `min(K, max_members)` members (>= 1).

    **Returns:** the list of written paths `[png, pdf]`.
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


def plot_test_set(inputs: object, outputs: object, targets: object, path: str | os.PathLike) -> list[Path]:
    """The 8-memory-state test set (paper Fig. 6A): per channel, the input pulses, the network's
    output and the target.

    **Arguments:**

    - `inputs`: array of shape `(T, 3)` (in general `(T, C)`), one trial's inputs.
    - `outputs`: array of shape `(T, 3)`, the network's outputs on it.
    - `targets`: array of shape `(T, 3)`, the targets.
    - `path`: output file name, without suffix (or with `.png`); PNG and PDF are written.

    **Returns:** the list of written paths `[png, pdf]`.
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
    path: str | os.PathLike,
    *,
    fixed_points: FixedPoints | None = None,
    W_out: object = None,
) -> list[Path]:
    """The activity on the test set in its top-3 principal components (paper Fig. 6C), coloured by
    memory state, with the fixed points projected on the same components.

    Memory state: the sign pattern of the targets (steps where any target is 0 are grey). Stable
    fixed points are filled black dots; saddles are hollow, with one marker and colour per index,
    and short lines along their unstable eigenvectors (real parts; the eigenvectors are recomputed
    from the Jacobians if `fixed_points.eigvecs` is `None`).

    **Arguments:**

    - `states`: array of shape `(T, N)`, one member's activity on the test set.
    - `targets`: array of shape `(T, 3)` (in general `(T, O)`), the test-set targets.
    - `path`: output file name, without suffix (or with `.png`); PNG and PDF are written.
    - `fixed_points`: `None` or the `FixedPoints` of this member (`fixed_points.select(k)`).
    - `W_out`: `None` or the readout `(O, N)`; its rows are drawn as arrows from the mean state.

    **Returns:** the list of written paths `[png, pdf]`.
    """
    states = _array("states", states, 2, "(T, N)")
    targets = _array("targets", targets, 2, "(T, 3)")
    if states.shape[0] != targets.shape[0]:
        raise ValueError(f"`states` (T, N) and `targets` (T, 3) must have the same T, got {states.shape} and "
                         f"{targets.shape}.")
    if states.shape[1] < 3:
        raise ValueError(f"`states` must be an array of shape (T, N) with N >= 3, got shape {states.shape}.")
    if fixed_points is not None:
        _check_fixed_points("fixed_points", fixed_points, states.shape[1])
    if W_out is not None:
        W_out = _array("W_out", W_out, 2, "(O, N)").astype(np.float64)
        if W_out.shape[1] != states.shape[1]:
            raise ValueError(f"`W_out` must be an array of shape (O, N = {states.shape[1]}), got shape {W_out.shape}.")
    fig = _figure(7.0, 5.2)
    ax = fig.add_subplot(projection="3d")
    _draw_state_space(ax, states, targets, fixed_points, W_out, legend=True,
                      title="test-set activity in its top-3 principal components")
    return _save(fig, path)


def plot_realizations(
    states_list: list,
    targets: object,
    path: str | os.PathLike,
    *,
    fixed_points_list: list | None = None,
    max_members: int = 4,
) -> list[Path]:
    """The state-space view of `plot_state_space` for several members side by side (paper Fig. 7),
    each in its own principal components.

    **Arguments:**

    - `states_list`: a list of `(T, N)` arrays, each member's activity on the test set (N may differ).
    - `targets`: array of shape `(T, 3)`, the test-set targets.
    - `path`: output file name, without suffix (or with `.png`); PNG and PDF are written.
    - `fixed_points_list`: `None` or a list as long as `states_list` of `FixedPoints` (one member
      each, `fixed_points.select(k)`) or `None`.
    - `max_members`: plot the first `min(len(states_list), max_members)` members (>= 1).

    **Returns:** the list of written paths `[png, pdf]`.
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
            raise ValueError(f"`states_list[{i}]` must be an array of shape (T = {targets.shape[0]}, N >= 3), got "
                             f"shape {s.shape}.")
        states.append(s)
    if fixed_points_list is not None:
        if not isinstance(fixed_points_list, (list, tuple)) or len(fixed_points_list) != len(states):
            raise ValueError(f"`fixed_points_list` must be a list of {len(states)} FixedPoints (or None entries), "
                             f"one per entry of `states_list`.")
        for i, fp in enumerate(fixed_points_list):
            if fp is not None:
                _check_fixed_points(f"fixed_points_list[{i}]", fp, states[i].shape[1])
    k = min(len(states), max_members)
    fig = _figure(3.6 * k + 1.6, 4.0)
    for i in range(k):
        ax = fig.add_subplot(1, k, i + 1, projection="3d")
        fp = None if fixed_points_list is None else fixed_points_list[i]
        _draw_state_space(ax, states[i], targets, fp, None, legend=i == k - 1, title=f"member {i}")
    return _save(fig, path)


def plot_training_curves(losses: object, path: str | os.PathLike, *, steps: object = None) -> list[Path]:
    """Training loss of every member against the step (log scale), with the ensemble median.

    **Arguments:**

    - `losses`: array of shape `(S, K)`, the loss at `S` logged steps for `K` members (NaN allowed,
      e.g. after a member stopped).
    - `path`: output file name, without suffix (or with `.png`); PNG and PDF are written.
    - `steps`: `None` (steps 1..S) or an array of shape `(S,)`, the step of each row.

    **Returns:** the list of written paths `[png, pdf]`.
    """
    losses = _array("losses", losses, 2, "(S, K)").astype(np.float64)
    if steps is None:
        steps = np.arange(1, losses.shape[0] + 1)
    else:
        steps = _array("steps", steps, 1, "(S,)")
        if steps.shape[0] != losses.shape[0]:
            raise ValueError(f"`steps` must be an array of shape (S = {losses.shape[0]},), got shape {steps.shape}.")
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    for k in range(losses.shape[1]):
        label = f"member {k}" if losses.shape[1] <= 10 else ("members" if k == 0 else None)
        ax.plot(steps, losses[:, k], lw=0.7, alpha=0.6, label=label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows where every member is NaN
        median = np.nanmedian(losses, axis=1)
    ax.plot(steps, median, color="black", lw=2.0, label="ensemble median")
    if np.any(losses > 0):
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (MSE, arb. units²)")
    ax.set_title(f"training loss of {losses.shape[1]} members", fontsize=10)
    ax.legend(fontsize=7, ncols=2)
    ax.grid(True, which="major", alpha=0.3)
    return _save(fig, path)


def plot_fixed_point_spectra(fixed_points: FixedPoints, path: str | os.PathLike) -> list[Path]:
    """Eigenvalues of the Jacobian of the one-step map at one member's fixed points: stable points and
    saddles of each index in their own colour, with the unit circle (|λ| > 1: unstable direction).

    **Arguments:**

    - `fixed_points`: a `FixedPoints` of one member (`fixed_points.select(k)`), with `eigvals (P, N)`.
    - `path`: output file name, without suffix (or with `.png`); PNG and PDF are written.

    **Returns:** the list of written paths `[png, pdf]`.
    """
    fp = _check_fixed_points("fixed_points", fixed_points)
    eigvals = np.asarray(fp.eigvals)
    if eigvals.ndim != 2 or eigvals.shape[0] != len(fp):
        raise ValueError(f"`fixed_points.eigvals` must have shape (P = {len(fp)}, N), got {eigvals.shape}.")
    fig = _figure(9.0, 4.4)
    ax, zoom = fig.subplots(1, 2)
    r = max(1.1, float(np.max(np.abs(eigvals))) + 0.03) if eigvals.size else 1.1
    indices = sorted(set(np.asarray(fp.n_unstable).tolist()), reverse=True)  # stable drawn last, on top
    for a in (ax, zoom):
        _unit_circle(a)
        for index in indices:
            sel = fp.n_unstable == index
            e = eigvals[sel].ravel()
            label = (f"stable ({int(sel.sum())} points)" if index == 0
                     else f"saddles, index {index} ({int(sel.sum())} points)")
            a.scatter(e.real, e.imag, s=8 if index == 0 else 6, alpha=0.6, color=_INDEX_COLOURS.get(index, "tab:red"),
                      marker="o" if index == 0 else _INDEX_MARKERS.get(index, "p"), label=label, lw=0)
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


def plot_ensemble_overview(
    test_mse: object,
    n_stable: object,
    cube_disparity: object,
    n_eig_outside: object,
    path: str | os.PathLike,
    *,
    threshold: float = 0.02,
) -> list[Path]:
    """Distributions over the members of four per-member numbers, as strip plots with the median.

    **Arguments:**

    - `test_mse`: array of shape `(K,)`, each member's test-set MSE (log axis; non-positive values
      are clipped for display).
    - `n_stable`: array of shape `(K,)`, its number of stable fixed points.
    - `cube_disparity`: array of shape `(K,)`, its Procrustes disparity to a cube (NaN: no cube; such
      members are counted in the panel title).
    - `n_eig_outside`: array of shape `(K,)`, its number of `W_rec` eigenvalues outside the unit circle.
    - `path`: output file name, without suffix (or with `.png`); PNG and PDF are written.
    - `threshold`: the success threshold on the MSE, drawn as a line.

    **Returns:** the list of written paths `[png, pdf]`.
    """
    from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator

    names = ("test_mse", "n_stable", "cube_disparity", "n_eig_outside")
    arrays = [_array(n, a, 1, "(K,)").astype(np.float64) for n, a in
              zip(names, (test_mse, n_stable, cube_disparity, n_eig_outside))]
    for n, a in zip(names[1:], arrays[1:]):
        _same(("test_mse", n), (arrays[0].shape, a.shape), "(K,)")
    k = arrays[0].shape[0]
    rng = np.random.default_rng(0)
    jitter = rng.uniform(-0.25, 0.25, k)
    fig = _figure(8.0, 5.2)
    axes = fig.subplots(2, 2).ravel()
    mse = arrays[0]
    success = mse <= threshold
    labels = ("test MSE (arb. units², log)", "number of stable fixed points",
              "cube disparity (Procrustes, 0 = cube)", "eigenvalues of $W_{rec}$ outside unit circle")
    for i, (ax, values, label) in enumerate(zip(axes, arrays, labels)):
        finite = np.isfinite(values)
        if i == 0:
            positive = finite & (values > 0)
            values = np.where(positive, values, np.nan)
            finite = positive
        if np.any(finite):
            ax.scatter(values[finite & success], jitter[finite & success], s=30, color="tab:blue",
                       label="success", alpha=0.8)
            ax.scatter(values[finite & ~success], jitter[finite & ~success], s=30, color="tab:red", marker="x",
                       label="failure")
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


def plot_robustness(sweep: dict, path) -> list:
    """Test MSE of every member against input noise and pulse amplitude (paper 5.1), success rate on a
    second axis.

    **Arguments:**

    - `sweep`: the dict of `robustness_sweep`: `noise_levels (L,)`, `noise_mse (L, K)`,
      `noise_success_rate (L,)`, `amplitude_scales (A,)`, `amplitude_mse (A, K)`,
      `amplitude_success_rate (A,)`.
    - `path`: file path without suffix (PNG and PDF are written).
    """
    from matplotlib.figure import Figure

    panels = (("noise_levels", "noise_mse", "noise_success_rate", "input noise std (arb. units)"),
              ("amplitude_scales", "amplitude_mse", "amplitude_success_rate", "pulse amplitude scale"))
    for levels, mse, rate, _ in panels:
        for name in (levels, mse, rate):
            if name not in sweep:
                raise ValueError(f"`sweep` lacks `{name}`; pass the dict returned by `robustness_sweep`.")
        if np.ndim(sweep[mse]) != 2 or np.shape(sweep[mse])[0] != len(sweep[levels]):
            raise ValueError(f"`sweep['{mse}']` must have shape (len({levels}), K), got {np.shape(sweep[mse])}.")
    fig = Figure(figsize=(10, 4), layout="constrained")
    for ax, (levels, mse, rate, label) in zip(fig.subplots(1, 2), panels):
        x = np.asarray(sweep[levels], float)
        y = np.asarray(sweep[mse], float)
        ax.plot(x, y, color="0.6", lw=0.8)
        ax.plot(x, np.nanmedian(y, axis=1), color="C0", lw=2, label="median member")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("test MSE")
        ax2 = ax.twinx()
        ax2.plot(x, np.asarray(sweep[rate], float), "s--", color="C3", label="success rate")
        ax2.set_ylim(-0.05, 1.05)
        ax2.set_ylabel("success rate", color="C3")
        ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_similarity_matrices(procrustes, cka, path) -> list:
    """Pairwise Procrustes disparity and linear CKA between members, as two heat maps.

    **Arguments:**

    - `procrustes`: `(K, K)` disparities (NaN where undefined).
    - `cka`: `(K, K)` linear CKA.
    - `path`: file path without suffix (PNG and PDF are written).
    """
    from matplotlib.figure import Figure

    procrustes = np.asarray(procrustes, float)
    cka = np.asarray(cka, float)
    for name, m in (("procrustes", procrustes), ("cka", cka)):
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"`{name}` must be a square (K, K) matrix, got shape {m.shape}.")
    if procrustes.shape != cka.shape:
        raise ValueError(f"`procrustes` {procrustes.shape} and `cka` {cka.shape} must have the same shape.")
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    for ax, m, title, vmax in zip(fig.subplots(1, 2), (procrustes, cka),
                                  ("Procrustes disparity of memory states", "linear CKA of activity"),
                                  (None, 1.0)):
        im = ax.imshow(np.ma.masked_invalid(m), cmap="viridis", vmin=0, vmax=vmax)
        ax.set_title(title)
        ax.set_xlabel("member")
        ax.set_ylabel("member")
        fig.colorbar(im, ax=ax, shrink=0.85)
    return _save(fig, path)


__all__ = ["pca_projection", "plot_connectivity", "plot_eigenvalues", "plot_ensemble_overview",
           "plot_fixed_point_spectra", "plot_realizations", "plot_spectra_grid", "plot_state_space",
           "plot_task_samples", "plot_test_set", "plot_training_curves", "plot_robustness",
           "plot_similarity_matrices"]


def plot_task_trials(inputs: object, outputs: object, targets: object, mask: object, path: str | os.PathLike,
                     *, max_trials: int = 6) -> list[Path]:
    """Test trials of any task: each trial's input channels, and its output against the target,
    with the steps the loss ignores (mask 0) shaded grey.

    **Arguments:**

    - `inputs`: `(B, T, M)`; `outputs`, `targets`, `mask`: `(B, T, O)` (one member's outputs).
    - `path`: output file name, without suffix (or with `.png`); PNG and PDF are written.
    - `max_trials`: at most this many trials (the first ones) are drawn, one column each.

    **Returns:** the list of written paths `[png, pdf]`.
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
    fig.legend(handles + h2, labels + l2, loc="outside upper center", ncols=len(labels) + len(l2), fontsize=8,
               frameon=False)
    return _save(fig, path)


def plot_task_state_space(states: object, answers: object, path: str | os.PathLike, *,
                          fixed_points: object = None, title: str | None = None) -> list[Path]:
    """Test trajectories of one member in their top-2 principal components, coloured by the trial's
    correct answer, with the fixed points (stable: filled; saddles: open) when given.

    **Arguments:**

    - `states`: `(B, T, N)` hidden states on the test trials.
    - `answers`: `(B,)` the trials' correct answers (e.g. ±1).
    - `path`: output file name, without suffix (or with `.png`); PNG and PDF are written.
    - `fixed_points`: `None` or a `FixedPoints` of this member (its `points` are `(P, N)`).

    **Returns:** the list of written paths `[png, pdf]`.
    """
    states = _array("states", states, 3, "(B, T, N)")
    answers = np.asarray(answers).reshape(-1)
    if answers.shape[0] != states.shape[0]:
        raise ValueError(f"`answers` must have B = {states.shape[0]} entries, got {answers.shape[0]}.")
    b, t, n = states.shape
    flat = states.reshape(b * t, n)
    mean, comps = pca_projection(flat, min(2, n))
    fig = _figure(5.6, 4.6)
    ax = fig.subplots()
    for value, colour in zip(sorted(set(answers.tolist())), ("tab:blue", "tab:orange", "tab:green", "tab:purple")):
        for i in np.flatnonzero(answers == value)[:40]:
            p = (states[i] - mean) @ comps.T
            ax.plot(p[:, 0], p[:, -1], lw=0.6, alpha=0.5, color=colour,
                    label=f"answer {value:+g}" if i == np.flatnonzero(answers == value)[0] else None)
    if fixed_points is not None:
        fp = _check_fixed_points("fixed_points", fixed_points, n)
        if len(fp):
            p = (np.asarray(fp.points) - mean) @ comps.T
            stable = np.asarray(fp.n_unstable) == 0
            ax.scatter(p[stable, 0], p[stable, -1], s=40, color="black", zorder=3, label="stable fixed point")
            ax.scatter(p[~stable, 0], p[~stable, -1], s=40, facecolors="none", edgecolors="black", zorder=3,
                       label="saddle")
    ax.set_xlabel("PC 1 (a.u.)")
    ax.set_ylabel("PC 2 (a.u.)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    return _save(fig, path)
