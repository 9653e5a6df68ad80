"""Ensembles: K CTRNNs stacked along a leading member axis, built by `eqx.filter_vmap`."""

import dataclasses
import numbers
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_int
from .._imports import import_object, is_import_string
from ..models._activations import check_activation
from ..models._base import AbstractRNN
from ..models._gated import GRU, LSTM, UGRNN
from ..models._initializers import READOUT_INITS, RECURRENT_INITS
from ..models._model import CTRNN
from ._constraints import ConstraintConfig, Constraints, initialize_constrained, make_constraints

# The built-in cells by name; `EnsembleConfig.cell` also takes the import string of a cell of one's own.
CELL_CLASSES: dict[str, type[AbstractRNN]] = {"ctrnn": CTRNN, "gru": GRU, "lstm": LSTM, "ugrnn": UGRNN}
CELLS = tuple(CELL_CLASSES)
# The fields of `EnsembleConfig` that only the CTRNN uses (a gated cell refuses them at other values).
CTRNN_ONLY = ("alpha", "gain", "recurrent_init", "readout_init")


def per_member(
    name: str,
    value: object,
    n_members: int,
    *,
    low: float,
    high: float = np.inf,
    low_open: bool = True,
    high_open: bool = False,
) -> np.ndarray:
    """Broadcast a scalar or a length-K sequence to a `(K,)` float array and check its range.

    Raises `ValueError` naming `name` when a value lies outside the interval or the length is wrong.
    """
    if isinstance(value, (bool, str)) or not (
        isinstance(value, numbers.Real) or isinstance(value, (Sequence, np.ndarray, jax.Array))
    ):
        raise TypeError(f"`{name}` must be a number or a sequence of {n_members} numbers, got {value!r}.")
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n_members, float(arr))
    if arr.shape != (n_members,):
        raise ValueError(
            f"`{name}` must be a number or a sequence of length {n_members} (one per member), got shape {arr.shape}."
        )
    lo_ok = arr > low if low_open else arr >= low
    hi_ok = arr < high if high_open else arr <= high
    if not np.all(lo_ok & hi_ok) or not np.all(np.isfinite(arr)):  # infinity and NaN are never a setting
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open or high == np.inf else ']'}"
        raise ValueError(f"`{name}` must be a finite number in {interval}, got {value!r}.")
    return arr


