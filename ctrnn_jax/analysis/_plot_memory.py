"""The memory lifetimes of the behavioural memory check (`memory_check`): per member, how long each memory
state's readout stays within the task's tolerance at rest.

Conventions (the returned `Figure`, optional PNG+PDF, `ax=`, lazy matplotlib) are those of `_figure.py`.
"""

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ._figure import _figure_or_axes, _save

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_memory_lifetimes(check, path: str | os.PathLike | None = None, *, ax: "Axes | None" = None) -> "Figure":
    """Every member's memory lifetimes (`MemoryCheck.lifetime`) in test-trial lengths, one column of points per
    member (log scale): a filled circle per memory state lost within the horizon, an open triangle per state
    censored at the horizon (held throughout: its lifetime is at least that), a cross per state whose readout
    started nearer another label (a memory the member did not reach). Dashed lines mark one trial (the band
    between short- and long-lived) and the horizon; each member's median is a short black bar.

    **Arguments:**

    - `check`: a `MemoryCheck` with lifetimes (`memory_check`'s result, or one read back from an analysis
      written since the lifetimes).
    - `path`: `None` (nothing written) or an output file name, without suffix (or with `.png`); PNG and PDF.
    - `ax`: `None` (a new figure) or a matplotlib `Axes` to draw into.

    **Returns:** the `Figure`. Raises `ValueError` for a check without lifetimes.
    """
    from ..dynamics._behaviour import MemoryCheck

    if not isinstance(check, MemoryCheck):
        raise ValueError(f"`check` must be a MemoryCheck (from memory_check), got {type(check).__name__}.")
    if check.lifetime is None or check.trial_steps is None:
        raise ValueError("`check` has no lifetimes (a memory check written before them); run memory_check again.")
    life = np.asarray(check.lifetime_trials, np.float64)  # (K, L)
    held = np.asarray(check.holds, bool)
    reached = np.ones_like(held) if check.reached is None else np.asarray(check.reached, bool)
    k, n = life.shape
    fig, ax = _figure_or_axes(ax, max(4.0, 1.2 + 0.5 * k), 4.0)
    horizon = check.horizon_steps / check.trial_steps
    jitter = np.linspace(-0.25, 0.25, n) if n > 1 else np.zeros(1)
    x = np.arange(k)[:, None] + jitter[None]
    floor = 0.5 / check.trial_steps  # a lifetime of 0 steps on the log axis
    y = np.maximum(life, floor)
    groups: tuple[tuple[str, np.ndarray, dict[str, Any]], ...]  # (label, which points, scatter style)
    groups = (
        ("lost within the horizon", ~held & reached, dict(marker="o", color="C0")),
        ("held for the whole horizon (censored)", held & reached, dict(marker="^", facecolors="none", edgecolors="C2")),
        ("not reached (readout nearer another label)", ~reached, dict(marker="x", color="C3")),
    )
    for name, mask, style in groups:
        if np.any(mask):
            ax.scatter(x[mask], y[mask], s=22, lw=1.0, label=f"{name}: {int(mask.sum())}", **style)
    medians = np.median(y, axis=1)
    ax.hlines(medians, np.arange(k) - 0.35, np.arange(k) + 0.35, color="black", lw=1.5, label="member median")
    ax.axhline(1.0, color="grey", ls="--", lw=0.8)
    ax.axhline(horizon, color="grey", ls=":", lw=0.8)
    ax.text(k - 0.5, 1.0, " 1 trial", va="bottom", ha="right", fontsize=7, color="grey")
    ax.text(k - 0.5, horizon, " horizon", va="top", ha="right", fontsize=7, color="grey")
    ax.set_yscale("log")
    ax.set_ylim(min(floor, np.min(y)) * 0.8, horizon * 1.6)
    ax.set_xlim(-0.6, k - 0.4)
    ax.set_xticks(np.arange(k))
    ax.set_xlabel("member")
    ax.set_ylabel(f"memory lifetime (test trials of {check.trial_steps} steps)")
    ax.set_title(
        f"memory lifetimes at rest: {k} member(s) x {n} memory states, readout tolerance {check.tolerance:.3g}",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    return _save(fig, path)


__all__ = ["plot_memory_lifetimes"]
