"""Files: the `ensemble.npz` interchange format, training checkpoints, atomic writes.

`ensemble.npz` holds float arrays `W_rec (K,N,N)`, `W_in (K,N,M)`, `b (K,N)`, `W_out (K,O,N)`,
`b_out (K,O)`, `alpha (K,)` and a string `activation`, with `W[post, pre]` orientation. Any tool
that writes these names can hand networks to ctrnn_jax, and the other way round.
"""

import contextlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._activations import ACTIVATIONS
from ._ensemble import ensemble_size
from ._model import CTRNN

ARRAYS = ("W_rec", "W_in", "b", "W_out", "b_out", "alpha")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file next to `path`; on success rename it onto `path` (never a partial file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj) -> None:
    """Write `obj` as indented JSON, atomically."""
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def save_npz(ensemble: CTRNN, path: str | os.PathLike) -> None:
    """Write a stacked ensemble (K >= 1) to `path` in the interchange format, atomically."""
    if not isinstance(ensemble, CTRNN):
        raise TypeError(f"`ensemble` must be a CTRNN, got {type(ensemble).__name__}.")
    if ensemble.W_rec.ndim == 2:  # a single network: store as K = 1
        ensemble = jax.tree_util.tree_map(lambda x: x[None], ensemble)
    ensemble_size(ensemble)
    arrays = {name: np.asarray(getattr(ensemble, name)) for name in ARRAYS}
    with atomic_write(path) as f:
        np.savez(f, activation=np.asarray(ensemble.activation), **arrays)


def read_npz(path: Path, required: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """All arrays of an `.npz` file (no pickles), checking that `required` names are present.

    Raises `FileNotFoundError`, or `ValueError` naming the file and the problem.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file.")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {name: z[name] for name in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e}).") from None
    missing = [n for n in required if n not in data]
    if missing:
        raise ValueError(f"{path}: missing array(s) {', '.join(missing)}; {what} needs {', '.join(required)}.")
    return data


def load_npz(path: str | os.PathLike) -> CTRNN:
    """Read an `ensemble.npz` into a stacked ensemble, checking names, shapes and values.

    Raises `ValueError` naming the file and the problem for a corrupt or mismatched file.
    """
    path = Path(path)
    data = read_npz(path, (*ARRAYS, "activation"), "an ensemble file")
    activation = str(data["activation"])
    if activation not in ACTIVATIONS:
        raise ValueError(f"{path}: unknown activation {activation!r}; allowed: {', '.join(sorted(ACTIVATIONS))}.")
    for name in ARRAYS:
        if not np.issubdtype(data[name].dtype, np.floating):
            raise ValueError(f"{path}: `{name}` must be a float array, got dtype {data[name].dtype}.")
    W_rec = data["W_rec"]
    if W_rec.ndim != 3 or W_rec.shape[1] != W_rec.shape[2]:
        raise ValueError(f"{path}: `W_rec` must have shape (K, N, N), got {W_rec.shape}.")
    k, n = W_rec.shape[:2]
    m = data["W_in"].shape[-1] if data["W_in"].ndim == 3 else -1
    o = data["W_out"].shape[1] if data["W_out"].ndim == 3 else -1
    expected = {"W_in": (k, n, m), "b": (k, n), "W_out": (k, o, n), "b_out": (k, o), "alpha": (k,)}
    for name, shape in expected.items():
        if data[name].shape != shape or min(shape) < 1:
            raise ValueError(f"{path}: `{name}` has shape {data[name].shape}, expected {shape} "
                             f"(K={k} members, N={n} units).")
    for name in ARRAYS:
        if not np.all(np.isfinite(data[name])):
            raise ValueError(f"{path}: `{name}` contains NaN or inf.")
    if not np.all((data["alpha"] > 0) & (data["alpha"] <= 1)):
        raise ValueError(f"{path}: `alpha` must be in (0, 1], got {data['alpha']}.")
    return from_arrays({name: data[name] for name in ARRAYS}, activation)


def from_arrays(arrays: dict, activation: str) -> CTRNN:
    """A stacked ensemble from arrays named as in the interchange format (shapes already checked)."""
    k, n, m = arrays["W_in"].shape
    o = arrays["W_out"].shape[1]
    single = CTRNN(m, n, o, key=jax.random.key(0), activation=activation)
    ensemble = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (k, *x.shape)), single)
    return eqx.tree_at(lambda e: tuple(getattr(e, name) for name in ARRAYS), ensemble,
                       tuple(jnp.asarray(arrays[name], dtype=jnp.float32) for name in ARRAYS))

def save_checkpoint(path: str | os.PathLike, state, losses: np.ndarray) -> None:
    """Write a training state (any pytree of arrays, e.g. `TrainState`) and the loss history `(S, K)`
    to one file, atomically."""
    with atomic_write(path) as f:
        np.save(f, np.asarray(losses, dtype=np.float32), allow_pickle=False)
        eqx.tree_serialise_leaves(f, state)


def load_checkpoint(path: str | os.PathLike, like):
    """Read a checkpoint written by `save_checkpoint`; `like` is a state of the same structure and
    shapes (e.g. `trainer.init()`). Returns `(state, losses)`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint there.")
    try:
        with open(path, "rb") as f:
            losses = np.load(f, allow_pickle=False)
            state = eqx.tree_deserialise_leaves(f, like)
            if f.read(1):
                raise ValueError("trailing data")
    except Exception as e:  # noqa: BLE001 - any parse failure means a corrupt or mismatched file
        raise ValueError(f"{path}: corrupt checkpoint or one made with another configuration ({e}).") from None
    return state, losses
