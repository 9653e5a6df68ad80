import dataclasses
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctrnn_jax import (
    CTRNN,
    EnsembleConfig,
    EnsembleTrainer,
    FlipFlopConfig,
    NoProgress,
    TrainConfig,
    get_member,
    load_checkpoint,
    load_npz,
    make_ensemble,
    save_checkpoint,
    save_npz,
)
from ctrnn_jax.io import fingerprint
from ctrnn_jax.io._run import train_run
from ctrnn_jax.io._run_config import RunConfig
from ctrnn_jax.io._serialisation import from_arrays
from ctrnn_jax.models._gated import GRU, LSTM, UGRNN

ARRAYS = ("W_rec", "W_in", "b", "W_out", "b_out", "alpha")
TASK = FlipFlopConfig(length=24, first_onset=(1, 3), gaps=(5, 5), gap_jitter=3, width=3, delay=2)
ENSEMBLE = EnsembleConfig(members=2, units=5, alpha=(1.0, 0.5))
TRAIN = TrainConfig(steps=4, batch_size=4, steps_per_call=2)


def random_biases(model, key):
    k1, k2 = jax.random.split(key)
    return eqx.tree_at(
        lambda m: (m.b, m.b_out),
        model,
        (jax.random.normal(k1, model.b.shape), jax.random.normal(k2, model.b_out.shape)),
    )


def test_npz_round_trip_is_exact(tmp_path, getkey, tree_allclose):
    ensemble = random_biases(
        make_ensemble(EnsembleConfig(members=3, units=5, alpha=(1.0, 0.5, 0.2), activation="softplus"), key=getkey()),
        getkey(),
    )
    save_npz(ensemble, tmp_path / "ensemble.npz")
    loaded = load_npz(tmp_path / "ensemble.npz")
    assert loaded.activation == "softplus"
    assert tree_allclose(loaded, ensemble, exact=True)
    with np.load(tmp_path / "ensemble.npz") as z:  # the interchange format: plain named arrays
        assert sorted(z.files) == sorted((*ARRAYS, "activation"))
        assert z["W_in"].shape == (3, 5, 3) and str(z["activation"]) == "softplus"


def test_npz_saves_a_single_network(tmp_path, getkey, tree_allclose):
    single = random_biases(CTRNN(2, 4, 1, key=getkey(), alpha=0.3, activation="relu"), getkey())
    save_npz(single, tmp_path / "one.npz")
    loaded = load_npz(tmp_path / "one.npz")
    assert loaded.W_rec.shape == (1, 4, 4) and loaded.activation == "relu"
    assert tree_allclose(get_member(loaded, 0), single, exact=True)


def corrupt(arrays, **changes):
    out = {**arrays, "activation": np.asarray("tanh")}
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


@pytest.mark.parametrize(
    "change, problem",
    [
        (dict(W_out=None), "missing array.*W_out"),
        (dict(W_in=np.zeros((2, 6, 3), np.float32)), "`W_in` has shape"),
        (dict(W_rec=np.zeros((2, 5, 4), np.float32)), "`W_rec` must have shape"),
        (dict(alpha=np.ones(3, np.float32)), "`alpha` has shape"),
        (dict(b=np.full((2, 5), np.nan, np.float32)), "`b` contains NaN"),
        (dict(W_rec=np.full((2, 5, 5), np.inf, np.float32)), "`W_rec` contains NaN or inf"),
        (dict(alpha=np.array([1.5, 0.5], np.float32)), r"`alpha` must be in \(0, 1\]"),
        (dict(alpha=np.array([0.0, 0.5], np.float32)), r"`alpha` must be in \(0, 1\]"),
        (dict(activation=np.asarray("foo")), "unknown activation 'foo'.*tanh"),
        (dict(W_out=np.zeros((2, 3, 5), np.int64)), "`W_out` must be a float array"),
    ],
)
def test_load_npz_rejects_corrupt_files(change, problem, tmp_path):
    rng = np.random.default_rng(0)
    good = {
        name: rng.normal(size=shape).astype(np.float32)
        for name, shape in (
            ("W_rec", (2, 5, 5)),
            ("W_in", (2, 5, 3)),
            ("b", (2, 5)),
            ("W_out", (2, 3, 5)),
            ("b_out", (2, 3)),
        )
    }
    good["alpha"] = np.array([1.0, 0.5], np.float32)
    np.savez(tmp_path / "good.npz", **corrupt(good))
    assert load_npz(tmp_path / "good.npz").W_rec.shape == (2, 5, 5)
    path = tmp_path / "bad.npz"
    np.savez(path, **corrupt(good, **change))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + problem):
        load_npz(path)


