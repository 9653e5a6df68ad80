"""A researcher's own task (`tests/custom_task.py`, outside the package) is first-class: its metric's direction
decides the best member and the verdicts, its groups label the figures, its training defaults apply, and every
command finds it by import string."""

import dataclasses
import json
import re
from typing import ClassVar

import equinox as eqx
import jax
import numpy as np
import pytest
from custom_task import SineGen

import ctrnn_jax as cj
from ctrnn_jax._cli import main
from ctrnn_jax.io._eval import evaluate_run
from ctrnn_jax.io._run_config import RunConfig, read_config
from ctrnn_jax.tasks._task import check_task

TINY_FP = cj.FixedPointConfig(n_candidates=16, n_trials=2, adam_steps=10, newton_steps=4, completion_rounds=1)
TINY_FP_FLAGS = ["--candidates", "16", "--n-trials", "2", "--adam-steps", "10", "--newton-steps", "4"]


def _sinegen_ensemble():
    """K = 3 networks for SineGen whose test errors are known in order: member 1 outputs 0 (MSE = mean sin² ≈ 0.5),
    members 0 and 2 have a readout 30 times too large (a far larger error)."""
    ens = cj.make_ensemble(cj.EnsembleConfig(members=3, units=8, inputs=1, outputs=1, gain=1.5), key=jax.random.key(0))
    scale = np.asarray([30.0, 0.0, 30.0], np.float32)[:, None, None]
    return eqx.tree_at(lambda e: (e.W_out, e.b_out), ens, (ens.W_out * scale, ens.b_out * 0))


def test_an_error_metric_picks_the_lowest_error_as_best():
    task, ens = SineGen(), _sinegen_ensemble()
    ev = evaluate_run(ens, RunConfig(task=task))
    mse = np.asarray(ev["mse"])
    assert ev["metric_name"] == "mse" and ev["higher_is_better"] is False and ev["threshold"] == 0.05
    assert mse[1] < 0.6 and mse[0] > 10 * mse[1] and mse[2] > 10 * mse[1]
    assert ev["success"] == [bool(m < 0.05) for m in mse]
    a = cj.analyze(ens, task, config=TINY_FP, robustness=False)
    assert a.best == 1 == int(np.argmin(mse))  # argmax of the error would be the worst member
    assert a._ranking() == [int(k) for k in np.argsort(mse)]
    assert "mse < 0.05" in a.markdown()
    # the figures group the test trials as the task says (one frequency each), not by "answers"
    figs = a.figures()
    labels = figs["state_space_0"].axes[0].get_legend_handles_labels()[1]
    assert [lab for lab in labels if lab.startswith("f = ")] == [f"f = {f:g} (1 trials)" for f in task.test_frequencies]
    assert not any("answer" in lab for lab in labels)


def test_the_direction_of_the_metric_sets_success_and_ranking():
    err, acc = SineGen(), cj.PerceptualDMConfig()
    metric = np.asarray([0.01, 0.5, np.nan, 0.05])
    assert err.passes(metric).tolist() == [True, False, False, False]  # < 0.05
    assert acc.passes(np.asarray([0.95, 0.5, np.nan, 0.9])).tolist() == [True, False, False, True]  # >= 0.9
    assert int(np.argmax(err.ranking_score(metric))) == 0 and int(np.argmax(acc.ranking_score(metric))) == 1
    scores = cj.regression_score(np.zeros((2, 3, 4, 1)), np.ones((3, 4, 1)), np.ones((3, 4, 1)), threshold=2.0)
    assert scores["metric"].tolist() == scores["mse"].tolist() == [1.0, 1.0] and scores["success"].all()


def test_a_task_must_say_what_its_metric_is():
    with pytest.raises(TypeError, match="AbstractTask"):
        check_task(object())

    @dataclasses.dataclass(frozen=True)
    class NoDirection(SineGen):
        higher_is_better: ClassVar = None  # not said

    with pytest.raises(TypeError, match="higher_is_better"):
        check_task(NoDirection())
    with pytest.raises(TypeError, match="higher_is_better"):
        cj.register_task(NoDirection)

    class NoScore(cj.AbstractTask):
        name, metric_name, higher_is_better = "x", "mse", False

    with pytest.raises(TypeError, match="abstract"):
        NoScore()


def test_optional_hooks_have_documented_defaults():
    task = SineGen()
    assert task.validation_set() is None and task.memory_readouts() is None
    assert task.hold_steps() == task.length and task.readout_tolerance() == pytest.approx(0.02**0.5)
    assert task.test_set_name() == "sinegen test set (4 trials)"
    assert SineGen.from_dict(json.loads(json.dumps(task.to_dict()))) == task
    assert cj.FlipFlopConfig.for_sizes(2, 2).n_bits == 2


