"""Line attractors and selection vectors per context (Mante, Sussillo, Shenoy & Newsome, Nature 2013, Fig. 5–6).

At each constant input of a task (`fixed_point_inputs`: e.g. each context cue on, no evidence), the points
of a line attractor or slow manifold are the fixed and analysed slow points whose slowest mode is real with
`|λ − 1| < band` (a time constant of at least `1/band` steps). At each of them the linearization
(`linearize`) gives the mode's direction `r` (the line's local direction) and its selection vector `l`
(left eigenvector, `l · r = 1`); an input channel `m` moves the state along the line by `l · B[:, m]` per
step and unit input. The network selects the relevant evidence when that overlap is large for the cued
stream and small for the other: `relevant_inputs` (a task hook) names the cued channel of each constant input.

Per member and constant input: the number of line points, how well their directions agree (the median
`|r_i · r_j|` over pairs: 1 on a straight line), the median `|l · B[:, m]|` per channel, and the ratio of the
relevant overlap to the largest irrelevant one; across members, the distribution of that ratio.
"""

import dataclasses

import numpy as np

from .._results import Result, text_table
from ._fixed_point_set import FixedPoints
from ._fixed_points import as_ensemble
from ._linearization import linearize

BAND = 0.05  # a slow mode: |λ − 1| below it (a time constant of 20 steps or more)


@dataclasses.dataclass(frozen=True, eq=False)
class Selection(Result):
    """Line attractors and selection vectors per member and constant input (module docstring).

    **Fields:**

    - `inputs`: `(C, M)` the constant inputs (contexts).
    - `relevant`: `(C,)` int, the cued channel at each (−1 where the task names none).
    - `evidence`: the channels compared (those that are zero in every constant input: the evidence streams).
    - `n_points`: `(K, C)` int, the line points of each member at each input.
    - `alignment`: `(K, C)` the median `|r_i · r_j|` of their slow directions (NaN with fewer than 2 points).
    - `overlap`: `(K, C, M)` the median `|l · B[:, m]|` per channel (NaN without line points).
    - `ratio`: `(K, C)` the relevant channel's overlap over the largest other evidence channel's (NaN where
      undefined).
    - `band`: the slow-mode band.
    """

    inputs: np.ndarray
    relevant: np.ndarray
    evidence: np.ndarray
    n_points: np.ndarray
    alignment: np.ndarray
    overlap: np.ndarray
    ratio: np.ndarray
    band: float

    def has_line(self, min_points: int = 3, min_alignment: float = 0.9) -> np.ndarray:
        """`(K, C)` bool: at least `min_points` line points whose slow directions agree to `min_alignment`."""
        return (self.n_points >= min_points) & (np.nan_to_num(self.alignment) >= min_alignment)

    def consistency(self) -> list[dict]:
        """Per constant input (context), across the members where the relevant/other ratio is defined: `members`
        (how many), the `median`, `min` and `max` of the ratio, `log_spread` (the standard deviation of its
        log10 over the members where it is finite and positive: 0 when every member selects alike) and
        `favour_relevant` (the members whose ratio is above 1). Values are None where no member has a ratio."""
        out = []
        for c in range(self.inputs.shape[0]):
            r = self.ratio[:, c]
            r = r[~np.isnan(r)]
            pos = r[np.isfinite(r) & (r > 0)]
            out.append(
                {
                    "input": c,
                    "relevant": int(self.relevant[c]),
                    "members": int(r.size),
                    "median": float(np.median(r)) if r.size else None,
                    "min": float(np.min(r)) if r.size else None,
                    "max": float(np.max(r)) if r.size else None,
                    "log_spread": float(np.std(np.log10(pos))) if pos.size else None,
                    "favour_relevant": int(np.sum(r > 1)),
                }
            )
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Selection":
        """The `Selection` that `to_dict` wrote (e.g. in `analysis.json`)."""
        inputs = np.asarray(data["inputs"], np.float64)
        c, m = inputs.shape
        k = len(data["n_points"])

        def num(v, shape):
            flat = np.ravel(np.asarray(v, dtype=object))
            return np.asarray([np.nan if x is None else x for x in flat], np.float64).reshape(shape)

        return cls(
            inputs=inputs,
            relevant=np.asarray(data["relevant"], int).reshape(c),
            evidence=np.asarray(data["evidence"], int).reshape(-1),
            n_points=np.asarray(data["n_points"], int).reshape(k, c),
            alignment=num(data["alignment"], (k, c)),
            overlap=num(data["overlap"], (k, c, m)),
            ratio=num(data["ratio"], (k, c)),
            band=float(data["band"]),
        )

    def _table(self):
        header = (
            ["member", "input", "line points", "alignment"]
            + [f"|l·B| ch {m}" for m in self.evidence]
            + ["relevant / other"]
        )
        body = []
        for k in range(self.n_points.shape[0]):
            for c in range(self.inputs.shape[0]):
                body.append(
                    [str(k), str(c), str(int(self.n_points[k, c])), _fmt(self.alignment[k, c])]
                    + [_fmt(self.overlap[k, c, m]) for m in self.evidence]
                    + [_fmt(self.ratio[k, c])]
                )
        return header, body

    def __repr__(self) -> str:
        header, body = self._table()
        return text_table(
            f"Line attractors and selection vectors (slow band |λ − 1| < {self.band:g})", header, body, max_rows=64
        )

    def _repr_html_(self) -> str:
        from .._results import html_table

        header, body = self._table()
        return html_table("Line attractors and selection vectors", header, body)

    def to_dict(self) -> dict:
        def num(a):
            return [[None if not np.isfinite(v) else float(v) for v in np.ravel(row)] for row in np.asarray(a)]

        return {
            "inputs": self.inputs.tolist(),
            "relevant": self.relevant.tolist(),
            "evidence": self.evidence.tolist(),
            "band": self.band,
            "n_points": self.n_points.tolist(),
            "alignment": num(self.alignment),
            "overlap": [num(o) for o in self.overlap],
            "ratio": num(self.ratio),
        }


