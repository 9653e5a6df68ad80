"""`--task` and `--task-opt` on the command line (parsing only: nothing is compiled)."""

import pytest

from ctrnn_jax import ContextDMConfig, DelayedMatchConfig, FlipFlopConfig
from ctrnn_jax._cli import build_parser, config_from_args, main


def _config(*argv):
    return config_from_args(build_parser().parse_args(["train", *argv]))[0]


def test_task_choice_sets_sizes_and_defaults():
    c = _config("--task", "context_dm", "--task-opt", "noise_std=0.3", "--task-opt", "coherences=0.2,0.4")
    assert isinstance(c.task, ContextDMConfig) and c.task.noise_std == 0.3 and c.task.coherences == (0.2, 0.4)
    assert (c.ensemble.inputs, c.ensemble.outputs) == (4, 1)  # the task's sizes
    assert c.train.learning_rate == 3e-3  # the decision tasks' default
    assert _config("--task", "dms", "--lr", "1e-2").train.learning_rate == 1e-2  # explicit wins
    c = _config("--n-bits", "2")
    assert isinstance(c.task, FlipFlopConfig) and (c.ensemble.inputs, c.ensemble.outputs) == (2, 2)
    assert c.train.learning_rate == 1e-2
    assert isinstance(_config("--task", "dms", "--task-opt", "jitter=0").task, DelayedMatchConfig)


def test_constraint_and_training_options():
    c = _config(
        "--dale",
        "--rec-density",
        "0.5",
        "--no-autapses",
        "--fixed",
        "W_rec,W_in",
        "--rate-l2",
        "0.1",
        "--backprop",
        "checkpoint",
        "--cell",
        "ctrnn",
    )
    assert c.ensemble.dale and c.ensemble.rec_density == 0.5 and not c.ensemble.autapses
    assert c.train.fixed == ("W_rec", "W_in") and c.train.rate_l2 == 0.1 and c.train.backprop == "checkpoint"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--task", "nope"], "argument --task: invalid choice: 'nope' (choose from 'flipflop', 'perceptual_dm'"),
        (["--task", "neurogym"], "argument --task: invalid choice: 'neurogym'"),
        (["--task", "dms", "--task-opt", "bogus=1"], "FIELD one of"),
        (["--task", "dms", "--task-opt", "jitter"], "expected FIELD=VALUE"),
        (["--task", "dms", "--task-opt", "jitter=x"], "--task-opt jitter: invalid value"),
        (["--task", "dms", "--width", "3"], "flip-flop options, but --task is dms"),
        (["--task", "dms", "--task-opt", "grace=50"], "grace"),
        (["--cell", "lstm", "--dale"], "apply to `cell`='ctrnn' only"),
        (["--cell", "gru", "--alpha", "0.5"], "`alpha` applies to `cell`='ctrnn' only; `cell`='gru'"),
        (["--cell", "ugrnn", "--gain", "3"], "`gain` applies to `cell`='ctrnn' only"),
        (["--cell", "lstm", "--recurrent-init", "normal"], "`recurrent_init` applies to `cell`='ctrnn' only"),
        (["--cell", "gru", "--readout-init", "zeros"], "`readout_init` applies to `cell`='ctrnn' only"),
        (["--n-bits", "4", "--task-opt", "n_bits=2"], "--n-bits 4 and --task-opt n_bits=2 disagree"),
        (
            ["--first-onset", "1,5", "--task-opt", "first_onset=2,5"],
            "--first-onset 1,5 and --task-opt first_onset=2,5 disagree",
        ),
    ],
)
def test_bad_task_options_exit_with_one_line(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["train", "--out", str(tmp_path / "x"), *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_task_field_given_twice_with_the_same_value_is_accepted():
    assert _config("--n-bits", "4", "--task-opt", "n_bits=4").task.n_bits == 4


def test_gated_cells_take_their_own_options_and_ignore_a_presets_ctrnn_values():
    c = _config("--cell", "gru", "--activation", "relu", "--alpha", "0.25")  # the defaults are not refused
    assert (c.ensemble.cell, c.ensemble.activation, c.ensemble.alpha) == ("gru", "relu", 0.25)
    c = config_from_args(build_parser().parse_args(["flipflop", "--preset", "paper", "--cell", "lstm"]))[0]
    assert c.ensemble.alpha == 0.25 and c.ensemble.units == 400  # the preset's alpha = 1 is the CTRNN's


def test_task_choice_accepts_any_neurogym_environment_id():
    args = build_parser().parse_args(["train", "--task", "neurogym:GoNogo-v0"])
    assert args.task == "neurogym:GoNogo-v0"


def test_none_is_a_value_and_overrides_a_preset():
    args = build_parser().parse_args(["flipflop", "--preset", "paper", "--dataset-size", "none", "--clip-norm", "1"])
    c = config_from_args(args)[0]
    assert c.train.dataset_size is None and c.train.clip_norm == 1.0 and c.train.steps == 4700
    c = _config("--clip-norm", "none", "--lr", "1e-2,3e-3", "--members", "2", "--fixed", "W_rec,b")
    assert c.train.clip_norm is None and c.train.learning_rate == (1e-2, 3e-3) and c.train.fixed == ("W_rec", "b")
