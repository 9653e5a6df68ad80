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

Any other cell (a subclass of `AbstractRNN` of one's own, see the docs page "Writing a cell") is saved
with what rebuilds it where its class can be imported:

- `cell`: its import string `"module:QualName"` (`ctrnn_jax._imports.import_string`);
- `n_inputs`, `n_units`, `n_outputs`: `M`, `N`, `O` (integer scalars);
- `options`: the JSON of its constructor's keyword options (`AbstractRNN.options()`);
- `activation`: as for the built-in cells;
- `leaf:<path>`: each array of the network, member axis first, named by its path in the pytree
  (`leaf:U`, `leaf:W_in`, `leaf:sub.weight`, ...).

`load_npz` builds the structure with `Cls(M, N, O, key=..., **options)` (shapes only, no initializer
run), then fills in the arrays.
"""

import hashlib
import json
import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._files import atomic_write, read_npz
from .._imports import import_object, import_string, is_import_string
from ..models._activations import ACTIVATIONS
from ..models._base import AbstractRNN
from ..models._gated import GRU, LSTM
from ..models._model import CTRNN
from ..training._ensemble import CELL_CLASSES, ensemble_size

ARRAYS = ("W_rec", "W_in", "b", "W_out", "b_out", "alpha")  # a CTRNN's
CELLS = CELL_CLASSES  # the built-in cells by name
CELL_ARRAYS = {
    "ctrnn": ARRAYS,
    "gru": ("W_rec", "W_in", "b", "b_n", "W_out", "b_out"),
    "lstm": ("W_rec", "W_in", "b", "W_out", "b_out"),
    "ugrnn": ("W_rec", "W_in", "b", "W_out", "b_out"),
}
_GATE_BLOCKS = {"ctrnn": 1, "gru": 3, "lstm": 4, "ugrnn": 2}


SIZES = ("n_inputs", "n_units", "n_outputs")  # a cell of one's own: M, N, O
LEAF = "leaf:"  # a cell of one's own: the prefix of its arrays' names


def _builtin(ensemble: AbstractRNN) -> str | None:
    """The name of a built-in cell (the class itself, not a subclass of it), or None for any other cell."""
    return next((name for name, cls in CELLS.items() if type(ensemble) is cls), None)


def _reason(error: Exception) -> str:
    """`Type: message` of an exception raised by a user's code, on one line."""
    return f"{type(error).__name__}: {error}".splitlines()[0]


def _check_network(ensemble: object) -> AbstractRNN:
    if not isinstance(ensemble, AbstractRNN):
        raise TypeError(
            f"`ensemble` must be a network (a subclass of ctrnn_jax.AbstractRNN: CTRNN, GRU, LSTM, "
            f"UGRNN or a cell of one's own), got {type(ensemble).__name__}."
        )
    return ensemble


def _stacked(ensemble: AbstractRNN) -> AbstractRNN:
    """A single network (`W_out` of shape `(O, N)`) as an ensemble of one; a stacked ensemble unchanged."""
    if np.ndim(ensemble.W_out) == 2:
        ensemble = jax.tree_util.tree_map(lambda x: x[None] if eqx.is_array(x) else x, ensemble)
    ensemble_size(ensemble)
    return ensemble


def _class_name(cls: type) -> str:
    """`module:QualName` of a class, also for one that could not be imported again (defined in a function)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _leaf_name(path) -> str:
    """The file entry of an array at pytree `path`: `leaf:<path>` (e.g. `leaf:U`, `leaf:sub.weight`)."""
    return LEAF + jax.tree_util.keystr(path, simple=True, separator=".")


def _leaves(ensemble: AbstractRNN) -> dict[str, np.ndarray]:
    """A network's arrays by readable name (`leaf:<path>`, in pytree order), as NumPy arrays."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(ensemble)[0]:
        if not eqx.is_array(leaf):
            continue
        name = _leaf_name(path)
        if name in out:
            raise ValueError(
                f"two arrays of {type(ensemble).__name__} have the same name {name!r} in a file; rename "
                "a field or a key."
            )
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            raise ValueError(
                f"`{name[len(LEAF) :]}` of {type(ensemble).__name__} is a PRNG key array; a saved network "
                "holds numeric arrays only."
            )
        out[name] = np.asarray(leaf)
    return out


def _skeleton(cls: type, sizes: tuple[int, ...], options: dict, k: int):
    """The structure of an ensemble of `k` `cls`es: `cls(M, N, O, key=..., **options)` evaluated for its shapes
    only (no initializer run), every array a `jax.ShapeDtypeStruct` with a leading member axis of `k`."""
    single = eqx.filter_eval_shape(cls, *sizes, key=jax.random.key(0), **options)
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct((k, *x.shape), x.dtype) if isinstance(x, jax.ShapeDtypeStruct) else x, single
    )


