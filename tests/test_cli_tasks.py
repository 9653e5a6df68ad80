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
    c = _config("--dale", "--rec-density", "0.5", "--no-autapses", "--fixed", "W_rec,W_in", "--rate-l2", "0.1",
                "--backprop", "checkpoint", "--cell", "ctrnn")
    assert c.ensemble.dale and c.ensemble.rec_density == 0.5 and not c.ensemble.autapses
    assert c.train.fixed == ("W_rec", "W_in") and c.train.rate_l2 == 0.1 and c.train.backprop == "checkpoint"


@pytest.mark.parametrize("argv,message", [
    (["--task", "nope"], "`task` must be one of flipflop, perceptual_dm"),
    (["--task", "dms", "--task-opt", "bogus=1"], "FIELD one of"),
    (["--task", "dms", "--task-opt", "jitter"], "expected FIELD=VALUE"),
    (["--task", "dms", "--task-opt", "jitter=x"], "--task-opt jitter: invalid value"),
    (["--task", "dms", "--width", "3"], "flip-flop options, but --task is dms"),
    (["--task", "dms", "--task-opt", "grace=50"], "grace"),
    (["--cell", "lstm", "--dale"], "apply to `cell`='ctrnn' only"),
])
def test_bad_task_options_exit_with_one_line(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["train", "--out", str(tmp_path / "x"), *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
