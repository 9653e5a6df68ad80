"""The bifurcation diagram of a continuation: each followed fixed point's readout against the path parameter,
stable stretches solid and unstable ones dashed, the bifurcations marked."""

import os
from typing import TYPE_CHECKING

import numpy as np

from ..dynamics._continuation import Continuation
from ._figure import _figure, _save

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_EVENT_MARKERS = {
    "saddle-node": ("o", "tab:red"),
    "hopf": ("*", "tab:blue"),
    "flip": ("s", "tab:green"),
    "branch point": ("D", "tab:purple"),
}


def plot_bifurcation_diagram(
    continuation: Continuation,
    path: str | os.PathLike | None = None,
    *,
    output: int = 0,
    members=None,
    max_panels: int = 4,
) -> "Figure":
    """One panel per member (the first `max_panels`, or `members`): readout `output` of every branch against
    the path parameter `p`; solid where the point is stable (no `|λ| > 1`), dashed where it is not; markers at
    the bifurcations, the legend counting them.

    **Arguments:**

    - `continuation`: a `Continuation` (`follow_fixed_points`).
    - `path`: write PNG and PDF there (see `save_figure`); None: only return the figure.
    - `output`: which readout to draw (0 ≤ output < O).
    - `members`: the members to draw (default the first `max_panels` that have branches).

    **Returns:** the `matplotlib.figure.Figure`.
    """
    if not isinstance(continuation, Continuation):
        raise ValueError(f"`continuation` must be a Continuation, got {type(continuation).__name__}.")
    if not len(continuation):
        raise ValueError("`continuation` has no branches to draw.")
    n_out = continuation.outputs[0].shape[-1]
    if isinstance(output, bool) or not isinstance(output, (int, np.integer)) or not 0 <= output < n_out:
        raise ValueError(f"`output` must be an integer in 0..{n_out - 1}, got {output!r}.")
    have = [int(k) for k in np.unique(continuation.member)]
    if members is None:
        members = have[:max_panels]
    members = [int(k) for k in np.atleast_1d(members)]
    if not members or any(k not in have for k in members):
        raise ValueError(f"`members` must be members with branches ({have}), got {members}.")
    fig = _figure(3.6 * len(members), 3.2)
    axes = np.atleast_1d(fig.subplots(1, len(members), sharey=True, squeeze=False)[0])
    for ax, k in zip(axes, members):
        for b in np.flatnonzero(continuation.member == k):
            p, z = continuation.param[b], continuation.outputs[b][:, output]
            stable = continuation.n_unstable[b] == 0
            for part, style in ((stable, "-"), (~stable, "--")):
                ax.plot(p, np.where(part, z, np.nan), ls=style, color="black" if style == "-" else "0.45", lw=1.2)
        shown: dict[str, int] = {}
        for e in continuation.events_of(member=k):
            marker, colour = _EVENT_MARKERS[e["kind"]]
            ax.plot(e["param"], e["output"][output], marker=marker, color=colour, ms=7, ls="none", zorder=3)
            shown[e["kind"]] = shown.get(e["kind"], 0) + 1
        handles = [
            ax.plot([], [], color="black", lw=1.2, label="stable")[0],
            ax.plot([], [], color="0.45", ls="--", lw=1.2, label="unstable")[0],
        ]
        handles += [
            ax.plot(
                [], [], marker=_EVENT_MARKERS[kind][0], color=_EVENT_MARKERS[kind][1], ls="none", label=f"{kind} ({n})"
            )[0]
            for kind, n in shown.items()
        ]
        ax.legend(handles=handles, fontsize=7, loc="best")
        ax.set_xlim(0.0, 1.0)
        ax.set_title(f"member {k}", fontsize=9)
        ax.set_xlabel(f"{continuation.label} (path parameter p, 0 to 1)")
    axes[0].set_ylabel(f"readout z{output} (arb. units)")
    return _save(fig, path)


__all__ = ["plot_bifurcation_diagram"]