def test_load_npz_rejects_files_that_are_not_npz(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": not an .npz file"):
        load_npz(path)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_npz(tmp_path / "missing.npz")


@pytest.fixture(scope="module")
def trained():
    """A trainer and its state after 4 steps."""
    trainer = EnsembleTrainer(ENSEMBLE, TRAIN, TASK)
    state, losses = trainer.train(trainer.init(), progress=NoProgress())
    return trainer, state, losses


def test_checkpoint_round_trip_is_exact(trained, tmp_path, tree_allclose):
    trainer, state, losses = trained
    save_checkpoint(tmp_path / "checkpoint.eqx", state, losses)
    loaded, loaded_losses = load_checkpoint(tmp_path / "checkpoint.eqx", trainer.init())
    assert tree_allclose(loaded, state, exact=True)
    assert int(loaded.step) == 4
    np.testing.assert_array_equal(loaded_losses, losses)


def test_checkpoint_from_another_config_is_rejected(trained, tmp_path):
    _, state, losses = trained
    save_checkpoint(tmp_path / "checkpoint.eqx", state, losses)
    other = EnsembleTrainer(dataclasses.replace(ENSEMBLE, units=6), TRAIN, TASK)
    with pytest.raises(ValueError, match="checkpoint.eqx: corrupt checkpoint, or one made with another configuration"):
        load_checkpoint(tmp_path / "checkpoint.eqx", other.init())


def test_truncated_checkpoint_is_rejected(trained, tmp_path):
    trainer, state, losses = trained
    path = tmp_path / "checkpoint.eqx"
    save_checkpoint(path, state, losses)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match="corrupt checkpoint"):
        load_checkpoint(path, trainer.init())


def run_config(steps):
    return RunConfig(ensemble=ENSEMBLE, train=dataclasses.replace(TRAIN, steps=steps), task=TASK, checkpoint_every=2)


def quiet(out, config, **kwargs):
    return train_run(out, config, progress=NoProgress(), log=lambda message: None, **kwargs)


def test_resumed_run_equals_uninterrupted_run(tmp_path, tree_allclose):
    quiet(tmp_path / "a", run_config(8))
    quiet(tmp_path / "b", run_config(4))
    assert len((tmp_path / "b" / "metrics.csv").read_text().splitlines()) == 1 + 4 * 2
    result = quiet(tmp_path / "b", run_config(8), resume=True)
    a, b = load_npz(tmp_path / "a" / "ensemble.npz"), load_npz(tmp_path / "b" / "ensemble.npz")
    assert tree_allclose(a, b, exact=True)
    assert (tmp_path / "a" / "metrics.csv").read_text() == (tmp_path / "b" / "metrics.csv").read_text()
    assert len((tmp_path / "b" / "metrics.csv").read_text().splitlines()) == 1 + 8 * 2
    assert result["n_members"] == 2


def test_resume_refuses_other_settings(tmp_path):
    quiet(tmp_path / "run", run_config(2))
    changed = dataclasses.replace(run_config(4), ensemble=dataclasses.replace(ENSEMBLE, units=6))
    with pytest.raises(ValueError, match="only change `steps`"):
        quiet(tmp_path / "run", changed, resume=True)
    with pytest.raises(FileNotFoundError, match="config.json"):
        quiet(tmp_path / "nothing", run_config(4), resume=True)


