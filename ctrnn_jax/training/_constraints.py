"""Biological constraints on the weights, kept outside the model and enforced by projection.

A `Constraints` pytree holds fixed arrays for one member (or, stacked, for an ensemble):

- `rec_mask (N, N)`, `in_mask (N, M)`, `out_mask (O, N)`: 1 where a weight may be non-zero, 0 where it
  is held at exactly 0 (sparse connectivity; the diagonal of `rec_mask` is 0 without autapses).
- `sign (N,)`: Dale's law, the sign of every outgoing recurrent weight of each unit: column `j` of
  `W_rec` (pre-synaptic unit `j`) satisfies `sign[j] * W_rec[:, j] >= 0`.

The model's `W_rec`, `W_in`, `W_out` always hold the effective weights, so every analysis works on
a constrained network unchanged. Training is projected gradient descent: `apply_constraints` after
the initialization and after every optimizer update sets masked entries and wrong-sign recurrent
entries to exactly 0 (the Euclidean projection onto the constraint set). `W_in` and `W_out` obey
their masks only; with `dale_readout_excitatory_only` the readout mask also removes the columns of
inhibitory units. Biases are never constrained.
"""

import dataclasses
import numbers
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int, config_from_dict
from ..models._model import CTRNN


@dataclasses.dataclass(frozen=True)
class ConstraintConfig:
    """Which constraints to impose (frozen, JSON-serialisable).

    - `dale`: Dale's law on `W_rec`: units `0 .. n_E - 1` are excitatory (all outgoing weights `>= 0`),
      the rest inhibitory (`<= 0`), with `n_E = round(excitatory_fraction * N)` (halves rounded up).
    - `excitatory_fraction`: fraction of excitatory units, in (0, 1); used only when `dale`.
    - `rec_density`, `in_density`, `out_density`: fraction of the allowed entries of `W_rec`, `W_in`,
      `W_out` that are connections, in (0, 1]; below 1 a random fixed mask with exactly
      `max(1, round(density * allowed))` ones is drawn per member.
    - `autapses`: whether a unit may connect to itself (False zeroes the diagonal of `W_rec`).
    - `dale_readout_excitatory_only`: read out from excitatory units only (`W_out` columns of inhibitory
      units are masked); requires `dale`. Readout signs are never constrained.

    "Allowed entries" excludes the diagonal of `W_rec` without autapses and the inhibitory columns of
    `W_out` with `dale_readout_excitatory_only`.
    """

    dale: bool = False
    excitatory_fraction: float = 0.8
    rec_density: float = 1.0
    in_density: float = 1.0
    out_density: float = 1.0
    autapses: bool = True
    dale_readout_excitatory_only: bool = False

    def __post_init__(self):
        for name in ("dale", "autapses", "dale_readout_excitatory_only"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"`{name}` must be a bool, got {getattr(self, name)!r}.")
        for name in ("excitatory_fraction", "rec_density", "in_density", "out_density"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"`{name}` must be a number, got {value!r}.")
            object.__setattr__(self, name, float(value))
        if not 0.0 < self.excitatory_fraction < 1.0:
            raise ValueError(f"`excitatory_fraction` must be in (0, 1), got {self.excitatory_fraction!r}.")
        for name in ("rec_density", "in_density", "out_density"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"`{name}` must be in (0, 1], got {getattr(self, name)!r}.")
        if self.dale_readout_excitatory_only and not self.dale:
            raise ValueError("`dale_readout_excitatory_only=True` requires `dale=True`.")

    @property
    def active(self) -> bool:
        """False when nothing is constrained (the trainer may then skip the projection)."""
        return self.dale or not self.autapses or min(self.rec_density, self.in_density, self.out_density) < 1.0

    def n_excitatory(self, n_units: int) -> int:
        """Number of excitatory units `round(excitatory_fraction * N)`, checked to leave >= 1 of each kind."""
        n = check_int("n_units", n_units, 1)
        n_e = int(np.floor(self.excitatory_fraction * n + 0.5))
        if not 1 <= n_e <= n - 1:
            raise ValueError(
                f"`excitatory_fraction={self.excitatory_fraction}` gives {n_e} excitatory and "
                f"{n - n_e} inhibitory units for `n_units={n}`; Dale's law needs at least one "
                "of each."
            )
        return n_e

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "ConstraintConfig":
        return config_from_dict(cls, d)