@dataclasses.dataclass(frozen=True)
class EnsembleConfig:
    """How to build an ensemble of `members` networks (frozen, JSON-serialisable).

    **Fields:**

    - `members`: number of networks `K` trained at once (>= 1).
    - `units`: units per network `N` (>= 1).
    - `inputs`: inputs per network `M` (>= 1), the task's `n_inputs`.
    - `outputs`: outputs per network `O` (>= 1), the task's `n_outputs`.
    - `alpha`: `dt/tau` in (0, 1], a number or one per member; 1 is Keras' SimpleRNN. CTRNN only.
    - `activation`: the nonlinearity, a name of `ctrnn_jax.models.ACTIVATIONS` (every cell).
    - `gain`: initial recurrent gain `g` (> 0), a number or one per member. CTRNN only.
    - `recurrent_init`: initializer of `W_rec`: `"orthogonal"` (times `g`) or `"normal"` (variance
      `g²/N`). CTRNN only.
    - `readout_init`: initializer of `W_out`: `"glorot_uniform"`, `"normal"` or `"zeros"`. CTRNN only.
    - `cell`: `"ctrnn"` (the paper's model), `"gru"`, `"lstm"` or `"ugrnn"` (`ctrnn_jax.models._gated`;
      Keras-style initialization, every array trained), or the import string `module:QualName` of a
      cell of one's own (a subclass of `AbstractRNN`, built as `Cls(M, N, O, key=..., activation=...)`;
      see the docs page "Writing a cell").
    - `dale`: Dale's law on `W_rec`: E/I units with an E/I-balanced initialization at the spectral
      radius of the configured initializer, enforced after every training step. CTRNN only.
    - `excitatory_fraction`: fraction of excitatory units under Dale's law.
    - `rec_density`: fraction of recurrent connections present (a fixed random mask). CTRNN only.
    - `in_density`: fraction of input connections present (a fixed random mask). CTRNN only.
    - `out_density`: fraction of readout connections present (a fixed random mask). CTRNN only.
    - `autapses`: allow self-connections (False zeroes the diagonal of `W_rec`). CTRNN only.

    The constraints (`dale`, the densities, `autapses`; see `ctrnn_jax.training._constraints`) are drawn
    per member from the ensemble's key and enforced after every training step. A gated `cell` refuses
    the CTRNN-only fields (`CTRNN_ONLY`) at other values than their defaults, and active constraints; so
    does a cell of one's own.
    """

    members: int = 8
    units: int = 64
    inputs: int = 3
    outputs: int = 3
    alpha: float | tuple[float, ...] = 0.25
    activation: str = "tanh"
    gain: float | tuple[float, ...] = 1.0
    recurrent_init: str = "orthogonal"
    readout_init: str = "glorot_uniform"
    cell: str = "ctrnn"
    dale: bool = False
    excitatory_fraction: float = 0.8
    rec_density: float = 1.0
    in_density: float = 1.0
    out_density: float = 1.0
    autapses: bool = True

    def __post_init__(self):
        check_int("members", self.members, 1)
        check_int("units", self.units, 1)
        check_int("inputs", self.inputs, 1)
        check_int("outputs", self.outputs, 1)
        check_activation(self.activation)
        check_choice("recurrent_init", self.recurrent_init, RECURRENT_INITS)
        check_choice("readout_init", self.readout_init, READOUT_INITS)
        for name in ("alpha", "gain"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        self.alphas()
        self.gains()
        cell_class(self.cell)  # a built-in name, or an importable subclass of AbstractRNN
        if self.cell != "ctrnn":  # refused rather than silently dropped
            defaults = {f.name: f.default for f in dataclasses.fields(self)}
            for name in CTRNN_ONLY:
                value = getattr(self, name)
                if name in ("alpha", "gain"):
                    unchanged = bool(np.all((self.alphas() if name == "alpha" else self.gains()) == defaults[name]))
                else:
                    unchanged = value == defaults[name]
                if not unchanged:
                    raise ValueError(
                        f"`{name}` applies to `cell`='ctrnn' only; `cell`={self.cell!r} does not use it "
                        f"(got `{name}`={value!r}, default {defaults[name]!r})."
                    )
        cons = self.constraints()  # validates the constraint fields
        if cons.active and self.cell != "ctrnn":
            raise ValueError(
                f"constraints (dale, densities, autapses) apply to `cell`='ctrnn' only, got {self.cell!r}."
            )
        if cons.active and cons.dale:
            cons.n_excitatory(self.units)  # at least one E and one I unit

    def constraints(self) -> ConstraintConfig:
        """The constraint fields as a `ConstraintConfig`."""
        return ConstraintConfig(
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(ConstraintConfig) if hasattr(self, f.name)}
        )

    def alphas(self) -> np.ndarray:
        """`(K,)` per-member `alpha`."""
        return per_member("alpha", self.alpha, self.members, low=0.0, high=1.0)

    def gains(self) -> np.ndarray:
        """`(K,)` per-member initial gain `g`."""
        return per_member("gain", self.gain, self.members, low=0.0)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EnsembleConfig":
        """Inverse of `to_dict`. Fields added later (constraints) take their defaults in older run folders;
        a gated cell's CTRNN-only fields, recorded (and unused) by older versions, are reset to their
        defaults, so those run folders still load."""
        try:
            return cls(**d)
        except ValueError:
            if d.get("cell", "ctrnn") == "ctrnn":
                raise
            return cls(**{name: value for name, value in d.items() if name not in CTRNN_ONLY})


def cell_class(cell: object) -> type[AbstractRNN]:
    """The class of `cell`: a built-in name (`CELLS`) or the import string `module:QualName` of a subclass of
    `AbstractRNN`, imported.

    Raises `ValueError` in one line for an unknown name, a malformed string or a class that cannot be imported.
    """
    if is_import_string(cell):
        return import_object(cell, what="cell", base=AbstractRNN)
    if cell not in CELLS:
        raise ValueError(
            f"`cell` must be one of {', '.join(CELLS)}, or the import string `module:QualName` of a "
            f"subclass of ctrnn_jax.AbstractRNN; got {cell!r}."
        )
    return CELL_CLASSES[cell]


