"""Files: the `ensemble.npz` interchange format, training checkpoints, atomic writes.

`ensemble.npz` holds float arrays in `W[post, pre]` orientation (`K` members, `N` units, `M` inputs,
`O` outputs), a string `activation`, and a string `cell` naming the kind of network:

- `"ctrnn"`: `W_rec (K,N,N)`, `W_in (K,N,M)`, `b (K,N)`, `W_out (K,O,N)`, `b_out (K,O)`, `alpha (K,)`.
  A file without `cell` is a CTRNN; `save_npz` writes CTRNN files without it (the format as it
  was before gated cells, readable by older versions).
- `"gru"`: `W_rec (K,3N,N)`, `W_in (K,3N,M)`, `b (K,3N)` (gate blocks reset, update, candidate),
  `b_n (K,N)`, `W_out (K,O,N)`, `b_out (K,O)`; see `GRU`.
- `"lstm"`: `W_rec (K,4N,N)`, `W_in (K,4N,M)`, `b (K,4N)` (gate blocks input, forget, cell, output),
  `W_out (K,O,N)`, `b_out (K,O)`; see `LSTM`.
- `"ugrnn"`: `W_rec (K,2N,N)`, `W_in (K,2N,M)`, `b (K,2N)` (gate blocks update gate, candidate),
  `W_out (K,O,N)`, `b_out (K,O)`; see `UGRNN`.

Any tool that writes these names can hand networks to ctrnn_jax, and the other way round.
"""

import hashlib
import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._files import atomic_write, read_npz
from ..models._activations import ACTIVATIONS
from ..models._gated import GRU, LSTM, UGRNN
from ..models._model import CTRNN
from ..training._ensemble import ensemble_size

ARRAYS = ("W_rec", "W_in", "b", "W_out", "b_out", "alpha")  # a CTRNN's
CELLS = {"ctrnn": CTRNN, "gru": GRU, "lstm": LSTM, "ugrnn": UGRNN}
CELL_ARRAYS = {"ctrnn": ARRAYS, "gru": ("W_rec", "W_in", "b", "b_n", "W_out", "b_out"),
               "lstm": ("W_rec", "W_in", "b", "W_out", "b_out"), "ugrnn": ("W_rec", "W_in", "b", "W_out", "b_out")}
_GATE_BLOCKS = {"ctrnn": 1, "gru": 3, "lstm": 4, "ugrnn": 2}


def _cell_name(ensemble: object) -> str:
    for name, cls in CELLS.items():
        if isinstance(ensemble, cls):
            return name
    raise TypeError(f"`ensemble` must be a CTRNN, GRU, LSTM or UGRNN, got {type(ensemble).__name__}.")