class Constraints(eqx.Module):
    """Fixed constraint arrays of one member (`N` units, `M` inputs, `O` outputs), or of `K` members
    stacked along a leading axis (`eqx.filter_vmap(make_constraints)`).

    - `rec_mask`: `(N, N)` float32 0/1, `rec_mask[post, pre]`.
    - `in_mask`: `(N, M)` float32 0/1.
    - `out_mask`: `(O, N)` float32 0/1.
    - `sign`: `(N,)` float32 ±1, the sign of unit `j`'s outgoing recurrent weights (all +1 when not `dale`).
    - `dale`: static; whether `sign` is enforced.
    """

    rec_mask: jax.Array
    in_mask: jax.Array
    out_mask: jax.Array
    sign: jax.Array
    dale: bool = eqx.field(static=True)


def _exact_mask(key: jax.Array, allowed: np.ndarray, density: float) -> jax.Array:
    """Float32 0/1 mask with exactly `max(1, round(density * allowed.sum()))` ones (none if nothing is
    allowed), all where `allowed`."""
    n_allowed = int(allowed.sum())
    if density >= 1.0 or n_allowed == 0:
        return jnp.asarray(allowed, dtype=jnp.float32)
    k = max(1, int(np.floor(density * n_allowed + 0.5)))
    scores = jnp.where(jnp.asarray(allowed), jax.random.uniform(key, allowed.shape), 2.0)
    chosen = jnp.argsort(jnp.ravel(scores))[:k]
    return jnp.zeros(allowed.size, jnp.float32).at[chosen].set(1.0).reshape(allowed.shape)


@eqx.filter_jit
def make_constraints(
    config: ConstraintConfig, n_inputs: int, n_units: int, n_outputs: int, *, key: jax.Array
) -> Constraints:
    """The constraints of ONE member; `eqx.filter_vmap` it over split keys for an ensemble.

    **Arguments:**

    - `config`: a `ConstraintConfig`.
    - `n_inputs`, `n_units`, `n_outputs`: `M`, `N`, `O`.
    - `key`: PRNG key for the random masks (keyword-only; unused when every density is 1).

    **Returns:** a `Constraints`. The excitatory units are the first `config.n_excitatory(N)`
    (deterministic, the same in every member); only the masks are random.
    """
    if not isinstance(config, ConstraintConfig):
        raise TypeError(f"`config` must be a ConstraintConfig, got {type(config).__name__}.")
    m = check_int("n_inputs", n_inputs, 1)
    n = check_int("n_units", n_units, 1)
    o = check_int("n_outputs", n_outputs, 1)
    if config.dale:
        n_e = config.n_excitatory(n)
        sign = np.where(np.arange(n) < n_e, 1.0, -1.0).astype(np.float32)
    else:
        sign = np.ones(n, np.float32)
    k_rec, k_in, k_out = jax.random.split(key, 3)
    rec_allowed = np.ones((n, n), bool)
    if not config.autapses:
        np.fill_diagonal(rec_allowed, False)
    out_allowed = np.ones((o, n), bool)
    if config.dale_readout_excitatory_only:
        out_allowed &= (sign > 0)[None, :]
    return Constraints(
        rec_mask=_exact_mask(k_rec, rec_allowed, config.rec_density),
        in_mask=_exact_mask(k_in, np.ones((n, m), bool), config.in_density),
        out_mask=_exact_mask(k_out, out_allowed, config.out_density),
        sign=jnp.asarray(sign),
        dale=config.dale,
    )


def _check_array(name: str, value, shape: tuple[int, ...], allowed: tuple[float, ...]) -> jax.Array:
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ValueError(f"`{name}` must have shape {shape}, got {arr.shape}.")
    if arr.dtype == bool:
        arr = arr.astype(np.float32)
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isin(arr, allowed)):
        raise ValueError(f"`{name}` must contain only the values {', '.join(map(str, allowed))}.")
    return jnp.asarray(arr, dtype=jnp.float32)