def test_new_run_refuses_an_existing_run_folder(tmp_path):
    out = tmp_path / "run"
    quiet(out, run_config(2))
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert {"config.json", "checkpoint.eqx", "metrics.csv", "eval.json", "ensemble.npz"} <= set(before)
    with pytest.raises(FileExistsError, match="already holds a run"):
        quiet(out, run_config(4))
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before


# ---------------------------------------------------------------------------------------------------
# The `cell` field: GRU and LSTM ensembles, CTRNN files with and without it

GATED = {"gru": GRU, "lstm": LSTM, "ugrnn": UGRNN}
GATED_ARRAYS = {
    "gru": ("W_rec", "W_in", "b", "b_n", "W_out", "b_out"),
    "lstm": ("W_rec", "W_in", "b", "W_out", "b_out"),
    "ugrnn": ("W_rec", "W_in", "b", "W_out", "b_out"),
}


def gated_ensemble(cell, seed, k=2, n=4):
    """`k` stacked GRUs/LSTMs (3 inputs, `n` units, 2 outputs) with every array drawn at random."""
    build = eqx.filter_vmap(lambda key: GATED[cell](3, n, 2, key=key, activation="softplus"))
    shapes = eqx.filter_eval_shape(build, jax.random.split(jax.random.key(0), k))
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda a: jnp.asarray(rng.standard_normal(a.shape), jnp.float32), shapes)


@pytest.mark.parametrize("cell, blocks", [("gru", 3), ("lstm", 4), ("ugrnn", 2)])
def test_gated_npz_round_trip_is_exact(cell, blocks, tmp_path, tree_allclose):
    ensemble = gated_ensemble(cell, 1)
    save_npz(ensemble, tmp_path / "ensemble.npz")
    with np.load(tmp_path / "ensemble.npz") as z:
        assert sorted(z.files) == sorted((*GATED_ARRAYS[cell], "activation", "cell")) and str(z["cell"]) == cell
        assert z["W_rec"].shape == (2, blocks * 4, 4) and z["W_in"].shape == (2, blocks * 4, 3)
    loaded = load_npz(tmp_path / "ensemble.npz")
    assert type(loaded) is type(ensemble) and loaded.cell == cell and loaded.activation == "softplus"
    assert tree_allclose(loaded, ensemble, exact=True)
    single = get_member(ensemble, 1)  # a single network is stored as K = 1
    save_npz(single, tmp_path / "one.npz")
    assert tree_allclose(get_member(load_npz(tmp_path / "one.npz"), 0), single, exact=True)


def test_ctrnn_files_with_and_without_cell(tmp_path, getkey, tree_allclose):
    ensemble = make_ensemble(EnsembleConfig(members=3, units=5, alpha=(1.0, 0.5, 0.2)), key=getkey())
    ensemble = random_biases(ensemble, getkey())
    save_npz(ensemble, tmp_path / "written.npz")  # the current writer: no `cell` entry for a CTRNN
    with np.load(tmp_path / "written.npz") as z:
        arrays = {name: z[name] for name in z.files}
    assert "cell" not in arrays
    np.savez(tmp_path / "explicit.npz", cell=np.asarray("ctrnn"), **arrays)
    for name in ("written.npz", "explicit.npz"):
        loaded = load_npz(tmp_path / name)
        assert isinstance(loaded, CTRNN) and tree_allclose(loaded, ensemble, exact=True)


@pytest.mark.parametrize(
    "cell, change, problem",
    [
        ("rnn", {}, "unknown cell 'rnn'; allowed: ctrnn, gru, lstm, ugrnn"),
        ("gru", dict(b_n=None), "missing array.*b_n.*cell 'gru'"),
        ("gru", dict(W_rec=np.zeros((2, 16, 4), np.float32)), r"`W_rec` must have shape \(K, 3N, N\)"),
        ("lstm", dict(b=np.zeros((2, 12), np.float32)), "`b` has shape"),
        ("lstm", dict(W_out=np.full((2, 2, 4), np.nan, np.float32)), "`W_out` contains NaN"),
        ("ctrnn", {}, "missing array.*alpha"),  # a gated file marked as a CTRNN
    ],
)
def test_load_npz_rejects_bad_gated_files(cell, change, problem, tmp_path):
    base = "gru" if cell in ("gru", "rnn", "ctrnn") else "lstm"
    save_npz(gated_ensemble(base, 2), tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as z:
        arrays = {name: z[name] for name in z.files}
    arrays.update(cell=np.asarray(cell), **change)
    path = tmp_path / "bad.npz"
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + problem):
        load_npz(path)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gated_checkpoint_round_trip(cell, tmp_path, tree_allclose):
    ensemble = gated_ensemble(cell, 3)
    save_checkpoint(tmp_path / "checkpoint.eqx", ensemble, np.ones((3, 2)))
    loaded, losses = load_checkpoint(tmp_path / "checkpoint.eqx", gated_ensemble(cell, 4))
    assert tree_allclose(loaded, ensemble, exact=True) and losses.shape == (3, 2)


