"""Analytic fixed points shared by the fixed-point and topology tests: decoupled bistable tanh units
`h = tanh(w h)` with the weights `W_DIAG` have their stable points at `±H_STAR` (and a saddle at 0)."""

import math

import numpy as np

W_DIAG = (1.5, 2.0, 3.0)


def tanh_root(w):
    """The positive root of tanh(w h) = h (w > 1), by bisection."""
    lo, hi = 1e-6, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if math.tanh(w * mid) > mid else (lo, mid)
    return 0.5 * (lo + hi)


H_STAR = np.asarray([tanh_root(w) for w in W_DIAG])
