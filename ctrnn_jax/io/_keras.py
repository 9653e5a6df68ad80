"""Keras models in: a `SimpleRNN` followed by a `Dense` readout, read with `h5py` alone (no TensorFlow
or Keras needed), as a stacked CTRNN ensemble with `alpha = 1`.

Keras' `SimpleRNN` computes `h[t] = σ(x[t] @ kernel + h[t-1] @ recurrent_kernel + bias)` from
`h = 0`, and `Dense` gives `z[t] = h[t] @ kernel + bias`: our CTRNN with `a = 1` and, in our
`W[post, pre]` orientation, `W_in = kernelᵀ (N, M)`, `W_rec = recurrent_kernelᵀ (N, N)`,
`b = bias` (zeros when `use_bias=False`, as in the paper), `W_out = dense kernelᵀ (O, N)`,
`b_out = dense bias` (zeros without one).

Formats, recognised by their content (not their name):

- Keras 2 whole-model HDF5 (`model.save("x.h5")`, `ModelCheckpoint`; the paper's `.hdf5` files):
  root attributes `keras_version`, `backend`, `model_config` (JSON), weights at
  `model_weights/<layer>/<weight name>` for each name in `model_weights/<layer>`'s `weight_names`
  attribute (`simple_rnn_10/kernel:0`, ...). Keras 3's legacy `.h5` is the same with other weight
  names (`sequential/simple_rnn/simple_rnn_cell/kernel`). `optimizer_weights/` is ignored.
- Keras 3 `.keras`: a zip of `config.json` (the architecture) and `model.weights.h5`.
- Weights only, without the architecture: Keras 3 `.weights.h5` (`layers/simple_rnn/cell/vars/0..2`,
  `layers/dense/vars/0..1`) and Keras 2 `save_weights` HDF5 (root `layer_names`). The layer kinds
  come from the group names (Keras 3) or the weight names and shapes (Keras 2); the activation is
  not in the file: it is the `activation` argument, default `tanh`, and `return_sequences=True` is
  assumed.
"""

import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import cast

import numpy as np

from ..models._activations import ACTIVATIONS
from ..models._model import CTRNN
from ._serialisation import from_arrays

SUPPORTED = "one SimpleRNN (return_sequences=True) followed by one Dense readout (linear activation)"
_KERAS3_CLASSES = {
    "simple_rnn": "SimpleRNN",
    "dense": "Dense",
    "lstm": "LSTM",
    "gru": "GRU",
    "input_layer": "InputLayer",
}
_KERAS3_WEIGHTS = {"SimpleRNN": ("kernel", "recurrent_kernel", "bias"), "Dense": ("kernel", "bias")}
_SKIPPED = ("InputLayer",)


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError(
            "reading Keras files needs h5py: pip install 'ctrnn-ensembles[keras]' (or pip install h5py)"
        ) from None
    return h5py


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _layer(kind: str, name: str, weights: dict, config: dict | None = None) -> dict:
    return {"class_name": kind, "name": name, "weights": weights, "config": config}


def _config_layers(model_config, where: str) -> list[dict]:
    """`[{class_name, config}, ...]` of a Keras `model_config` (Sequential or a functional chain); `where`
    names it in errors (its `model_config` attribute, or config.json): a ValueError when it is not JSON or
    not a model's config."""
    try:
        config = json.loads(_text(model_config))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"its {where} (the architecture) is not valid JSON ({e}); the file is damaged") from None
    if not isinstance(config, dict):
        raise ValueError(
            f"its {where} (the architecture) is not a Keras model config (a JSON "
            f"{type(config).__name__}, not an object with class_name and config)"
        )
    inner = config.get("config", {})
    layers = inner.get("layers", []) if isinstance(inner, dict) else inner  # Keras < 2.2.3: a list
    if config.get("class_name") not in ("Sequential", "Model", "Functional") or not isinstance(layers, list):
        raise ValueError(
            f"found a model of class {config.get('class_name')!r}; supported: a Sequential or "
            f"functional model of {SUPPORTED}"
        )
    if not all(isinstance(layer, dict) and isinstance(layer.get("config", {}), dict) for layer in layers):
        raise ValueError(
            f"its {where} (the architecture) is not a Keras model config: a layer that is not "
            "an object with class_name and config; the file is damaged"
        )
    return [{"class_name": layer.get("class_name"), "config": layer.get("config", {})} for layer in layers]


def _legacy_weights(group) -> dict:
    """`{kernel, recurrent_kernel, bias}` of one layer of a legacy HDF5 file, from its `weight_names`."""
    names = [_text(n) for n in group.attrs.get("weight_names", [])]
    return {n.rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[n]) for n in names}


def _keras3_weights(group, kind: str) -> dict:
    """`{kernel, recurrent_kernel, bias}` of one layer of a Keras 3 weights file (`vars/0`, `vars/1`, ...;
    an RNN's are in `cell/vars`)."""
    vars_ = group["cell/vars"] if "cell" in group else group["vars"]
    arrays = [np.asarray(vars_[str(i)]) for i in range(len(vars_))]
    names = _KERAS3_WEIGHTS.get(kind, tuple(f"var{i}" for i in range(len(arrays))))
    return dict(zip(names, arrays))


