"""A cell written outside the package (`tests/custom_cell.py`, a rank-2 CTRNN) trains, is saved and loaded,
built from an `EnsembleConfig`, analysed, and used from the command line (#29)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest
from custom_cell import LowRank

import ctrnn_jax as cj
from ctrnn_jax._cli import main
from ctrnn_jax.io import fingerprint

SPEC = "custom_cell:LowRank"
TASK = cj.FlipFlopConfig(length=24, first_onset=(1, 3), gaps=(5, 5), gap_jitter=3, width=3, delay=2)
TESTS = Path(__file__).parent


def lowrank_ensemble(key, k=2, n=6, alpha=0.5):
    return eqx.filter_vmap(lambda kk: LowRank(3, n, 3, key=kk, alpha=alpha))(jax.random.split(key, k))


class NoOptions(LowRank):
    """A cell whose `options()` forget its static `alpha`: it could not be rebuilt from a file."""

    def options(self) -> dict:
        return {"activation": self.activation}


def test_the_cell_trains(getkey):
    model = lowrank_ensemble(getkey())
    trainer = cj.EnsembleTrainer(
        cj.EnsembleConfig(members=2, units=6, cell=SPEC), cj.TrainConfig(steps=6, batch_size=4, steps_per_call=3), TASK
    )
    state, losses = trainer.train(trainer.init_from(model), progress=cj.NoProgress())
    assert type(state.model) is LowRank and state.model.alpha == 0.5
    assert losses.shape == (6, 2) and np.all(np.isfinite(losses))
    for name in ("U", "V", "W_in", "W_out"):
        assert not np.array_equal(getattr(state.model, name), getattr(model, name)), name


def test_save_load_is_exact_with_the_same_fingerprint(tmp_path, getkey, tree_allclose):
    model = lowrank_ensemble(getkey(), k=3)
    cj.save_npz(model, tmp_path / "ensemble.npz")
    with np.load(tmp_path / "ensemble.npz") as z:  # readable names, member axis first
        assert str(z["cell"]) == SPEC and json.loads(str(z["options"])) == {"activation": "tanh", "alpha": 0.5}
        assert z["leaf:U"].shape == (3, 6, 2) and z["leaf:W_out"].shape == (3, 3, 6)
        assert (int(z["n_inputs"]), int(z["n_units"]), int(z["n_outputs"])) == (3, 6, 3)
    loaded = cj.load_npz(tmp_path / "ensemble.npz")
    assert type(loaded) is LowRank and loaded.alpha == 0.5
    assert tree_allclose(loaded, model, exact=True)
    assert fingerprint(loaded) == fingerprint(model)
    changed = eqx.tree_at(lambda m: m.U, model, model.U.at[0, 0, 0].add(1e-3))
    assert fingerprint(changed) != fingerprint(model)


def test_a_single_network_is_saved_as_one_member(tmp_path, getkey, tree_allclose):
    single = LowRank(3, 5, 3, key=getkey(), activation="softplus")
    cj.save_npz(single, tmp_path / "one.npz")
    loaded = cj.load_npz(tmp_path / "one.npz")
    assert loaded.U.shape == (1, 5, 2) and loaded.activation == "softplus"
    assert tree_allclose(cj.get_member(loaded, 0), single, exact=True)


def test_the_config_builds_the_cell(getkey):
    ens = cj.make_ensemble(cj.EnsembleConfig(members=3, units=7, cell=SPEC, activation="relu"), key=getkey())
    assert type(ens) is LowRank and ens.activation == "relu" and ens.U.shape == (3, 7, 2)
    assert ens.W_rec.shape == (3, 7, 7) and not np.array_equal(ens.U[0], ens.U[1])


@pytest.mark.parametrize(
    "cell, problem",
    [
        ("custom_cell:Nope", "'custom_cell' has no 'Nope'"),
        ("no_such_module:LowRank", "module 'no_such_module' fails to import"),
        ("custom_cell:RANK", "must be a subclass of ctrnn_jax.*AbstractRNN"),
        ("lowrank", "`cell` must be one of ctrnn, gru, lstm, ugrnn, or the import string"),
    ],
)
def test_a_bad_cell_is_one_line(cell, problem):
    with pytest.raises(ValueError, match=problem) as e:
        cj.EnsembleConfig(cell=cell)
    assert "\n" not in str(e.value)


def test_the_config_refuses_ctrnn_only_fields():
    with pytest.raises(ValueError, match="`gain` applies to `cell`='ctrnn' only"):
        cj.EnsembleConfig(cell=SPEC, gain=2.0)


def test_a_class_that_cannot_be_imported_on_load_is_one_line(tmp_path, getkey):
    cj.save_npz(lowrank_ensemble(getkey()), tmp_path / "ensemble.npz")
    with np.load(tmp_path / "ensemble.npz") as z:
        arrays = {name: z[name] for name in z.files}
    np.savez(tmp_path / "moved.npz", **{**arrays, "cell": np.asarray("gone_module:LowRank")})
    with pytest.raises(ValueError, match=r"moved\.npz: cannot import the cell 'gone_module:LowRank'") as e:
        cj.load_npz(tmp_path / "moved.npz")
    assert "\n" not in str(e.value)
    np.savez(tmp_path / "short.npz", **{k: v for k, v in arrays.items() if k != "leaf:V"})
    with pytest.raises(ValueError, match=r"short\.npz: .*missing leaf:V"):
        cj.load_npz(tmp_path / "short.npz")
    np.savez(tmp_path / "shape.npz", **{**arrays, "leaf:U": np.zeros((2, 6, 3), np.float32)})
    with pytest.raises(ValueError, match=r"shape\.npz: `leaf:U` has shape \(2, 6, 3\), expected \(2, 6, 2\)"):
        cj.load_npz(tmp_path / "shape.npz")


def test_a_cell_that_cannot_be_rebuilt_is_not_saved(tmp_path, getkey):
    model = eqx.filter_vmap(lambda k: NoOptions(3, 4, 3, key=k, alpha=0.5))(jax.random.split(getkey(), 2))
    with pytest.raises(ValueError, match=r"NoOptions.options\(\) must return every constructor option"):
        cj.save_npz(model, tmp_path / "ensemble.npz")
    assert not (tmp_path / "ensemble.npz").exists()


def test_analysis_is_written(tmp_path, getkey):
    ens = lowrank_ensemble(getkey(), n=5)
    config = cj.FixedPointConfig(n_candidates=16, n_trials=2, adam_steps=10, newton_steps=4, completion_rounds=1)
    result = cj.analyze(ens, None, config=config, robustness=False)  # without a task: fewer figures, faster
    result.write(tmp_path / "analysis", explorer=False)
    written = json.loads((tmp_path / "analysis" / "analysis.json").read_text())
    assert written["network"] == fingerprint(ens)
    assert (tmp_path / "analysis" / "fixed_points.npz").is_file() and (tmp_path / "analysis" / "report.md").is_file()


def test_command_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--cell",
                SPEC,
                "--members",
                "2",
                "--units",
                "8",
                "--steps",
                "5",
                "--batch",
                "4",
                "--progress",
                "none",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    assert type(cj.load_npz(run / "ensemble.npz")) is LowRank
    # another process finds the class again from the run folder, with the cell's module on PYTHONPATH
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "JAX_PLATFORMS": "cpu",
    }
    cli = [sys.executable, "-c", "import sys; from ctrnn_jax._cli import main; sys.exit(main())"]
    proc = subprocess.run([*cli, "evaluate", str(run)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "of 2 members solve" in proc.stdout
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["train", "--cell", "nope:Nope", "--steps", "1", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and "cannot import the cell 'nope:Nope'" in err
    assert not (tmp_path / "bad").exists()
