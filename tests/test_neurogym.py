"""NeuroGym environments as tasks (`ctrnn_jax.tasks._neurogym`): trials against NeuroGym's own, the
score, the run-folder round trip, training to above chance on two environments, and one-line errors.
Skipped where `neurogym` is not installed (`pip install '.[neurogym]'`), except the tests of what a
user without it sees."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

import ctrnn_jax as cj
from ctrnn_jax._cli import main
from ctrnn_jax.tasks import task_from_dict
from ctrnn_jax.tasks._neurogym import _seed, neurogym_task

GONOGO, PDM = "GoNogo-v0", "PerceptualDecisionMaking-v0"


@pytest.fixture(scope="module")
def ngym():
    return pytest.importorskip("neurogym")


@pytest.fixture(scope="module")
def gonogo_run(ngym, tmp_path_factory):
    """A 2-member ensemble trained on GoNogo-v0 through the command line: 200 steps, N = 16."""
    out = tmp_path_factory.mktemp("neurogym") / "gonogo"
    assert (
        main(
            [
                "train",
                "--task",
                f"neurogym:{GONOGO}",
                "--members",
                "2",
                "--units",
                "16",
                "--steps",
                "200",
                "--dataset-size",
                "1024",
                "--lr",
                "1e-2",
                "--progress",
                "none",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


@pytest.fixture(scope="module")
def pdm_trained(ngym):
    """A 2-member ensemble trained on PerceptualDecisionMaking-v0 through the library: 300 steps, N = 32."""
    task = cj.NeurogymTask(PDM)
    ens = cj.EnsembleConfig(members=2, units=32, inputs=task.n_inputs, outputs=task.n_outputs)
    trainer = cj.EnsembleTrainer(ens, cj.TrainConfig(steps=300, dataset_size=1024, learning_rate=1e-2), task)
    state, _ = trainer.train(trainer.init(), progress=cj.NoProgress())
    return task, state.model


@pytest.mark.filterwarnings("ignore:.*render_modes")  # gymnasium on NeuroGym's metadata
def test_trials_are_neurogyms_own(ngym):
    task = cj.NeurogymTask(GONOGO)
    key = jax.random.key(3)
    inputs, targets, mask = (np.asarray(a) for a in task.dataset(key, 16))
    assert (task.n_inputs, task.n_outputs, task.length) == (3, 2, 15)  # fixation + go/nogo cues; fixate, go
    assert inputs.shape == (16, 15, 3) and targets.shape == mask.shape == (16, 15, 2)
    env = ngym.make(GONOGO).unwrapped  # the reference: the environment itself, seeded as the task seeds it
    env.seed(_seed(key))
    for b in range(16):
        env.new_trial()
        n = env.ob.shape[0]
        np.testing.assert_array_equal(inputs[b, :n], env.ob)
        np.testing.assert_array_equal(targets[b, :n], np.eye(2)[env.gt])  # one-hot ground-truth actions
        assert np.all(mask[b, :n] == 1) and np.all(mask[b, n:] == 0) and np.all(inputs[b, n:] == 0)
    again = task.dataset(key, 16)
    assert all(np.array_equal(a, b) for a, b in zip((inputs, targets, mask), again))  # a function of the key
    assert not np.array_equal(inputs, task.dataset(jax.random.key(4), 16)[0])


def test_variable_length_trials_are_padded_and_scored_periods_mask(ngym):
    task = cj.NeurogymTask("ContextDecisionMaking-v0", test_trials=64, scored_periods=("decision",))
    inputs, targets, mask = (np.asarray(a) for a in task.test_set())
    steps = (np.abs(inputs).sum(-1) > 0).sum(1)  # the fixation cue is on until the decision
    assert steps.min() < task.length  # trials of several lengths, padded to `length`
    # only the decision period counts: one step (dt = 100 ms) at each trial's end, a choice (action 1 or 2)
    assert np.all(mask.sum(axis=(1, 2)) == task.n_outputs)
    assert np.all(targets[mask > 0].reshape(64, -1).argmax(-1) > 0)


def test_score_is_the_decision_at_the_last_scored_step(ngym):
    task = cj.NeurogymTask(GONOGO, test_trials=200)
    _, targets, mask = (np.asarray(a) for a in task.test_set())
    go = targets[:, -1, 1] == 1
    fixate_always = np.broadcast_to(np.array([1.0, 0.0]), targets.shape)
    outputs = np.stack([targets, fixate_always, 1 - targets])  # (K = 3, B, T, O)
    s = task.score(outputs, targets, mask)
    np.testing.assert_allclose(s["accuracy"], [1.0, 1 - go.mean(), 0.0])  # fixating is right on no-go trials only
    assert 0.3 < go.mean() < 0.7 and s["success"].tolist() == [True, False, False]
    np.testing.assert_allclose(s["mse"], [0.0, np.sum(mask * (fixate_always - targets) ** 2) / mask.sum(), 1.0])


def test_fixed_point_inputs_are_the_fixation_baseline(ngym):
    np.testing.assert_array_equal(cj.NeurogymTask(PDM).fixed_point_inputs(), [[1, 0, 0]])  # fixation period
    np.testing.assert_array_equal(cj.NeurogymTask(GONOGO).fixed_point_inputs(), [[1, 0, 0]])  # no fixation: delay


def test_config_round_trip_and_options(ngym):
    task = neurogym_task(
        f"neurogym:{PDM}",
        [
            "dt=50",
            "cohs=[25.6, 51.2]",
            "timing={'stimulus': 500}",
            "test_trials=32",
            "scored_periods=stimulus,decision",
        ],
    )
    assert task.env_kwargs == {"dt": 50, "cohs": [25.6, 51.2], "timing": {"stimulus": 500}}
    assert task.length == 14 and task.test_trials == 32 and task.scored_periods == ("stimulus", "decision")
    d = json.loads(json.dumps(task.to_dict()))
    back = task_from_dict("neurogym", d)
    assert back == task and hash(back) == hash(task)
    assert all(np.array_equal(a, b) for a, b in zip(back.test_set(), task.test_set()))
    with pytest.raises(ValueError, match="takes"):
        task_from_dict("neurogym", {**d, "bogus": 1})


def test_sample_inside_jit_asks_for_the_data_set_mode(ngym):
    task = cj.NeurogymTask(GONOGO)
    assert task.sample(jax.random.key(0), 4)[0].shape == (4, 15, 3)  # on the host: fine
    with pytest.raises(TypeError, match=r"made on the host, not inside jit: train in data-set mode"):
        jax.jit(task.sample, static_argnums=1)(jax.random.key(0), 4)  # as the trainer calls it without a data set


def test_gonogo_trains_above_chance_from_the_command_line(gonogo_run, capsys):
    """Chance is 0.5 (go and no-go trials are equally likely); the threshold 0.9 is far above it."""
    result = json.loads((gonogo_run / "eval.json").read_text())
    config = json.loads((gonogo_run / "config.json").read_text())["config"]
    assert config["task_name"] == "neurogym" and config["task"]["env_id"] == GONOGO
    assert config["train"]["dataset_size"] == 1024
    assert min(result["metric"]) >= 0.9, result["metric"]
    capsys.readouterr()
    assert main(["evaluate", str(gonogo_run), "--json", str(gonogo_run / "again.json")]) == 0  # the run folder
    assert json.loads((gonogo_run / "again.json").read_text())["metric"] == result["metric"]  # rebuilds the task


def test_perceptual_decision_trains_above_chance(pdm_trained):
    """Chance is 0.5 (two choices); a fifth of the trials have coherence 0, so the best possible
    accuracy is about 0.9. Threshold: 0.75."""
    task, model = pdm_trained
    inputs, targets, mask = task.test_set()
    accuracy = task.score(np.asarray(cj.ensemble_outputs(model, inputs)), targets, mask)["accuracy"]
    assert np.all(accuracy >= 0.75), accuracy


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--task", "neurogym:Nope-v0"], "`env_id` must be a NeuroGym environment (AntiReach-v0, "),
        (["--task", f"neurogym:{GONOGO}", "--task-opt", "bogus=1"], "unknown GoNogo-v0 option(s) ['bogus']; allowed: "),
        (["--task", f"neurogym:{GONOGO}", "--task-opt", "dt"], "expected KEY=VALUE"),
        (["--task", f"neurogym:{GONOGO}", "--task-opt", "timing=5"], "GoNogo-v0 rejects the options {'timing': 5}"),
        (["--task", f"neurogym:{GONOGO}", "--task-opt", "test_trials=0"], "`test_trials` must be an integer >= 1"),
        (["--task", "neurogym:Bandit-v0"], "Bandit-v0 defines no ground truth"),
        (["--task", "neurogym:ReachingDelayResponse-v0"], "with a discrete action space"),
    ],
)
def test_bad_env_or_option_exits_with_one_line(ngym, argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["train", "--out", str(tmp_path / "x"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "x").exists()


def test_without_neurogym_the_error_says_how_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "neurogym", None)  # what `import neurogym` does where it is missing
    with pytest.raises(SystemExit) as e:
        main(["train", "--out", str(tmp_path / "x"), "--task", f"neurogym:{GONOGO}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1, err
    assert "install it with pip install 'ctrnn-ensembles[neurogym]'" in err[0], err


def test_importing_ctrnn_jax_does_not_import_neurogym():
    code = "import sys, ctrnn_jax; print('neurogym' in sys.modules, 'gymnasium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
