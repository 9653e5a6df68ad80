"""GRU and LSTM ensembles go through the trainer, the run folder, `analyze` and `fixed-points`."""

import json

import numpy as np
import pytest

from ctrnn_jax import GRU, LSTM, EnsembleConfig, EnsembleTrainer, FlipFlopConfig, TrainConfig, load_npz
from ctrnn_jax._cli import main

TASK = FlipFlopConfig(length=30, first_onset=(1, 5), gaps=(5, 5), gap_jitter=3, width=3, delay=2)


@pytest.mark.parametrize("cell,cls", [("gru", GRU), ("lstm", LSTM)])
def test_gated_ensemble_trains(cell, cls):
    ens = EnsembleConfig(members=2, units=8, cell=cell)
    trainer = EnsembleTrainer(ens, TrainConfig(steps=40, batch_size=8, steps_per_call=40, learning_rate=2e-2), TASK)
    state0 = trainer.init()
    assert isinstance(state0.model, cls)
    state, losses = trainer.run_steps(state0, 40)
    losses = np.asarray(losses)
    assert np.all(np.isfinite(losses)) and np.all(losses[-5:].mean(axis=0) < losses[:5].mean(axis=0))
    # members are independent networks from their own keys
    assert not np.allclose(np.asarray(state0.model.W_rec[0]), np.asarray(state0.model.W_rec[1]))


def test_gated_cells_reject_constraints():
    with pytest.raises(ValueError, match="apply to `cell`='ctrnn' only"):
        EnsembleConfig(cell="gru", dale=True)
    with pytest.raises(ValueError, match="`cell` must be one of ctrnn, gru, lstm, ugrnn"):
        EnsembleConfig(cell="rnn")


@pytest.mark.parametrize(
    "field, value",
    [("alpha", 0.5), ("alpha", (0.25, 1.0)), ("gain", 3.0), ("recurrent_init", "normal"), ("readout_init", "zeros")],
)
def test_gated_cells_refuse_ctrnn_only_fields(field, value):
    with pytest.raises(ValueError, match=f"`{field}` applies to `cell`='ctrnn' only; `cell`='lstm'"):
        EnsembleConfig(members=2, cell="lstm", **{field: value})
    EnsembleConfig(members=2, cell="ctrnn", **{field: value})  # the CTRNN's own


def test_gated_cells_take_the_ctrnn_only_fields_at_their_defaults():
    config = EnsembleConfig(members=2, cell="gru", alpha=(0.25, 0.25), gain=1.0, activation="relu")
    assert EnsembleConfig.from_dict(config.to_dict()) == config


def test_lstm_run_folder_analyze_and_fixed_points(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--task",
                "perceptual_dm",
                "--cell",
                "lstm",
                "--members",
                "2",
                "--units",
                "6",
                "--steps",
                "20",
                "--steps-per-call",
                "10",
                "--batch",
                "8",
                "--out",
                str(run),
                "--progress",
                "none",
            ]
        )
        == 0
    )
    assert isinstance(load_npz(run / "ensemble.npz"), LSTM)
    assert main(["analyze", str(run)]) == 0
    analysis = json.loads((run / "analysis.json").read_text())
    assert analysis["task"] == "perceptual_dm" and len(analysis["fixed_points"][0]["per_member"]) == 2
    assert (run / "figures" / "test_trials.png").is_file() and (run / "report.md").is_file()
    capsys.readouterr()
    assert main(["fixed-points", str(run), "--out", str(tmp_path / "fp.npz"), "--candidates", "32"]) == 0
    out = capsys.readouterr().out
    assert "member 0:" in out and (tmp_path / "fp.npz").is_file()


def test_an_older_gated_run_config_with_ctrnn_only_values_still_loads():
    """Older versions recorded (and ignored) `alpha`, `gain`, ... for a gated cell: such a run folder loads,
    with those fields at their defaults, while a new config with them is refused."""
    old = {"members": 2, "cell": "gru", "alpha": 0.5, "gain": 3.0, "recurrent_init": "normal"}
    assert EnsembleConfig.from_dict(old) == EnsembleConfig(members=2, cell="gru")
    with pytest.raises(ValueError, match="alpha"):
        EnsembleConfig(members=2, cell="gru", alpha=0.5)
