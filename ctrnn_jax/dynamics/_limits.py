"""Will a fixed-point search fit in memory? An estimate made before any candidate is drawn.

`fixed_point_memory` counts what the search of one constant input holds at once, for `K` members of
state size `S`:

- the trajectories whose states are candidates: the states of every member on the task's test trials and
  `n_trials` training (or probe) trials, `K · B · T · S`, on the device (float32) and on the host (float64,
  and once more concatenated for the state-space range): 20 bytes per entry;
- the candidates `K · C · S` (`C = n_candidates`): on the host in float64 (the trajectory picks, the
  state-space points, their concatenation) and in the search (the states, Adam's two moments, the
  gradient, the previous iterate, the speeds) at the working precision: `3 · 8 + 6 · itemsize` bytes per
  entry.

A lower bound of the peak (XLA's temporaries and the completion's segments come on top), so
`check_fixed_point_memory` refuses only what cannot fit: more than the available memory.
"""

import numpy as np

from ..training._memory import _gb, available_memory

_TRAJECTORY_BYTES = 4 + 8 + 8  # per state entry: device float32, host float64, the concatenated copy
_HOST_CANDIDATE_BYTES = 3 * 8  # per candidate entry on the host: picks or points, concatenation, noise
_SEARCH_ARRAYS = 6  # per candidate entry in the search: state, two Adam moments, gradient, previous, speed


def fixed_point_memory(
    members: int, state_size: int, n_candidates: int, trials: int, length: int, itemsize: int = 4
) -> int:
    """Bytes a fixed-point search needs at least (module docstring): `members` networks of `state_size`
    states, `n_candidates` candidates each, candidates from `trials` trials of `length` steps."""
    k, s = int(members), int(state_size)
    states = k * int(trials) * int(length) * s * _TRAJECTORY_BYTES
    candidates = k * int(n_candidates) * s * (_HOST_CANDIDATE_BYTES + _SEARCH_ARRAYS * int(itemsize))
    return states + candidates


def check_fixed_point_memory(members: int, state_size: int, config, *, trials: int, length: int) -> int:
    """Raise `ValueError` before any work when the search of `config` (a `FixedPointConfig`) cannot fit
    in memory (`fixed_point_memory` above the available memory); returns the estimate in bytes.

    - `trials`, `length`: the trials whose states are candidates (the task's test and `n_trials` training
      trials, or `n_trials` probe trials) and their length `T`.
    """
    itemsize = np.dtype(config.dtype).itemsize
    need = fixed_point_memory(members, state_size, config.n_candidates, trials, length, itemsize)
    have, where = available_memory()
    if have is not None and need > have:
        raise ValueError(
            f"the fixed-point search of K = {members} members of state size S = {state_size} with "
            f"`n_candidates` = {config.n_candidates} candidates from {trials} trials of T = {length} "
            f"steps (`n_trials` = {config.n_trials}) would need about {_gb(need)}, more than the "
            f"{_gb(have)} of {where}; use fewer candidates or trials."
        )
    return need


_POINT_BYTES = 8 + 8 + 16  # per Jacobian entry of a fixed point: the working copy (<= 8), float64, complex eig
_AUTO_SHARE = 0.25  # the share of the available memory the fixed points of all members may take
AUTO_MAX_POINTS_FLOOR = 1024  # `max_points=None` never bounds a member below this
_NO_MEMORY_INFO = 1 << 16  # the bound where the available memory is unknown


def auto_max_points(members: int, state_size: int, itemsize: int = 4) -> int:
    """The bound on a member's fixed points when `FixedPointConfig.max_points` is None: as many as a quarter
    of the available memory holds for `members` members (each point keeps an `S × S` Jacobian at the working
    precision and in float64, and its eigendecomposition: about `32 S²` bytes), at least
    `AUTO_MAX_POINTS_FLOOR`. The completion stops a member at the bound and flags it `capped`."""
    s = int(state_size)
    per_point = s * s * (_POINT_BYTES - 8 + int(itemsize)) + 64 * s
    have, _ = available_memory()
    if have is None:
        return max(AUTO_MAX_POINTS_FLOOR, _NO_MEMORY_INFO)
    return max(AUTO_MAX_POINTS_FLOOR, int(_AUTO_SHARE * have // (max(1, int(members)) * per_point)))


__all__ = ["auto_max_points", "check_fixed_point_memory", "fixed_point_memory"]
