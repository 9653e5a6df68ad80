"""`FixedPointConfig`: every option of the fixed-point stage (candidates, search, completion of the saddle
set, linearization) in one frozen dataclass, saved as JSON next to the fixed points it made."""

import dataclasses
from collections.abc import Mapping

import jax.numpy as jnp

from .._checks import check_int, check_positive, check_seed, config_from_dict


@dataclasses.dataclass(frozen=True)
class FixedPointConfig:
    """How the fixed points of every member are found (frozen, JSON-serialisable). Every option has the
    same meaning for every task, every cell and a network without a task.

    **Fields:**

    - `n_candidates`: initial states per member and constant input (>= 2).
    - `state_space_fraction`: the share of the candidates drawn over the state space (uniform points in
      the range of the states, half of them then run forward a random number of steps), the rest
      from the network's own trajectories (a task's test and training trials, or probe trials for a
      network without a task); in [0, 1].
    - `n_trials`: random training (or probe) trials whose states are candidates (>= 1).
    - `noise_std`: std of the Gaussian noise added to the trajectory candidates (>= 0).
    - `restarts`: extra search rounds from candidates made of the points found so far (>= 0).
    - `newton_starts`: uniform starts per member (in the box of the candidates) searched by damped Newton
      alone, 32 iterations, without Adam: Newton reaches saddles of high index whose neighbourhoods Adam on
      q passes by (>= 0; None: as many as about 4·10¹⁰ flops allow, between 64 and 4 × `n_candidates`).
    - `adam_steps`: Adam steps on the speed q = ½‖F(s) − s‖² (>= 0).
    - `learning_rate`: Adam's initial learning rate (> 0).
    - `final_learning_rate`: Adam's final learning rate; the rate decays exponentially to it (> 0).
    - `newton_steps`: damped Newton iterations after Adam, at most, per candidate (>= 0): after the first 4,
      only the candidates not yet at q <= tol_q (not yet fixed points) get the rest.
    - `tol_q`: candidates with q <= tol_q are fixed points; None for ½·S·(10 ε)², a residual of 10
      machine epsilons per state entry (>= 0).
    - `slow_tol`: candidates with tol_q < q <= slow_tol are listed as slow points (>= 0). Those up to the
      *slow threshold* a task sets (`fixed_point_stage`: the speed at which the readout drifts less than the
      task's tolerance over its longest hold; capped by `slow_tol`) are also linearized and classified, like
      the fixed points, and marked `exact = False`.
    - `marginal_tol`: δ, the tolerance band of the classification around the unit circle, in (0, 1): a
      point is stable when every `|λ| <= 1 − δ`, a saddle of index k when k eigenvalues have `|λ| > 1 + δ`,
      marginal of dimension m when none does and m have `1 − δ < |λ| <= 1 + δ` (see `docs/fixed_points.md`).
    - `dedup_tol`: points of a member closer than this (Euclidean) are one point (>= 0).
    - `outlier_scale`: drop points farther from the candidates' centroid than this many times their
      mean distance to it; None keeps every point (> 0).
    - `complete`: complete the saddle set: search the segments between pairs of neighbouring fixed
      points (an index-k saddle of a grid of attractors sits between two points on opposite sides of
      its face), round after round until no new point appears.
    - `neighbours`: in completion, each fixed point is paired with at most this many nearest points of its
      own saddle index, within twice its nearest-neighbour distance (>= 1).
    - `samples`: in completion, points per segment where q is evaluated (>= 3).
    - `completion_rounds`: at most this many completion rounds (>= 1); a member whose last round still
      found new points is flagged `capped`.
    - `max_points`: in completion, a member that holds this many fixed points gets no further round
      (>= 1; None, the default: as many as a quarter of the available memory holds, at least 1024,
      `dynamics._limits.auto_max_points`). A member stopped by it, or by `completion_rounds` with work left,
      is flagged `capped` (`FixedPoints.capped`, its table, the log): its counts are lower bounds.
    - `eigvecs`: also keep the Jacobians' eigenvectors ((P, S, S) complex; large).
    - `dtype`: working precision: float32 or float64 (float64 needs 64-bit JAX enabled by the caller).
    - `seed`: seed of the candidates and restarts.
    """

    n_candidates: int = 1024
    state_space_fraction: float = 0.25
    n_trials: int = 32
    noise_std: float = 0.0
    restarts: int = 1
    newton_starts: int | None = None
    adam_steps: int = 300
    learning_rate: float = 0.1
    final_learning_rate: float = 1e-3
    newton_steps: int = 8
    tol_q: float | None = None
    slow_tol: float = 1e-6
    marginal_tol: float = 1e-3
    dedup_tol: float = 1e-3
    outlier_scale: float | None = 10.0
    complete: bool = True
    neighbours: int = 64
    samples: int = 31
    completion_rounds: int = 24
    max_points: int | None = None
    eigvecs: bool = False
    dtype: str = "float32"
    seed: int = 0

    def __post_init__(self):
        check_int("n_candidates", self.n_candidates, 2)
        fraction = check_positive("state_space_fraction", self.state_space_fraction, allow_zero=True)
        if fraction > 1:
            raise ValueError(f"`state_space_fraction` must be in [0, 1], got {self.state_space_fraction!r}.")
        check_int("n_trials", self.n_trials, 1)
        check_positive("noise_std", self.noise_std, allow_zero=True)
        check_int("restarts", self.restarts, 0)
        if self.newton_starts is not None:
            check_int("newton_starts", self.newton_starts, 0)
        check_int("adam_steps", self.adam_steps, 0)
        check_positive("learning_rate", self.learning_rate)
        check_positive("final_learning_rate", self.final_learning_rate)
        check_int("newton_steps", self.newton_steps, 0)
        if self.tol_q is not None:
            check_positive("tol_q", self.tol_q, allow_zero=True)
        check_positive("slow_tol", self.slow_tol, allow_zero=True)
        if check_positive("marginal_tol", self.marginal_tol) >= 1:
            raise ValueError(f"`marginal_tol` must be in (0, 1), got {self.marginal_tol!r}.")
        check_positive("dedup_tol", self.dedup_tol, allow_zero=True)
        if self.outlier_scale is not None:
            check_positive("outlier_scale", self.outlier_scale)
        for name in ("complete", "eigvecs"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"`{name}` must be a bool, got {getattr(self, name)!r}.")
        check_int("neighbours", self.neighbours, 1)
        check_int("samples", self.samples, 3)
        check_int("completion_rounds", self.completion_rounds, 1)
        if self.max_points is not None:
            check_int("max_points", self.max_points, 1)
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"`dtype` must be one of float32, float64; got {self.dtype!r}.")
        check_seed("seed", self.seed)

    def working_dtype(self):
        """The JAX dtype of the search; a ValueError when float64 is asked for without 64-bit JAX."""
        import jax

        dt = jnp.dtype(self.dtype)
        if jax.dtypes.canonicalize_dtype(dt) != dt:
            raise ValueError(
                "`dtype`=float64 needs 64-bit JAX: set `jax.config.update('jax_enable_x64', True)` "
                "(or use `with jax.enable_x64():`) before calling; ctrnn_jax never changes it."
            )
        return dt

    def default_tol_q(self, state_size: int) -> float:
        """`tol_q`, or its default `½·S·(10 ε)²` for states of size `S` at the working precision."""
        if self.tol_q is not None:
            return float(self.tol_q)
        return 0.5 * state_size * (10 * float(jnp.finfo(jnp.dtype(self.dtype)).eps)) ** 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "FixedPointConfig":
        return config_from_dict(cls, d)


__all__ = ["FixedPointConfig"]