def _fmt(v) -> str:
    return "–" if not np.isfinite(v) else f"{v:.3g}"


def selection_analysis(ensemble, task, fixed_points: list, *, band: float = BAND) -> Selection:
    """Line attractors and selection vectors of every member at each constant input (module docstring).

    **Arguments:**

    - `ensemble`: the stacked ensemble (any cell); `task`: its task (its `relevant_inputs` hook, if any).
    - `fixed_points`: a list of `FixedPoints`, one per constant input (as `fixed_point_stage` returns), fixed
      and analysed slow points both taken.
    - `band`: a mode is slow when `|λ − 1| < band` (0 < band < 1).

    **Returns:** a `Selection`.
    """
    ensemble = as_ensemble(ensemble)
    if not isinstance(fixed_points, (list, tuple)) or not all(isinstance(f, FixedPoints) for f in fixed_points):
        raise TypeError("`fixed_points` must be a list of FixedPoints, one per constant input.")
    if isinstance(band, bool) or not isinstance(band, (int, float)) or not 0 < band < 1:
        raise ValueError(f"`band` must be in (0, 1), got {band!r}.")
    k, m = ensemble.W_out.shape[0], ensemble.n_inputs
    inputs = np.stack([np.asarray(f.inputs, np.float64)[0] for f in fixed_points])
    relevant = task.relevant_inputs() if task is not None else None
    relevant = np.full(len(fixed_points), -1) if relevant is None else np.asarray(relevant, int)
    if relevant.shape != (len(fixed_points),):
        raise ValueError(
            f"the task's `relevant_inputs` has shape {relevant.shape}; expected ({len(fixed_points)},), "
            "one per constant input."
        )
    evidence = np.flatnonzero(np.all(inputs == 0, axis=0))
    n_points = np.zeros((k, len(fixed_points)), int)
    alignment = np.full((k, len(fixed_points)), np.nan)
    overlap = np.full((k, len(fixed_points), m), np.nan)
    ratio = np.full((k, len(fixed_points)), np.nan)
    for c, fp in enumerate(fixed_points):
        lin = linearize(ensemble, fp)
        if not len(lin):
            continue
        idx = lin.slow_modes(1)[:, 0]
        lam = lin.eigvals[np.arange(len(lin)), idx]
        line = (np.abs(lam.imag) == 0) & (np.abs(lam - 1) < band)
        if not line.any():
            continue
        r = lin.slow_directions(1)[:, :, 0]
        over = np.abs(lin.input_overlaps(1)[:, 0, :])
        for kk in range(k):
            mine = line & (lin.member == kk)
            n_points[kk, c] = int(mine.sum())
            if not mine.any():
                continue
            overlap[kk, c] = np.median(over[mine], axis=0)
            if mine.sum() >= 2:
                g = np.abs(r[mine] @ r[mine].T)
                alignment[kk, c] = float(np.median(g[np.triu_indices(int(mine.sum()), 1)]))
            rel = relevant[c]
            others = [e for e in evidence if e != rel]
            if rel >= 0 and others:
                top = np.max(overlap[kk, c, others])
                ratio[kk, c] = overlap[kk, c, rel] / top if top > 0 else np.inf
    return Selection(
        inputs=inputs,
        relevant=relevant,
        evidence=evidence,
        n_points=n_points,
        alignment=alignment,
        overlap=overlap,
        ratio=ratio,
        band=float(band),
    )


__all__ = ["BAND", "Selection", "selection_analysis"]