def make_ensemble(config: EnsembleConfig, *, key: jax.Array) -> AbstractRNN:
    """Build `config.members` networks of `config.cell` from split keys, stacked: every array gains a
    leading `K` axis.

    Member `k` equals `CTRNN(..., key=jax.random.split(key, K)[k])` with its own `alpha` and `gain`.
    With constraints configured, each member then satisfies `ensemble_constraints(config, key=key)`
    (Dale's law initialization, masks applied).
    """
    model = _unconstrained(config, key)
    cons = ensemble_constraints(config, key=key)
    if cons is None:
        return model
    keys = jax.random.split(jax.random.fold_in(key, 2), config.members)
    return eqx.filter_vmap(lambda m, c, k: initialize_constrained(m, c, key=k))(model, cons, keys)


def ensemble_constraints(config: EnsembleConfig, *, key: jax.Array) -> Constraints | None:
    """The members' stacked `Constraints` (arrays `(K, ...)`) for the ensemble made from `key`, or
    None when nothing is constrained. Deterministic in `key`: a run regenerates them from its seed."""
    cc = config.constraints()
    if not cc.active:
        return None
    keys = jax.random.split(jax.random.fold_in(key, 1), config.members)
    return eqx.filter_vmap(lambda k: make_constraints(cc, config.inputs, config.units, config.outputs, key=k))(keys)


def fresh_members(
    config: EnsembleConfig, keys: jax.Array, constraints: Constraints | None = None, *, members: jax.Array | None = None
) -> CTRNN:
    """A stacked ensemble whose row `r` is drawn from `keys[r]` (`(R,)` keys), with the `alpha` and `gain`
    of member `members[r]` of the config (default: row `r`, then `R = K`); with `constraints` (stacked
    like the rows), each row initialized to satisfy its own (the trainer's restarts of dead starts, also
    of a subset of the members; jit-able)."""
    model = _unconstrained(config, None, keys=keys, members=members)
    if constraints is None:
        return model

    def init(m, c, k):
        return initialize_constrained(m, c, key=jax.random.fold_in(k, 2))

    return eqx.filter_vmap(init)(model, constraints, keys)


def _unconstrained(
    config: EnsembleConfig, key: jax.Array | None, *, keys: jax.Array | None = None, members: jax.Array | None = None
) -> CTRNN:
    if keys is None:
        assert key is not None  # `key` or `keys`
        keys = jax.random.split(key, config.members)
    alphas = jnp.asarray(config.alphas(), dtype=jnp.float32)
    gains = jnp.asarray(config.gains(), dtype=jnp.float32)
    if members is not None:
        alphas, gains = alphas[members], gains[members]

    if config.cell != "ctrnn":  # a gated cell or one's own: `Cls(M, N, O, *, key, activation)`
        cls: Callable[..., AbstractRNN] = cell_class(config.cell)
        return eqx.filter_vmap(
            lambda k: cls(config.inputs, config.units, config.outputs, key=k, activation=config.activation)
        )(keys)

    def build(k, a, g):
        return CTRNN(
            config.inputs,
            config.units,
            config.outputs,
            key=k,
            alpha=a,
            gain=g,
            activation=config.activation,
            recurrent_init=config.recurrent_init,
            readout_init=config.readout_init,
        )

    return eqx.filter_vmap(build)(keys, alphas, gains)


def ensemble_size(ensemble: AbstractRNN) -> int:
    """Number of members `K` of a stacked ensemble."""
    if ensemble.W_out.ndim != 3:
        raise ValueError(f"expected a stacked ensemble with `W_out` of shape (K, O, N), got {ensemble.W_out.shape}.")
    return ensemble.W_out.shape[0]


def get_member(ensemble: CTRNN, k: int) -> CTRNN:
    """Member `k` of a stacked ensemble, as a single CTRNN."""
    n = ensemble_size(ensemble)
    if not -n <= k < n:
        raise IndexError(f"member {k} out of range for an ensemble of {n}.")
    return jax.tree_util.tree_map(lambda x: x[k], ensemble)


def stack_members(members: Sequence[CTRNN]) -> CTRNN:
    """Stack single CTRNNs (same sizes and activation) into an ensemble."""
    if not members:
        raise ValueError("`members` must not be empty.")
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *members)