def constraints_from_arrays(
    rec_mask=None, in_mask=None, out_mask=None, sign=None, *, n_inputs: int, n_units: int, n_outputs: int
) -> Constraints:
    """Constraints of one member from user-supplied arrays (host arrays; checked here).

    **Arguments:**

    - `rec_mask`: `(N, N)` 0/1 (or bool), `rec_mask[post, pre]`; all ones if omitted.
    - `in_mask`: `(N, M)` 0/1; all ones if omitted.
    - `out_mask`: `(O, N)` 0/1; all ones if omitted.
    - `sign`: `(N,)` of ±1, Dale's law on `W_rec` columns; omitted = no sign constraint.
    - `n_inputs`, `n_units`, `n_outputs`: `M`, `N`, `O` (keyword-only).

    The same `Constraints` may be applied to every member of a stacked ensemble (see `apply_constraints`).
    """
    m = check_int("n_inputs", n_inputs, 1)
    n = check_int("n_units", n_units, 1)
    o = check_int("n_outputs", n_outputs, 1)

    def mask(name, value, shape):
        return jnp.ones(shape, jnp.float32) if value is None else _check_array(name, value, shape, (0, 1))

    return Constraints(
        rec_mask=mask("rec_mask", rec_mask, (n, n)),
        in_mask=mask("in_mask", in_mask, (n, m)),
        out_mask=mask("out_mask", out_mask, (o, n)),
        sign=jnp.ones(n, jnp.float32) if sign is None else _check_array("sign", sign, (n,), (-1, 1)),
        dale=sign is not None,
    )


def _lift(x: jax.Array, ndim: int) -> jax.Array:
    """Prepend singleton axes (explicitly: rank promotion may be disabled)."""
    return jnp.reshape(x, (1,) * (ndim - x.ndim) + x.shape)


def _check_shapes(model: CTRNN, constraints: Constraints) -> None:
    for field, mask in (("W_rec", "rec_mask"), ("W_in", "in_mask"), ("W_out", "out_mask")):
        w, c = getattr(model, field).shape, getattr(constraints, mask).shape
        if w[-2:] != c[-2:] or len(c) > len(w):
            raise ValueError(f"`constraints.{mask}` of shape {c} does not fit `model.{field}` of shape {w}.")


def _allowed(model: CTRNN, constraints: Constraints) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Boolean arrays, shaped like `W_rec`, `W_in`, `W_out`: where a weight's value is admissible."""
    nd = model.W_rec.ndim
    rec = _lift(constraints.rec_mask, nd) > 0
    if constraints.dale:
        sign = jnp.expand_dims(constraints.sign, -2)  # (..., 1, N): column j has sign[j]
        rec = rec & (_lift(sign, nd) * model.W_rec >= 0)
    return (rec, _lift(constraints.in_mask, model.W_in.ndim) > 0, _lift(constraints.out_mask, model.W_out.ndim) > 0)


@eqx.filter_jit
def apply_constraints(model: CTRNN, constraints: Constraints) -> CTRNN:
    """Project `W_rec`, `W_in`, `W_out` onto the constraint set: masked entries and recurrent entries
    of the wrong sign become exactly 0; the others are returned bit-for-bit unchanged. Idempotent.

    Pure JAX (jit- and vmap-able). Works on one member, under `eqx.filter_vmap` over a stacked
    ensemble and stacked constraints, directly on a stacked ensemble with stacked constraints, and on
    a stacked ensemble with ONE member's constraints (shared by every member).
    """
    _check_shapes(model, constraints)
    rec, inp, out = _allowed(model, constraints)

    def zero(ok, w):
        return jnp.where(ok, w, jnp.zeros_like(w))

    return eqx.tree_at(
        lambda mdl: (mdl.W_rec, mdl.W_in, mdl.W_out),
        model,
        (zero(rec, model.W_rec), zero(inp, model.W_in), zero(out, model.W_out)),
    )


