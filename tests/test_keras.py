"""Keras models in (`load_keras`, `ctrnn-jax import-keras`): real Keras 3 files (JAX backend) against
Keras' own `predict`, and the paper's Keras 2 HDF5 layout written with h5py exactly as the paper's
files have it (Keras 3 cannot write that layout)."""

import json
import os

import jax
import numpy as np
import pytest

import ctrnn_jax as cj
from ctrnn_jax._cli import main

h5py = pytest.importorskip("h5py")

M, N, OUT = 3, 6, 2


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip(f"keras runs on {keras.backend.backend()}, not jax")
    return keras


def _randomize(model, seed):
    """Random weights everywhere (biases included, which Keras initialises to zero)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])


def _save_all(model, folder, stem):
    paths = [folder / f"{stem}.keras", folder / f"{stem}.weights.h5", folder / f"{stem}.h5"]
    model.save(paths[0])
    model.save_weights(paths[1])
    model.save(paths[2])  # Keras 3's legacy HDF5
    return paths


@pytest.fixture(scope="module")
def keras_files(keras, tmp_path_factory):
    """Two models, each in the three Keras 3 formats, and their predictions on random inputs:
    a Sequential tanh SimpleRNN without bias (the paper's model), and a functional relu SimpleRNN with
    bias and custom layer names."""
    folder = tmp_path_factory.mktemp("keras")
    x = np.random.default_rng(0).normal(size=(4, 15, M)).astype(np.float32)
    with jax.numpy_rank_promotion("allow"):
        paper = keras.Sequential(
            [
                keras.Input((None, M)),
                keras.layers.SimpleRNN(N, return_sequences=True, use_bias=False),
                keras.layers.Dense(OUT),
            ]
        )
        inp = keras.Input((None, M))
        out = keras.layers.Dense(OUT, name="readout")(
            keras.layers.SimpleRNN(N, return_sequences=True, activation="relu", name="rnn")(inp)
        )
        functional = keras.Model(inp, out)
        cases = {}
        for seed, (stem, model, activation) in enumerate([("paper", paper, "tanh"), ("relu", functional, "relu")]):
            _randomize(model, seed)
            cases[stem] = (_save_all(model, folder, stem), activation, model.predict(x, verbose=0), model)
    return x, cases


@pytest.mark.parametrize("stem", ["paper", "relu"])
def test_keras3_files_give_keras_predictions(keras_files, stem):
    x, cases = keras_files
    paths, activation, expected, model = cases[stem]
    ensemble = cj.load_keras(paths, activation=activation)  # .keras, .weights.h5, legacy .h5
    assert ensemble.activation == activation and ensemble.W_rec.shape == (3, N, N)
    np.testing.assert_array_equal(ensemble.alpha, 1.0)
    kernel, recurrent = (np.asarray(w) for w in model.layers[-2].get_weights()[:2])
    for k in range(3):  # W[post, pre]
        np.testing.assert_array_equal(ensemble.W_in[k], kernel.T)
        np.testing.assert_array_equal(ensemble.W_rec[k], recurrent.T)
    outputs = np.asarray(cj.ensemble_outputs(ensemble, x))  # (K, B, T, O)
    for k in range(3):
        np.testing.assert_allclose(outputs[k], expected, rtol=1e-5, atol=1e-5)
    if stem == "paper":
        np.testing.assert_array_equal(ensemble.b, 0.0)


def test_keras3_lstm_is_refused_in_one_line(keras, tmp_path):
    with jax.numpy_rank_promotion("allow"):
        model = keras.Sequential(
            [
                keras.Input((None, M)),
                keras.layers.LSTM(4, return_sequences=True, name="lstm"),
                keras.layers.Dense(OUT, name="dense"),
            ]
        )
        model.save(tmp_path / "lstm.keras")
        model.save_weights(tmp_path / "lstm.weights.h5")
    for name in ("lstm.keras", "lstm.weights.h5"):
        with pytest.raises(
            ValueError,
            match=r"found layers LSTM \(lstm\), Dense \(dense\); supported: one SimpleRNN "
            r"\(return_sequences=True\) followed by one Dense readout",
        ) as e:
            cj.load_keras(tmp_path / name)
        assert "\n" not in str(e.value)


# --- the paper's Keras 2 layout, written with h5py -----------------------------------------------------


def _layer_config(class_name, **config):
    return {"class_name": class_name, "config": config}


def _paper_layers(n=N, m=M, o=OUT, rnn="SimpleRNN", **rnn_config):
    rnn_config = {
        "name": "simple_rnn_10",
        "trainable": True,
        "batch_input_shape": [None, None, m],
        "dtype": "float32",
        "return_sequences": True,
        "return_state": False,
        "go_backwards": False,
        "stateful": False,
        "unroll": False,
        "units": n,
        "activation": "tanh",
        "use_bias": False,
        **rnn_config,
    }
    return [
        _layer_config(rnn, **rnn_config),
        _layer_config(
            "Dense",
            name="dense_10",
            trainable=True,
            batch_input_shape=[None, n],
            dtype="float32",
            units=o,
            activation="linear",
            use_bias=True,
        ),
    ]


def write_keras2(path, weights, layers=None, seed=0):
    """A Keras 2.3.1 checkpoint as the paper ships it: `model_weights/<layer>/<layer>/<name>:0` listed in
    `weight_names`, byte-string attributes, `optimizer_weights/` and `training_config`."""
    layers = _paper_layers() if layers is None else layers
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.3.1"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(
            {"class_name": "Sequential", "config": {"name": "sequential_10", "layers": layers}}
        )
        f.attrs["training_config"] = json.dumps({"optimizer_config": {"class_name": "Adam"}, "loss": "mse"})
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = np.asarray([layer.encode() for layer in weights], "S")
        mw.attrs["keras_version"], mw.attrs["backend"] = b"2.3.1", b"tensorflow"
        for layer, arrays in weights.items():
            g = mw.create_group(layer)
            g.attrs["weight_names"] = np.asarray([f"{layer}/{name}:0".encode() for name in arrays], "S")
            for name, array in arrays.items():
                g.create_dataset(f"{layer}/{name}:0", data=array)
        opt = f.create_group("optimizer_weights")
        opt.attrs["weight_names"] = np.asarray([b"Adam/iterations:0", b"m_0:0", b"v_0:0"], "S")
        opt.create_dataset("Adam/iterations:0", data=np.int64(4700))
        opt.create_dataset("m_0:0", data=rng.normal(size=(M, N)).astype(np.float32))
        opt.create_dataset("v_0:0", data=rng.normal(size=(M, N)).astype(np.float32))


def _paper_weights(seed):
    rng = np.random.default_rng(seed)
    w = lambda *shape: rng.normal(0, 0.5, shape).astype(np.float32)  # noqa: E731
    return {
        "simple_rnn_10": {"kernel": w(M, N), "recurrent_kernel": w(N, N)},
        "dense_10": {"kernel": w(N, OUT), "bias": w(OUT)},
    }


def test_paper_keras2_layout_lands_in_our_orientation(tmp_path, capsys):
    weights = [_paper_weights(seed) for seed in (1, 2)]
    paths = [tmp_path / f"ff_3b_weights-{i:02d}.hdf5" for i in (1, 20)]
    for path, w in zip(paths, weights):
        write_keras2(path, w)
    assert main(["import-keras", *map(str, paths), "--out", str(tmp_path / "ensemble.npz")]) == 0
    assert "2 network(s) (M = 3 inputs, N = 6 units, O = 2 outputs, tanh, alpha = 1)" in capsys.readouterr().out
    ensemble = cj.load_npz(tmp_path / "ensemble.npz")
    for k, w in enumerate(weights):  # members in the order given
        rnn, dense = w["simple_rnn_10"], w["dense_10"]
        np.testing.assert_array_equal(ensemble.W_in[k], rnn["kernel"].T)
        np.testing.assert_array_equal(ensemble.W_rec[k], rnn["recurrent_kernel"].T)
        np.testing.assert_array_equal(ensemble.b[k], 0.0)  # use_bias=False
        np.testing.assert_array_equal(ensemble.W_out[k], dense["kernel"].T)
        np.testing.assert_array_equal(ensemble.b_out[k], dense["bias"])
    np.testing.assert_array_equal(ensemble.alpha, 1.0)
    # Keras' equations, h[t] = tanh(x[t] @ kernel + h[t-1] @ recurrent_kernel), z = h @ dense + bias:
    x = np.random.default_rng(3).normal(size=(2, 10, M))
    rnn, dense = weights[1]["simple_rnn_10"], weights[1]["dense_10"]
    h, zs = np.zeros((2, N)), []
    for t in range(10):
        h = np.tanh(x[:, t] @ rnn["kernel"] + h @ rnn["recurrent_kernel"])
        zs.append(h @ dense["kernel"] + dense["bias"])
    np.testing.assert_allclose(
        np.asarray(cj.ensemble_outputs(ensemble, x.astype(np.float32)))[1], np.stack(zs, 1), atol=1e-5
    )


def test_keras2_weights_only_file_takes_the_activation_given(tmp_path):
    """Keras 2 `save_weights`: the layers at the root (`layer_names`), no `model_config`; the kinds come from
    the weight names and shapes, the activation from the argument (default tanh)."""
    weights = _paper_weights(4)
    path = tmp_path / "weights.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.asarray([layer.encode() for layer in weights], "S")
        for layer, arrays in weights.items():
            g = f.create_group(layer)
            g.attrs["weight_names"] = np.asarray([f"{layer}/{name}:0".encode() for name in arrays], "S")
            for name, array in arrays.items():
                g.create_dataset(f"{layer}/{name}:0", data=array)
    assert cj.load_keras(path).activation == "tanh"
    ensemble = cj.load_keras(path, activation="relu")
    assert ensemble.activation == "relu"
    np.testing.assert_array_equal(ensemble.W_rec[0], weights["simple_rnn_10"]["recurrent_kernel"].T)
    np.testing.assert_array_equal(ensemble.W_out[0], weights["dense_10"]["kernel"].T)


@pytest.mark.parametrize(
    "layers, weights, message",
    [
        (
            _paper_layers(rnn="LSTM"),
            None,
            (
                "found layers LSTM (simple_rnn_10), Dense (dense_10); supported: one "
                "SimpleRNN (return_sequences=True) followed by one Dense readout (linear "
                "activation)."
            ),
        ),
        (
            [
                _paper_layers()[0],
                {**_paper_layers()[0], "config": {**_paper_layers()[0]["config"], "name": "simple_rnn_11"}},
                _paper_layers()[1],
            ],
            None,
            (
                "found layers SimpleRNN (simple_rnn_10), SimpleRNN (simple_rnn_11), "
                "Dense (dense_10); supported: one SimpleRNN"
            ),
        ),
        (
            _paper_layers(return_sequences=False),
            None,
            (
                "found SimpleRNN (simple_rnn_10) with return_sequences=False "
                "(one output per sequence); supported: one SimpleRNN"
            ),
        ),
        (
            _paper_layers()[:1],
            {"simple_rnn_10": _paper_weights(0)["simple_rnn_10"]},
            "found layers SimpleRNN (simple_rnn_10); supported: one SimpleRNN",
        ),
        (
            _paper_layers(activation="hard_sigmoid"),
            None,
            (
                "found SimpleRNN (simple_rnn_10) with activation "
                "'hard_sigmoid'; supported: linear, relu, sigmoid, softplus, "
                "tanh."
            ),
        ),
    ],
)
def test_other_architectures_get_one_line_errors(tmp_path, capsys, layers, weights, message):
    path = tmp_path / "model.hdf5"
    write_keras2(path, _paper_weights(0) if weights is None else weights, layers)
    with pytest.raises(ValueError) as e:
        cj.load_keras(path)
    assert str(e.value).startswith(f"{path}: {message}") and "\n" not in str(e.value)
    with pytest.raises(SystemExit) as e:
        main(["import-keras", str(path), "--out", str(tmp_path / "e.npz")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "e.npz").exists()


def test_truncated_and_non_hdf5_files_get_one_line_errors(tmp_path, capsys):
    good = tmp_path / "good.hdf5"
    write_keras2(good, _paper_weights(0))
    truncated = tmp_path / "truncated.hdf5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.h5"
    text.write_text("not a model\n")
    for path in (truncated, text):
        with pytest.raises(ValueError, match=r"not a readable Keras file \(HDF5 model or weights, or \.keras zip\)"):
            cj.load_keras(path)
        with pytest.raises(SystemExit) as e:
            main(["import-keras", str(good), str(path), "--out", str(tmp_path / "e.npz")])
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.count("\n") == 1 and f"{path}: not a readable Keras file" in err
    with pytest.raises(FileNotFoundError, match="missing.h5: no such file"):
        cj.load_keras(tmp_path / "missing.h5")


def test_mismatched_members_and_activations_are_refused(tmp_path):
    a, b = tmp_path / "a.hdf5", tmp_path / "b.hdf5"
    write_keras2(a, _paper_weights(0))
    bigger = _paper_weights(1)
    bigger["simple_rnn_10"] = {
        "kernel": np.ones((M, N + 1), np.float32),
        "recurrent_kernel": np.ones((N + 1, N + 1), np.float32),
    }
    bigger["dense_10"]["kernel"] = np.ones((N + 1, OUT), np.float32)
    write_keras2(b, bigger, _paper_layers(n=N + 1))
    with pytest.raises(
        ValueError,
        match=r"b.hdf5: `W_in` has shape \(7, 3\) but .*a.hdf5 has \(6, 3\); members of one "
        r"ensemble need the same M, N, O.",
    ):
        cj.load_keras([a, b])
    with pytest.raises(ValueError, match=r"`activation` is 'relu' but the file's SimpleRNN uses 'tanh'"):
        cj.load_keras(a, activation="relu")