def fingerprint(ensemble) -> str:
    """A short hash (16 hex digits) of a network's weights: its cell, activation and every array of the
    interchange format, as float32. Equal for an ensemble and its `save_npz`/`load_npz` round trip; any
    changed weight changes it. Derived files (fixed points, analyses, reports) record it, so that a result
    computed from other weights (e.g. before `train --resume`) is recognised as stale."""
    cell = _cell_name(ensemble)
    single = np.ndim(ensemble.W_rec) == 2  # a single network is an ensemble of one
    digest = hashlib.sha256(f"{cell}:{ensemble.activation}".encode())
    for name in CELL_ARRAYS[cell]:
        a = np.asarray(getattr(ensemble, name), dtype=np.float32)
        a = np.ascontiguousarray(a[None] if single else a)
        digest.update(f"{name}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()[:16]


def save_npz(ensemble: CTRNN | GRU | LSTM, path: str | os.PathLike) -> None:
    """Write a stacked ensemble (K >= 1) of CTRNNs, GRUs or LSTMs to `path` in the interchange format
    (array names in the module docstring), atomically. Gated cells get a `cell` entry (`"gru"`,
    `"lstm"`); CTRNN files are written without one."""
    cell = _cell_name(ensemble)
    if ensemble.W_rec.ndim == 2:  # a single network: store as K = 1
        ensemble = jax.tree_util.tree_map(lambda x: x[None], ensemble)
    ensemble_size(ensemble)
    arrays = {name: np.asarray(getattr(ensemble, name)) for name in CELL_ARRAYS[cell]}
    if cell != "ctrnn":
        arrays["cell"] = np.asarray(cell)
    with atomic_write(path) as f:
        np.savez(f, activation=np.asarray(ensemble.activation), **arrays)


def load_npz(path: str | os.PathLike) -> CTRNN | GRU | LSTM:
    """Read an `ensemble.npz` into a stacked ensemble of the file's `cell` (a CTRNN when there is no
    `cell` entry), checking names, shapes and values.

    Raises `ValueError` naming the file and the problem for a corrupt or mismatched file.
    """
    path = Path(path)
    data = read_npz(path, ("activation",), "an ensemble file")
    cell = str(data["cell"]) if "cell" in data else "ctrnn"
    if cell not in CELLS:
        raise ValueError(f"{path}: unknown cell {cell!r}; allowed: {', '.join(CELLS)}.")
    names = CELL_ARRAYS[cell]
    missing = [name for name in names if name not in data]
    if missing:
        raise ValueError(f"{path}: missing array(s) {', '.join(missing)}; an ensemble file of cell {cell!r} "
                         f"needs {', '.join((*names, 'activation'))}.")
    activation = str(data["activation"])
    if activation not in ACTIVATIONS:
        raise ValueError(f"{path}: unknown activation {activation!r}; allowed: {', '.join(sorted(ACTIVATIONS))}.")
    for name in names:
        if not np.issubdtype(data[name].dtype, np.floating):
            raise ValueError(f"{path}: `{name}` must be a float array, got dtype {data[name].dtype}.")
    W_rec, g = data["W_rec"], _GATE_BLOCKS[cell]
    if W_rec.ndim != 3 or W_rec.shape[1] != g * W_rec.shape[2]:
        raise ValueError(f"{path}: `W_rec` must have shape (K, {g if g > 1 else ''}N, N), got {W_rec.shape}.")
    k, n = W_rec.shape[0], W_rec.shape[2]
    if k < 1 or n < 1:
        raise ValueError(f"{path}: `W_rec` has shape {W_rec.shape}: K = {k} members of N = {n} units; an ensemble "
                         "file needs K >= 1 members and N >= 1 units.")
    m = data["W_in"].shape[-1] if data["W_in"].ndim == 3 else -1
    o = data["W_out"].shape[1] if data["W_out"].ndim == 3 else -1
    expected = {"W_in": (k, g * n, m), "b": (k, g * n), "b_n": (k, n), "W_out": (k, o, n), "b_out": (k, o),
                "alpha": (k,)}
    for name in names[1:]:
        if data[name].shape != expected[name] or min(expected[name]) < 1:
            raise ValueError(f"{path}: `{name}` has shape {data[name].shape}, expected {expected[name]} "
                             f"(K={k} members, N={n} units).")
    for name in names:
        if not np.all(np.isfinite(data[name])):
            raise ValueError(f"{path}: `{name}` contains NaN or inf.")
    if cell == "ctrnn" and not np.all((data["alpha"] > 0) & (data["alpha"] <= 1)):
        raise ValueError(f"{path}: `alpha` must be in (0, 1], got {data['alpha']}.")
    return from_arrays({name: data[name] for name in names}, activation, cell=cell)


def from_arrays(arrays: dict, activation: str, *, cell: str = "ctrnn") -> CTRNN | GRU | LSTM:
    """A stacked ensemble of `cell`s (`"ctrnn"`, `"gru"` or `"lstm"`) from arrays named as in the
    interchange format (shapes already checked); arrays are stored as float32."""
    if cell not in CELLS:
        raise ValueError(f"`cell` must be one of {', '.join(CELLS)}; got {cell!r}.")
    names = CELL_ARRAYS[cell]
    k, _, m = arrays["W_in"].shape
    n = arrays["W_rec"].shape[2]
    o = arrays["W_out"].shape[1]
    # The cell's structure only (shapes, no initializer run: nothing to compute or compile), then its arrays.
    single = eqx.filter_eval_shape(CELLS[cell], m, n, o, key=jax.random.key(0), activation=activation)
    ensemble = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct((k, *x.shape), x.dtype), single)
    ensemble = eqx.tree_at(lambda e: tuple(getattr(e, name) for name in names), ensemble,
                           tuple(jnp.asarray(arrays[name], dtype=jnp.float32) for name in names))
    missing = [x for x in jax.tree_util.tree_leaves(ensemble) if isinstance(x, jax.ShapeDtypeStruct)]
    if missing:  # every array of a cell is in its interchange format
        raise AssertionError(f"{cell}: arrays outside the interchange format {names}: {missing}")
    return ensemble


def save_checkpoint(path: str | os.PathLike, state, losses: np.ndarray) -> None:
    """Write a training state (any pytree of arrays, e.g. `TrainState`) and the loss history `(S, K)`
    to one file, atomically."""
    with atomic_write(path) as f:
        np.save(f, np.asarray(losses, dtype=np.float32), allow_pickle=False)
        eqx.tree_serialise_leaves(f, state)


def load_checkpoint(path: str | os.PathLike, like, *, older=()):
    """Read a checkpoint written by `save_checkpoint`; `like` is a state of the same structure and
    shapes (e.g. `trainer.init()`); `older`: `(old_like, convert)` pairs, layouts of earlier versions
    tried in turn when `like` does not fit, `convert(old)` giving the state. Returns `(state, losses)`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint there.")
    error = None
    for layout, convert in [(like, None), *older]:
        try:
            with open(path, "rb") as f:
                losses = np.load(f, allow_pickle=False)
                state = eqx.tree_deserialise_leaves(f, layout)
                if f.read(1):
                    raise ValueError("trailing data")
        except Exception as e:  # noqa: BLE001 - any parse failure means a corrupt or mismatched file
            error = error or e
            continue
        return (state if convert is None else convert(state)), losses
    raise ValueError(f"{path}: corrupt checkpoint, or one made with another configuration or version ({error}); "
                     "train again into a new run folder.")