@eqx.filter_jit
def constraint_violations(model: CTRNN, constraints: Constraints) -> dict[str, jax.Array]:
    """The largest violation of each kind (0 when the model satisfies the constraints exactly).

    **Returns:** a dict of scalars (or of `(K,)` arrays for a stacked ensemble):

    - `rec_mask`, `in_mask`, `out_mask`: max `|w|` over masked entries.
    - `dale`: max `|w|` over recurrent weights whose sign differs from their pre-synaptic unit's.
    - `autapses`: max `|W_rec[i, i]|` over the units whose self-connection is masked.
    """
    _check_shapes(model, constraints)

    def worst(bad, w):
        return jnp.max(jnp.where(bad, jnp.abs(w), jnp.zeros_like(w)), axis=(-2, -1))

    nd = model.W_rec.ndim
    rec_mask = _lift(constraints.rec_mask, nd)
    sign = _lift(jnp.expand_dims(constraints.sign, -2), nd)
    dale = (sign * model.W_rec < 0) if constraints.dale else jnp.zeros(model.W_rec.shape, bool)
    diag_w = jnp.diagonal(model.W_rec, axis1=-2, axis2=-1)
    diag_masked = jnp.diagonal(rec_mask, axis1=-2, axis2=-1) == 0
    return {
        "rec_mask": worst(rec_mask == 0, model.W_rec),
        "in_mask": worst(_lift(constraints.in_mask, model.W_in.ndim) == 0, model.W_in),
        "out_mask": worst(_lift(constraints.out_mask, model.W_out.ndim) == 0, model.W_out),
        "dale": worst(dale, model.W_rec),
        "autapses": jnp.max(jnp.where(diag_masked, jnp.abs(diag_w), jnp.zeros_like(diag_w)), axis=-1),
    }


def _host_spectral_radius(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w)
    return np.max(np.abs(np.linalg.eigvals(w.astype(np.float64))), axis=-1).astype(w.dtype)


def _spectral_radius(w: jax.Array) -> jax.Array:
    """Largest |eigenvalue| of `(..., N, N)` matrices, computed on the host by `numpy.linalg.eigvals`
    through `jax.pure_callback` (works under jit and vmap on every backend; not for the hot path)."""
    out = jax.ShapeDtypeStruct(w.shape[:-2], w.dtype)
    return jax.pure_callback(_host_spectral_radius, out, w, vmap_method="expand_dims")


def _check_radius(spectral_radius) -> None:
    if isinstance(spectral_radius, jax.core.Tracer):
        return
    r = np.asarray(spectral_radius)
    if r.ndim != 0 or not np.issubdtype(r.dtype, np.number) or not (r > 0 and np.isfinite(r)):
        raise ValueError(f"`spectral_radius` must be a number > 0, got {spectral_radius!r}.")


def _rescale(w: jax.Array, target) -> jax.Array:
    rho = _spectral_radius(w)
    return w * jnp.where(rho > 0, target / jnp.where(rho > 0, rho, 1.0), 1.0).astype(w.dtype)