# ----------------------------------------------------------------------------------------------------
# The built-in cells' files and fingerprints are those of before any cell could be saved (#29)
# ----------------------------------------------------------------------------------------------------

# The interchange format as it was (ctrnn_jax/io/_serialisation.py at 56c94d8): array names per cell.
FORMAT = {"ctrnn": ARRAYS, **GATED_ARRAYS}
# Computed with that code (before #29) from `fixed_arrays(cell)`; derived files record them, so they never change.
PINNED_FINGERPRINTS = {
    "ctrnn": "83cfd3d1d7c3934b",
    "gru": "b99773c240f5f409",
    "lstm": "d7dac5a3e3c622e3",
    "ugrnn": "c30b9dbd45c3b9b9",
}


def fixed_arrays(cell: str, k: int = 2, n: int = 3, m: int = 2, o: int = 1) -> dict:
    """Deterministic arrays of the interchange format of `cell` (no random numbers: stable across JAX versions)."""
    g = {"ctrnn": 1, "gru": 3, "lstm": 4, "ugrnn": 2}[cell]
    shapes = {
        "W_rec": (k, g * n, n),
        "W_in": (k, g * n, m),
        "b": (k, g * n),
        "b_n": (k, n),
        "W_out": (k, o, n),
        "b_out": (k, o),
        "alpha": (k,),
    }
    out = {
        name: (
            np.linspace(-1, 1, int(np.prod(shapes[name])), dtype=np.float32).reshape(shapes[name]) * (i + 1) / 7
        ).astype(np.float32)
        for i, name in enumerate(FORMAT[cell])
    }
    if cell == "ctrnn":
        out["alpha"] = np.array([0.5, 1.0], np.float32)
    return out


@pytest.mark.parametrize("cell", list(FORMAT))
def test_builtin_fingerprints_are_pinned(cell):
    assert fingerprint(from_arrays(fixed_arrays(cell), "tanh", cell=cell)) == PINNED_FINGERPRINTS[cell]


@pytest.mark.parametrize("cell", list(FORMAT))
def test_builtin_files_keep_the_old_layout(cell, tmp_path):
    """`save_npz` writes exactly the entries, dtypes and values the format always had (CTRNN without `cell`),
    and a file written in that layout by `np.savez` loads to the same arrays."""
    arrays = fixed_arrays(cell)
    old = {"activation": np.asarray("softplus"), **arrays, **({} if cell == "ctrnn" else {"cell": np.asarray(cell)})}
    save_npz(from_arrays(arrays, "softplus", cell=cell), tmp_path / "new.npz")
    with np.load(tmp_path / "new.npz") as z:
        assert sorted(z.files) == sorted(old)
        for name, value in old.items():
            assert z[name].dtype == value.dtype and z[name].shape == value.shape, name
            assert np.array_equal(z[name], value), name
    np.savez(tmp_path / "old.npz", **old)  # as the code before #29 wrote it
    loaded = load_npz(tmp_path / "old.npz")
    assert type(loaded).cell == cell and loaded.activation == "softplus"
    for name in FORMAT[cell]:
        assert np.array_equal(np.asarray(getattr(loaded, name)), arrays[name]), name
    assert fingerprint(loaded) == fingerprint(load_npz(tmp_path / "new.npz"))