def _check_options(ensemble: AbstractRNN) -> dict:
    """`ensemble.options()`, checked: a JSON-able dict that rebuilds the network's structure."""
    cls, options = type(ensemble), ensemble.options()
    if not isinstance(options, dict) or not all(isinstance(key, str) for key in options):
        raise TypeError(f"{cls.__name__}.options() must return a dict with string keys, got {options!r}.")
    try:
        json.dumps(options, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{cls.__name__}.options() must be JSON-serialisable ({e}), got {options!r}.") from None
    sizes = (ensemble.n_inputs, ensemble.n_units, ensemble.n_outputs)
    try:
        skeleton = _skeleton(cls, sizes, options, ensemble_size(ensemble))
    except Exception as e:  # noqa: BLE001 - whatever the user's constructor raises
        raise ValueError(
            f"{cls.__name__}(n_inputs={sizes[0]}, n_units={sizes[1]}, n_outputs={sizes[2]}, *, key, "
            f"**{options!r}) fails ({_reason(e)}); a cell's constructor must take the "
            "options that `options()` returns."
        ) from None

    def same(a, b):  # an array of the same shape and dtype, or the same non-array value
        if isinstance(b, jax.ShapeDtypeStruct):
            return eqx.is_array(a) and (a.shape, a.dtype) == (b.shape, b.dtype)
        return not eqx.is_array(a) and eqx.tree_equal(a, b) is True

    # jaxlib's PyTreeDef, unresolved by mypy, has no __eq__ for it:
    fits = jax.tree_util.tree_structure(skeleton) == jax.tree_util.tree_structure(ensemble) and all(  # type: ignore[operator]
        same(a, b) for a, b in zip(jax.tree_util.tree_leaves(ensemble), jax.tree_util.tree_leaves(skeleton))
    )
    if not fits:
        raise ValueError(
            f"{cls.__name__}(M, N, O, key=..., **{options!r}) does not rebuild the network's structure "
            f"(its static fields, non-array values, arrays and their shapes): {cls.__name__}.options() "
            "must return every constructor option that sets them."
        )
    return options


def fingerprint(ensemble: AbstractRNN) -> str:
    """A short hash (16 hex digits) of a network's weights: its cell, activation and every array of the
    interchange format, as float32 (a cell of one's own: its class, `options()` and every array by its
    path; floating arrays as float32). Equal for an ensemble and its `save_npz`/`load_npz` round trip; any
    changed weight changes it. Derived files (fixed points, analyses, reports) record it, so that a result
    computed from other weights (e.g. before `train --resume`) is recognised as stale."""
    cell = _builtin(_check_network(ensemble))
    ensemble = _stacked(ensemble)  # a single network is an ensemble of one
    if cell is None:
        options = json.dumps(ensemble.options(), sort_keys=True)
        digest = hashlib.sha256(f"{_class_name(type(ensemble))}:{options}".encode())
        arrays = _leaves(ensemble)
    else:
        digest = hashlib.sha256(f"{cell}:{ensemble.activation}".encode())
        arrays = {name: getattr(ensemble, name) for name in CELL_ARRAYS[cell]}
    for name, a in arrays.items():
        a = np.asarray(a)
        if cell is not None or np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float32)
        a = np.ascontiguousarray(a)
        # (the built-in cells' text as it always was: their fingerprints, recorded in derived files, never change)
        digest.update(f"{name}{a.shape}".encode() if cell is not None else f"{name}{a.shape}{a.dtype}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()[:16]


def save_npz(ensemble: AbstractRNN, path: str | os.PathLike) -> None:
    """Write a stacked ensemble (K >= 1) of any cell (`AbstractRNN`; a single network is stored as K = 1)
    to `path`, atomically: the built-in cells in the interchange format (array names in the module
    docstring; gated cells get a `cell` entry, `"gru"`, `"lstm"`, `"ugrnn"`; CTRNN files are written
    without one), any other cell with its import string, sizes, `options()` and arrays (`leaf:<path>`).

    Raises `ValueError` for a cell that could not be loaded again: one defined inside a function, or whose
    `options()` do not rebuild its structure through its constructor."""
    cell = _builtin(_check_network(ensemble))
    ensemble = _stacked(ensemble)
    if cell is None:
        spec = import_string(type(ensemble))  # a ValueError for a class defined in a function
        options = _check_options(ensemble)
        arrays = {
            "cell": np.asarray(spec),
            "options": np.asarray(json.dumps(options, sort_keys=True)),
            **{
                name: np.asarray(value, np.int64)
                for name, value in zip(SIZES, (ensemble.n_inputs, ensemble.n_units, ensemble.n_outputs))
            },
            **_leaves(ensemble),
        }
    else:
        arrays = {name: np.asarray(getattr(ensemble, name)) for name in CELL_ARRAYS[cell]}
        if cell != "ctrnn":
            arrays["cell"] = np.asarray(cell)
    with atomic_write(path) as f:
        np.savez(f, activation=np.asarray(ensemble.activation), **arrays)


def load_npz(path: str | os.PathLike) -> AbstractRNN:
    """Read an `ensemble.npz` into a stacked ensemble of the file's `cell` (a CTRNN when there is no
    `cell` entry; a cell of one's own by its import string, which must be importable here), checking names,
    shapes and values.

    Raises `ValueError` naming the file and the problem for a corrupt or mismatched file, or a cell whose
    class cannot be imported.
    """
    path = Path(path)
    data = read_npz(path, ("activation",), "an ensemble file")
    cell = str(data["cell"]) if "cell" in data else "ctrnn"
    if is_import_string(cell):
        return _load_own_cell(path, data, cell)
    if cell not in CELLS:
        raise ValueError(
            f"{path}: unknown cell {cell!r}; allowed: {', '.join(CELLS)}, or an import string "
            "`module:QualName` of a cell of one's own."
        )
    names = CELL_ARRAYS[cell]
    missing = [name for name in names if name not in data]
    if missing:
        raise ValueError(
            f"{path}: missing array(s) {', '.join(missing)}; an ensemble file of cell {cell!r} "
            f"needs {', '.join((*names, 'activation'))}."
        )
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
        raise ValueError(
            f"{path}: `W_rec` has shape {W_rec.shape}: K = {k} members of N = {n} units; an ensemble "
            "file needs K >= 1 members and N >= 1 units."
        )
    m = data["W_in"].shape[-1] if data["W_in"].ndim == 3 else -1
    o = data["W_out"].shape[1] if data["W_out"].ndim == 3 else -1
    expected = {
        "W_in": (k, g * n, m),
        "b": (k, g * n),
        "b_n": (k, n),
        "W_out": (k, o, n),
        "b_out": (k, o),
        "alpha": (k,),
    }
    for name in names[1:]:
        if data[name].shape != expected[name] or min(expected[name]) < 1:
            raise ValueError(
                f"{path}: `{name}` has shape {data[name].shape}, expected {expected[name]} "
                f"(K={k} members, N={n} units)."
            )
    for name in names:
        if not np.all(np.isfinite(data[name])):
            raise ValueError(f"{path}: `{name}` contains NaN or inf.")
    if cell == "ctrnn" and not np.all((data["alpha"] > 0) & (data["alpha"] <= 1)):
        raise ValueError(f"{path}: `alpha` must be in (0, 1], got {data['alpha']}.")
    return from_arrays({name: data[name] for name in names}, activation, cell=cell)


def _load_own_cell(path: Path, data: dict[str, np.ndarray], spec: str) -> AbstractRNN:
    """A cell of one's own from its file entries (see the module docstring), checked against the structure its
    class and `options` build."""
    try:
        cls = import_object(spec, what="cell", base=AbstractRNN)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    missing = [name for name in (*SIZES, "options") if name not in data]
    if missing:
        raise ValueError(
            f"{path}: missing array(s) {', '.join(missing)}; an ensemble file of the cell {spec!r} "
            f"needs {', '.join((*SIZES, 'options'))} and its arrays ({LEAF}<path>)."
        )
    sizes = []
    for name in SIZES:
        value = data[name]
        if value.shape != () or not np.issubdtype(value.dtype, np.integer) or int(value) < 1:
            raise ValueError(f"{path}: `{name}` must be an integer >= 1, got {value!r}.")
        sizes.append(int(value))
    try:
        options = json.loads(str(data["options"]))
    except ValueError:
        options = None
    if not isinstance(options, dict):
        raise ValueError(
            f"{path}: `options` must be the JSON of a dict of the cell's constructor options, got "
            f"{str(data['options'])!r}."
        )
    leaves = {name: data[name] for name in data if name.startswith(LEAF)}
    first = next(iter(leaves.values()), None)
    k = first.shape[0] if first is not None and first.ndim >= 1 else 0
    if k < 1:
        raise ValueError(
            f"{path}: no arrays with a member axis ({LEAF}<path>, shape (K, ...), K >= 1) for the cell {spec!r}."
        )
    try:
        skeleton = _skeleton(cls, tuple(sizes), options, k)
    except Exception as e:  # noqa: BLE001 - whatever the user's constructor raises
        raise ValueError(
            f"{path}: cannot rebuild the cell {spec!r} with n_inputs, n_units, n_outputs = "
            f"{', '.join(map(str, sizes))} and options {options!r} ({_reason(e)})."
        ) from None
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(skeleton)
    expected = {_leaf_name(p): x for p, x in paths_leaves if isinstance(x, jax.ShapeDtypeStruct)}
    missing, extra = [n for n in expected if n not in leaves], [n for n in leaves if n not in expected]
    if missing or extra:
        raise ValueError(
            f"{path}: the arrays of the cell {spec!r} are {', '.join(expected)}; "
            f"{'missing ' + ', '.join(missing) if missing else ''}"
            f"{'; ' if missing and extra else ''}{'unexpected ' + ', '.join(extra) if extra else ''}."
        )
    filled = []
    for p, x in paths_leaves:
        if not isinstance(x, jax.ShapeDtypeStruct):
            filled.append(x)
            continue
        name = _leaf_name(p)
        a = leaves[name]
        if a.shape != x.shape:
            raise ValueError(
                f"{path}: `{name}` has shape {a.shape}, expected {x.shape} (K={k} members, "
                f"n_inputs, n_units, n_outputs = {', '.join(map(str, sizes))})."
            )
        if not np.can_cast(a.dtype, x.dtype, "same_kind"):
            raise ValueError(f"{path}: `{name}` has dtype {a.dtype}, expected {x.dtype}.")
        if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
            raise ValueError(f"{path}: `{name}` contains NaN or inf.")
        filled.append(jnp.asarray(a, dtype=x.dtype))
    return jax.tree_util.tree_unflatten(treedef, filled)


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
    ensemble = _skeleton(CELLS[cell], (m, n, o), {"activation": activation}, k)
    ensemble = eqx.tree_at(
        lambda e: tuple(getattr(e, name) for name in names),
        ensemble,
        tuple(jnp.asarray(arrays[name], dtype=jnp.float32) for name in names),
    )
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
    raise ValueError(
        f"{path}: corrupt checkpoint, or one made with another configuration or version ({error}); "
        "train again into a new run folder."
    )