@eqx.filter_jit
def dale_recurrent_init(
    key: jax.Array, n_units: int, sign: jax.Array, *, spectral_radius=1.0, rec_mask: jax.Array | None = None
) -> jax.Array:
    """A balanced excitatory/inhibitory `(N, N)` recurrent matrix, `W[post, pre]`.

    Magnitudes are half-normal `|N(0, 1)|` on the entries allowed by `rec_mask`, with the sign of the
    pre-synaptic unit (`sign[j]` for column `j`). In every row the inhibitory weights are then scaled
    so that they cancel the excitatory ones exactly (each row sums to 0, i.e. inhibitory weights are
    about `n_E/n_I` times stronger): the vector of ones is in the kernel, which removes the outlier
    eigenvalue of an unbalanced E/I matrix (Rajan & Abbott 2006; Song, Yang & Wang 2016). A row whose
    allowed inputs are all of one sign (possible with a sparse `rec_mask`) cannot be balanced and
    starts at 0: that unit gets no recurrent input at initialization, and training may grow it.
    Finally the matrix is rescaled so that its spectral radius is `spectral_radius` (a matrix whose
    spectral radius is 0, possible only with a very sparse mask, is left unscaled).

    The spectral radius is computed on the host (`numpy.linalg.eigvals`, through `jax.pure_callback`):
    this function works under `jit` and `jax.vmap` over keys (members are then decomposed one after
    another on the host), but belongs to initialization, not to a training step.

    **Arguments:**

    - `key`: PRNG key.
    - `n_units`: `N`.
    - `sign`: `(N,)` ±1 signs of the units (`Constraints.sign`).
    - `spectral_radius`: the target spectral radius (> 0; may be traced, e.g. a per-member gain).
    - `rec_mask`: `(N, N)` 0/1 connectivity mask; all ones if omitted.

    **Returns:** `(N, N)` float32 weights satisfying the sign pattern and the mask.
    """
    n = check_int("n_units", n_units, 1)
    _check_radius(spectral_radius)
    sign = jnp.asarray(sign)
    if sign.shape != (n,):
        raise ValueError(f"`sign` must have shape ({n},), got {sign.shape}.")
    mask = jnp.ones((n, n), bool) if rec_mask is None else jnp.asarray(rec_mask) > 0
    if mask.shape != (n, n):
        raise ValueError(f"`rec_mask` must have shape ({n}, {n}), got {mask.shape}.")
    magnitude = jnp.where(mask, jnp.abs(jax.random.normal(key, (n, n))), 0.0)
    exc = jnp.broadcast_to(sign[None, :] > 0, (n, n))
    e_sum = jnp.sum(jnp.where(exc, magnitude, 0.0), axis=1)
    i_sum = jnp.sum(jnp.where(exc, 0.0, magnitude), axis=1)
    balanced = (e_sum > 0) & (i_sum > 0)
    i_scale = e_sum / jnp.where(balanced, i_sum, 1.0)
    w = jnp.where(exc, magnitude, -magnitude * i_scale[:, None])
    w = jnp.where(jnp.broadcast_to(balanced[:, None], (n, n)), w, 0.0)
    return _rescale(w, spectral_radius)


@eqx.filter_jit
def initialize_constrained(model: CTRNN, constraints: Constraints, *, key: jax.Array, spectral_radius=None) -> CTRNN:
    """A model of ONE member satisfying `constraints` from step 0 (`eqx.filter_vmap` it for an ensemble).

    - With Dale's law, `W_rec` is replaced by `dale_recurrent_init(key, ...)` with the constraints'
      signs and mask.
    - Without it, `W_rec` keeps its initialization with masked entries zeroed; when the mask removes
      anything (or `spectral_radius` is given) it is rescaled to the target spectral radius.
    - `W_in` and `W_out` are masked, not rescaled; biases, `alpha` and `activation` are kept.

    **Arguments:**

    - `model`: a single `CTRNN` (under `eqx.filter_vmap`, one member of an ensemble).
    - `constraints`: that member's `Constraints`.
    - `key`: PRNG key for the Dale initialization (keyword-only).
    - `spectral_radius`: target spectral radius of `W_rec`; by default that of `model.W_rec` (its
      gain `g` for the orthogonal initialization), so per-member gains carry over.
    """
    if model.W_rec.ndim != 2:
        raise ValueError(
            "`initialize_constrained` acts on one member; use `eqx.filter_vmap` over a stacked "
            f"ensemble (got `W_rec` of shape {model.W_rec.shape})."
        )
    _check_shapes(model, constraints)
    if spectral_radius is not None:
        _check_radius(spectral_radius)
    target = _spectral_radius(model.W_rec) if spectral_radius is None else spectral_radius
    if constraints.dale:
        w = dale_recurrent_init(
            key, model.n_units, constraints.sign, spectral_radius=target, rec_mask=constraints.rec_mask
        )
    else:
        w = jnp.where(constraints.rec_mask > 0, model.W_rec, jnp.zeros_like(model.W_rec))
        rescaled = _rescale(w, target)
        w = rescaled if spectral_radius is not None else jnp.where(jnp.all(constraints.rec_mask > 0), w, rescaled)
    model = eqx.tree_at(lambda mdl: mdl.W_rec, model, w.astype(model.W_rec.dtype))
    return apply_constraints(model, constraints)