def _kind_from_weights(weights: dict) -> str:
    """The layer kind of a weights-only legacy layer, from its weight names and shapes."""
    if "recurrent_kernel" in weights:
        ratio = weights["recurrent_kernel"].shape[-1] // max(weights["recurrent_kernel"].shape[0], 1)
        return {1: "SimpleRNN", 3: "GRU", 4: "LSTM"}.get(ratio, "a recurrent layer")
    return "Dense" if "kernel" in weights else "a layer without weights"


def _read_layers(path: Path) -> tuple[list[dict], bool]:
    """The file's layers in order, each `{class_name, name, weights, config}` (config None for a weights-only
    file), and whether the file holds the architecture."""
    h5py = _h5py()
    if zipfile.is_zipfile(path):  # Keras 3 `.keras`
        with zipfile.ZipFile(path) as z:
            entries = set(z.namelist())
            if not {"config.json", "model.weights.h5"} <= entries:
                raise ValueError("a zip file without config.json and model.weights.h5: not a Keras 3 .keras file")
            config, weights_file = z.read("config.json"), io.BytesIO(z.read("model.weights.h5"))
        with h5py.File(weights_file, "r") as f:
            groups = {_text(g["vars"].attrs.get("name", key)): (key, g) for key, g in f["layers"].items()}
            layers = []
            for layer in _config_layers(config, "config.json"):
                name = layer["config"].get("name", "")
                if layer["class_name"] in _SKIPPED:
                    continue
                weights = _keras3_weights(groups[name][1], layer["class_name"]) if name in groups else {}
                layers.append(_layer(layer["class_name"], name, weights, layer["config"]))
        return layers, True
    with h5py.File(path, "r") as f:
        if "model_config" in f.attrs:  # a whole-model HDF5 (Keras 2, or Keras 3's legacy .h5)
            if "model_weights" not in f:
                raise ValueError("a Keras model file without model_weights/ (saved without weights?)")
            root, layers = f["model_weights"], []
            for layer in _config_layers(f.attrs["model_config"], "model_config attribute"):
                name = layer["config"].get("name", "")
                if layer["class_name"] in _SKIPPED:
                    continue
                weights = _legacy_weights(root[name]) if name in root else {}
                layers.append(_layer(layer["class_name"], name, weights, layer["config"]))
            return layers, True
        if "layer_names" in f.attrs:  # Keras 2 `save_weights`
            names = [_text(n) for n in f.attrs["layer_names"]]
            layers = [_layer(_kind_from_weights(w), n, w) for n in names if (w := _legacy_weights(f[n]))]
            return layers, False
        if "layers" in f:  # Keras 3 `.weights.h5`
            layers = []
            for key, g in f["layers"].items():
                kind = _KERAS3_CLASSES.get(re.sub(r"_\d+$", "", key), key)
                if kind in _SKIPPED:
                    continue
                layers.append(
                    _layer(
                        kind, _text(g["vars"].attrs.get("name", key)) if "vars" in g else key, _keras3_weights(g, kind)
                    )
                )
            # groups are stored by name, not in model order: the recurrent layer first
            layers.sort(key=lambda layer: layer["class_name"] == "Dense")
            return layers, False
    raise ValueError("an HDF5 file that is not a Keras model or weights file (no model_config, layer_names or layers/)")