def test_the_command_line_runs_a_task_and_a_cell_by_import_string(tmp_path, capsys):
    """A run folder of a task and a cell defined outside the package: written by `train`, then evaluated, analysed and
    compared by the commands and re-analysed from Python, every time finding both classes from config.json and
    ensemble.npz."""
    runs = [tmp_path / "run0", tmp_path / "run1"]
    for seed, out in enumerate(runs):
        argv = [
            "train",
            "--task",
            "custom_task:SineGen",
            "--task-opt",
            "length=20",
            "--cell",
            "custom_cell:LowRank",
            "--members",
            "2",
            "--units",
            "6",
            "--steps",
            "4",
            "--steps-per-call",
            "2",
            "--batch",
            "4",
            "--seed",
            str(seed),
            "--progress",
            "none",
            "--out",
            str(out),
        ]
        assert main(argv) == 0
    out = runs[0]
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["task_name"] == "custom_task:SineGen" and config["task"]["length"] == 20
    assert config["ensemble"]["cell"] == "custom_cell:LowRank"
    assert config["train"]["learning_rate"] == 5e-3  # the task's own training default
    ev = json.loads((out / "eval.json").read_text())
    assert ev["task"] == "sinegen" and ev["higher_is_better"] is False and ev["threshold"] == 0.05
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0
    assert "solve the sinegen task (test MSE < 0.05)" in capsys.readouterr().out
    assert main(["analyze", str(out), *TINY_FP_FLAGS]) == 0
    analysis = json.loads((out / "analysis.json").read_text())
    assert analysis["task"] == "sinegen" and analysis["cell"] == "lowrank"
    assert analysis["best_member"] == int(np.argmin(ev["mse"]))
    assert main(["compare", *map(str, runs), "--out", str(tmp_path / "cmp"), *TINY_FP_FLAGS]) == 0
    assert (tmp_path / "cmp" / "comparison.json").is_file()
    # from Python: the run folder's ensemble and task, analysed again
    from custom_cell import LowRank

    ensemble, run_config = cj.load_npz(out / "ensemble.npz"), read_config(out)
    assert type(ensemble) is LowRank and type(run_config.task) is SineGen and run_config.task.length == 20
    again = cj.analyze(ensemble, run_config.task, config=TINY_FP, robustness=False)
    assert again.best == analysis["best_member"] and again.evaluation["mse"] == pytest.approx(ev["mse"])


@pytest.mark.parametrize("spec", ["no_such_module_29:SineGen", "custom_task:NoSuchTask", "custom_task:dataclasses"])
def test_a_bad_import_string_is_one_line_and_exit_2(tmp_path, capsys, spec):
    argv = ["train", "--task", spec, "--steps", "2", "--progress", "none", "--out", str(tmp_path / "r")]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and spec in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def _help_defaults(text: str) -> dict[str, str]:
    """`{flag: default}` of every option whose help ends in `(default: VALUE for flipflop...)` or `(default: VALUE)`."""
    flat = " ".join(text.split())
    found = {}
    for m in re.finditer(r" (--[a-z0-9-]+)(?: [A-Z|,.]+)? (.*?)\(default: ([^ ;)]+)", flat):
        found.setdefault(m.group(1), m.group(3))
    return found


def test_flipflop_help_shows_the_defaults_the_run_uses(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["flipflop", "--help"])
    shown = _help_defaults(capsys.readouterr().out)
    out = tmp_path / "run"
    assert (
        main(
            [
                "flipflop",
                "--members",
                "2",
                "--units",
                "5",
                "--steps",
                "4",
                "--steps-per-call",
                "2",
                "--batch",
                "4",
                "--length",
                "24",
                "--first-onset",
                "1,3",
                "--gaps",
                "5,5",
                "--gap-jitter",
                "3",
                "--width",
                "3",
                "--delay",
                "2",
                "--progress",
                "none",
                "--no-fixed-points",
                "--no-analyze",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    train = json.loads((out / "config.json").read_text())["config"]["train"]
    for flag, field in (
        ("--adam-b2", "adam_b2"),
        ("--stop-mse", "stop_mse"),
        ("--restart-after", "restart_after"),
        ("--lr", "learning_rate"),
        ("--adam-b1", "adam_b1"),
        ("--lr-decay", "lr_decay"),
    ):
        value = train[field]
        assert shown[flag] == ("none" if value is None else str(value)), flag
    assert (shown["--adam-b2"], shown["--stop-mse"], shown["--restart-after"]) == ("0.95", "0.02", "500")