def _network(path: Path, layers: list[dict], has_config: bool, activation: str | None) -> dict:
    """The interchange arrays `(W_rec, W_in, b, W_out, b_out, alpha)` of one network (no K axis) and
    its activation, checking that `layers` is a SimpleRNN and a Dense."""
    kinds = [layer["class_name"] for layer in layers]
    if kinds != ["SimpleRNN", "Dense"]:
        found = ", ".join(f"{layer['class_name']} ({layer['name']})" for layer in layers) or "no layers"
        raise ValueError(f"found layers {found}; supported: {SUPPORTED}.")
    rnn, dense = layers
    if has_config:
        c = rnn["config"]
        if not c.get("return_sequences", False):
            raise ValueError(
                f"found SimpleRNN ({rnn['name']}) with return_sequences=False (one output per "
                f"sequence); supported: {SUPPORTED}."
            )
        if c.get("go_backwards", False):
            raise ValueError(f"found SimpleRNN ({rnn['name']}) with go_backwards=True; supported: {SUPPORTED}.")
        file_activation = c.get("activation", "tanh")
        if not isinstance(file_activation, str) or file_activation not in ACTIVATIONS:
            raise ValueError(
                f"found SimpleRNN ({rnn['name']}) with activation {file_activation!r}; supported: "
                f"{', '.join(sorted(ACTIVATIONS))}."
            )
        if activation is not None and activation != file_activation:
            raise ValueError(
                f"`activation` is {activation!r} but the file's SimpleRNN uses {file_activation!r}; "
                "`activation` is for weights-only files."
            )
        activation = file_activation
        if dense["config"].get("activation", "linear") not in ("linear", None):
            raise ValueError(
                f"found Dense ({dense['name']}) with activation {dense['config']['activation']!r}; "
                f"supported: {SUPPORTED}."
            )
    activation = "tanh" if activation is None else activation
    if activation not in ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {', '.join(sorted(ACTIVATIONS))}; got {activation!r}.")
    w = rnn["weights"]
    if "kernel" not in w or "recurrent_kernel" not in w or "kernel" not in dense["weights"]:
        raise ValueError(
            f"SimpleRNN ({rnn['name']}) or Dense ({dense['name']}) has no kernel in the file (saved without weights?)."
        )
    kernel, recurrent = w["kernel"], w["recurrent_kernel"]
    m, n = kernel.shape if kernel.ndim == 2 else (-1, -1)
    o = dense["weights"]["kernel"].shape[-1]
    expected = {
        "kernel": (kernel, (m, n)),
        "recurrent_kernel": (recurrent, (n, n)),
        "bias": (w.get("bias", np.zeros(n)), (n,)),
        "dense kernel": (dense["weights"]["kernel"], (n, o)),
        "dense bias": (dense["weights"].get("bias", np.zeros(o)), (o,)),
    }
    for name, (array, shape) in expected.items():
        if array.shape != shape or min(shape) < 1:
            raise ValueError(
                f"SimpleRNN/Dense {name} has shape {array.shape}, expected {shape} "
                f"(M={m} inputs, N={n} units, O={o} outputs)."
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"SimpleRNN/Dense {name} contains NaN or inf.")
    arrays = {
        "W_in": kernel.T,
        "W_rec": recurrent.T,
        "b": expected["bias"][0],
        "W_out": expected["dense kernel"][0].T,
        "b_out": expected["dense bias"][0],
        "alpha": np.ones(()),
    }
    return {"arrays": {k: np.asarray(v, np.float32) for k, v in arrays.items()}, "activation": activation}


def read_keras(path: str | os.PathLike, *, activation: str | None = None) -> dict:
    """One Keras model file as `{"arrays": {W_rec (N,N), W_in (N,M), b (N,), W_out (O,N), b_out (O,),
    alpha ()}, "activation": str}` (float32, `W[post, pre]`).

    Raises `FileNotFoundError`, or `ValueError` (one line, naming the file) for a file that is not a
    readable Keras file or holds another architecture than a SimpleRNN and a Dense.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"{path}: is a directory; give the Keras model files themselves (.h5, .hdf5, "
            f".keras or .weights.h5), e.g. {path}/*.h5."
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file.")
    try:
        layers, has_config = _read_layers(path)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    except (OSError, KeyError, json.JSONDecodeError, zipfile.BadZipFile) as e:
        message = " ".join(str(e).split()) or type(e).__name__
        raise ValueError(
            f"{path}: not a readable Keras file (HDF5 model or weights, or .keras zip): {message}."
        ) from None
    try:
        return _network(path, layers, has_config, activation)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def load_keras(paths: str | os.PathLike | list, *, activation: str | None = None) -> CTRNN:
    """Keras models (a `SimpleRNN` followed by a `Dense`) as one stacked CTRNN ensemble, `alpha = 1`.

    **Arguments:**

    - `paths`: one file or a list of files, each a Keras 2 or 3 whole-model HDF5 (`.h5`, `.hdf5`),
      a Keras 3 `.keras`, or a weights-only `.weights.h5` / Keras 2 `save_weights` file. Members are
      in the order given; all must have the same `M`, `N`, `O` and activation.
    - `activation`: for weights-only files, the SimpleRNN's activation (`tanh`, `relu`, `softplus`,
      `sigmoid`, `linear`; default `tanh`). Files with the architecture use theirs; a different
      `activation` is an error.

    **Returns:** a `CTRNN` ensemble with `K = len(paths)`: `W_rec (K, N, N)`, `W_in (K, N, M)`,
    `b (K, N)`, `W_out (K, O, N)`, `b_out (K, O)`, `alpha (K,)` all ones.

    Needs `h5py` (`pip install 'ctrnn-ensembles[keras]'`), not TensorFlow or Keras.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise ValueError("`paths` must name at least one Keras file, got none.")
    networks = [read_keras(p, activation=activation) for p in paths]
    first = networks[0]
    for p, net in zip(paths[1:], networks[1:]):
        for name in ("W_in", "W_out"):
            if net["arrays"][name].shape != first["arrays"][name].shape:
                raise ValueError(
                    f"{p}: `{name}` has shape {net['arrays'][name].shape} but {paths[0]} has "
                    f"{first['arrays'][name].shape}; members of one ensemble need the same M, N, O."
                )
        if net["activation"] != first["activation"]:
            raise ValueError(
                f"{p}: activation {net['activation']!r} but {paths[0]} has {first['activation']!r}; "
                "members of one ensemble need the same activation."
            )
    arrays = {name: np.stack([net["arrays"][name] for net in networks]) for name in first["arrays"]}
    return cast(CTRNN, from_arrays(arrays, first["activation"]))  # cell "ctrnn"
