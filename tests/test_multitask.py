"""The multitask (`MultitaskConfig`) and the tasks added for its Yang 2019 preset (`GoConfig`, `DelayedNonMatchConfig`):
each trial of the multitask is its component's own trial in the shared layout, the per-task scores are the
components' own scorers, the mixture is respected, bad configs are refused by name, and it trains."""

import dataclasses
import json

import jax
import numpy as np
import pytest

import ctrnn_jax as cj
from ctrnn_jax.tasks import (
    ContextDMConfig,
    DelayedMatchConfig,
    DelayedNonMatchConfig,
    FlipFlopConfig,
    GoConfig,
    MultitaskConfig,
    PerceptualDMConfig,
    TaskSlot,
)
from ctrnn_jax.tasks._task import check_task
from ctrnn_jax.tasks._tasks import TASKS, make_task, task_from_dict

B = 128  # one batch size for the preset throughout: each (task, batch size) compiles once
YANG = MultitaskConfig()
# A small mixed composition: outputs 2 and 1, lengths 60 and 70, the flip-flop's targets not 0 before a "response".
MIXED = MultitaskConfig(
    tasks=(FlipFlopConfig(n_bits=2, length=60), TaskSlot(DelayedMatchConfig(), channels=(2, 1))),
    weights=(1.0, 3.0),
    fixation=False,
)


def _check_slots(task: MultitaskConfig, key, inputs, targets, mask, index):
    """Trial `b` of component `i` is row `b` of `task_i.sample(key_i, B)` in the shared layout."""
    inputs, targets, mask, index = (np.asarray(a) for a in (inputs, targets, mask, index))
    batch = inputs.shape[0]
    keys = task.component_keys(key)
    fix = int(task.fixation)
    seen = 0
    for i, slot in enumerate(task.tasks):
        sel = index == i
        seen += sel.sum()
        m_i, o_i, t_i = slot.sizes
        x, y, m = (np.asarray(a)[sel] for a in slot.task.sample(keys[i], batch))
        assert x.shape == (sel.sum(), t_i, m_i)
        cols = np.asarray(slot.channels) + fix
        np.testing.assert_array_equal(inputs[sel][:, :t_i, cols], x)
        others = np.setdiff1d(np.arange(fix, fix + task.n_stimulus), cols)
        assert not inputs[sel][:, :, others].any()  # the other stimulus channels are 0
        rules = inputs[sel][:, :t_i, fix + task.n_stimulus :]
        np.testing.assert_array_equal(rules, np.broadcast_to(np.eye(len(task.tasks))[i], rules.shape))
        assert not inputs[sel][:, t_i:].any()  # padding: no input at all
        np.testing.assert_array_equal(targets[sel][:, :t_i, :o_i], y)
        np.testing.assert_array_equal(mask[sel][:, :t_i, :o_i], m)
        assert not targets[sel][:, t_i:].any() and not mask[sel][:, t_i:].any()
        assert not targets[sel][:, :, o_i:].any() and not mask[sel][:, :, o_i:].any()
        if task.fixation:  # 1 until the first non-zero target
            onset = np.argmax(np.any(y != 0, axis=2), axis=1)
            expected = (np.arange(t_i)[None] < onset[:, None]).astype(np.float32)
            np.testing.assert_array_equal(inputs[sel][:, :t_i, 0], expected)
            if isinstance(slot.task, GoConfig):  # the Go task's own fixation cue is the same
                own = dataclasses.replace(slot.task, fixation_input=True).sample(keys[i], batch)[0]
                np.testing.assert_array_equal(inputs[sel][:, :t_i, 0], np.asarray(own)[sel][:, :, 0])
    assert seen == batch


def test_preset_sizes_and_labels():
    assert YANG == MultitaskConfig.yang19() == make_task("multitask")
    assert YANG.labels == ("go", "anti", "delay_go", "delay_anti", "dm1", "dm2", "ctx_dm", "dms", "dnms")
    assert (YANG.n_inputs, YANG.n_outputs, YANG.length, YANG.n_stimulus) == (16, 1, 75, 6)
    assert [YANG.rule_channel(i) for i in (0, 8)] == [7, 15]
    assert {"go", "dnms", "multitask"} <= set(TASKS)
    assert YANG.train_defaults() == {"learning_rate": 3e-3}


def test_preset_trials_are_the_components_trials():
    key = jax.random.key(3)
    inputs, targets, mask, index = YANG.sample_with_tasks(key, B)
    assert inputs.shape == (B, 75, 16) and targets.shape == mask.shape == (B, 75, 1)
    assert all(a.dtype == np.float32 for a in (inputs, targets, mask))
    assert len(set(np.asarray(index).tolist())) >= 8  # nearly every component drawn
    _check_slots(YANG, key, inputs, targets, mask, index)
    for a, b in zip(YANG.sample(key, B), (inputs, targets, mask)):
        np.testing.assert_array_equal(a, b)  # a function of the key
    assert not np.array_equal(YANG.sample(jax.random.key(4), B)[0], inputs)


def test_mixed_composition_pads_time_and_outputs():
    key = jax.random.key(0)
    inputs, targets, mask, index = MIXED.sample_with_tasks(key, 64)
    assert (MIXED.n_inputs, MIXED.n_outputs, MIXED.length) == (3 + 2, 2, 70)
    _check_slots(MIXED, key, inputs, targets, mask, index)


def test_the_test_set_is_every_components_test_set():
    inputs, targets, mask = YANG.test_set()
    index = YANG.test_task_index()
    sizes = [s.task.test_set()[0].shape[0] for s in YANG.tasks]
    assert inputs.shape[0] == sum(sizes) == 1120
    np.testing.assert_array_equal(np.bincount(index), sizes)
    for i, slot in enumerate(YANG.tasks):
        m_i, o_i, t_i = slot.sizes
        x, y, m = (np.asarray(a) for a in slot.task.test_set())
        sel = index == i
        np.testing.assert_array_equal(np.asarray(inputs)[sel][:, :t_i, np.asarray(slot.channels) + 1], x)
        np.testing.assert_array_equal(np.asarray(targets)[sel][:, :t_i, :o_i], y)
        np.testing.assert_array_equal(np.asarray(mask)[sel][:, :t_i, :o_i], m)
    labels, names = YANG.trial_groups(targets, mask)
    np.testing.assert_array_equal(labels, index)
    assert names == YANG.labels


def test_per_task_scores_are_the_components_scores():
    inputs, targets, mask = YANG.test_set()
    index = YANG.test_task_index()
    rng = np.random.default_rng(0)
    # member 0 answers right on every task but dm2, member 1 at random, member 2 right everywhere
    outputs = rng.normal(size=(3, *targets.shape)).astype(np.float32)
    outputs[0] = np.asarray(targets) * (index != 5)[:, None, None]
    outputs[2] = np.asarray(targets) + 0.1 * outputs[1]
    scores = YANG.score(outputs, targets, mask)
    for i, slot in enumerate(YANG.tasks):
        _, o_i, t_i = slot.sizes
        x, y, m = slot.task.test_set()
        own = slot.task.score(outputs[:, index == i, :t_i, :o_i], y, m)
        assert own.keys() >= {"metric", "mse"}
        for k, v in own.items():
            np.testing.assert_array_equal(scores[f"{slot.label}/{k}"], v)
    solved = np.mean([[scores[f"{lab}/success"][k] for lab in YANG.labels] for k in range(3)], axis=1)
    np.testing.assert_array_equal(scores["metric"], solved)
    assert scores["metric"][0] == 8 / 9 and scores["metric"][2] == 1.0
    assert scores["success"].tolist() == [False, False, True]
    assert YANG.passes(scores["metric"]).tolist() == [False, False, True]
    np.testing.assert_allclose(scores["mse"], cj.tasks._task.masked_mse_np(outputs, targets, mask))
    # other trials: their components must be given
    with pytest.raises(ValueError, match="score_tasks"):
        YANG.score(outputs[:, :10], targets[:10], mask[:10])


def test_score_tasks_on_sampled_trials():
    key = jax.random.key(5)
    inputs, targets, mask, index = MIXED.sample_with_tasks(key, 64)
    outputs = np.random.default_rng(1).normal(size=(2, *targets.shape)).astype(np.float32)
    scores = MIXED.score_tasks(outputs, targets, mask, index)
    index = np.asarray(index)
    for i, slot in enumerate(MIXED.tasks):
        _, o_i, t_i = slot.sizes
        _, y, m = (np.asarray(a)[index == i] for a in slot.task.sample(MIXED.component_keys(key)[i], 64))
        own = slot.task.score(outputs[:, index == i, :t_i, :o_i], y, m)
        for k, v in own.items():
            np.testing.assert_array_equal(scores[f"{slot.label}/{k}"], v)
    with pytest.raises(ValueError, match="task_index"):
        MIXED.score_tasks(outputs, targets, mask, index[:3])


def test_the_mixture_weights_are_respected():
    n = 4096
    _, _, _, index = MIXED.sample_with_tasks(jax.random.key(1), n)
    freq = np.bincount(np.asarray(index), minlength=2) / n
    assert abs(freq[1] - 0.75) < 4 * np.sqrt(0.75 * 0.25 / n)
    zero = dataclasses.replace(MIXED, weights=(0.0, 1.0))
    assert set(np.asarray(zero.sample_with_tasks(jax.random.key(1), n)[3]).tolist()) == {1}
    _, _, _, index = YANG.sample_with_tasks(jax.random.key(2), n)  # uniform
    freq = np.bincount(np.asarray(index), minlength=9) / n
    assert np.all(np.abs(freq - 1 / 9) < 4 * np.sqrt(1 / 9 * 8 / 9 / n))


def test_to_dict_round_trips_through_json():
    for task in (YANG, MIXED, MultitaskConfig.yang19(weights=[1, 2, 3, 4, 5, 6, 7, 8, 9])):
        d = json.loads(json.dumps(task.to_dict()))
        assert task_from_dict("multitask", d) == task
    assert MIXED.to_dict()["tasks"][1] == {
        "task": "dms",
        "options": DelayedMatchConfig().to_dict(),
        "label": "dms",
        "channels": [2, 1],
    }
    with pytest.raises(ValueError, match="unknown"):
        MultitaskConfig.from_dict({**MIXED.to_dict(), "colour": 1})


def test_protocol():
    for task in (YANG, MIXED, GoConfig(), DelayedNonMatchConfig()):
        check_task(task)
        fp = task.fixed_point_inputs()
        assert fp.ndim == 2 and fp.shape[1] == task.n_inputs
        assert task.hold_steps() >= 1 and task.readout_tolerance() > 0
    fp = YANG.fixed_point_inputs()
    assert fp.shape == (10, 16)  # one per component, two for the context task
    assert np.all(fp[:, 0] == 1) and np.all(fp[:, 7:].sum(axis=1) == 1)
    assert YANG.relevant_inputs() is None  # the match tasks name none
    go = MultitaskConfig(tasks=(GoConfig(), TaskSlot(PerceptualDMConfig(), channels=(1,))))
    np.testing.assert_array_equal(go.relevant_inputs(), [2, 2])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"tasks": ()}, TypeError, "`tasks`"),
        ({"tasks": PerceptualDMConfig()}, TypeError, "`tasks`"),
        ({"tasks": (PerceptualDMConfig(), "dms")}, TypeError, r"`tasks\[1\]`"),
        ({"tasks": (PerceptualDMConfig(), PerceptualDMConfig())}, ValueError, "distinct labels"),
        ({"tasks": (TaskSlot(PerceptualDMConfig(), channels=(2,)),)}, ValueError, r"channels \[0, 1\]"),
        ({"weights": (1.0,)}, ValueError, "`weights`.*one weight per task"),
        ({"weights": (1.0, -1.0) + (1.0,) * 7}, ValueError, "`weights`"),
        ({"weights": (0.0,) * 9}, ValueError, "`weights`"),
        ({"weights": (1.0, float("nan")) + (1.0,) * 7}, ValueError, r"`weights\[1\]`.*finite"),
        ({"weights": "uniform"}, TypeError, "`weights`"),
        ({"fixation": 1}, TypeError, "`fixation`"),
        ({"bank_size": 0}, ValueError, "`bank_size`"),
    ],
)
def test_bad_configs_are_refused_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        MultitaskConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"task": "dms"}, TypeError, "AbstractTask"),
        ({"task": PerceptualDMConfig(), "label": ""}, TypeError, "`label`"),
        ({"task": PerceptualDMConfig(), "label": "a/b"}, TypeError, "`label`"),
        ({"task": PerceptualDMConfig(), "channels": (0, 1)}, ValueError, "one shared channel per input"),
        ({"task": DelayedMatchConfig(), "channels": (1, 1)}, ValueError, "distinct"),
        ({"task": PerceptualDMConfig(), "channels": (-1,)}, ValueError, r"`channels\[0\]`"),
        ({"task": PerceptualDMConfig(), "channels": 0}, TypeError, "`channels`"),
    ],
)
def test_bad_slots_are_refused_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        TaskSlot(**kwargs)


# ---------------------------------------------------------------------------------------------- the added tasks


@pytest.mark.parametrize("anti", [False, True])
@pytest.mark.parametrize("memory", [False, True])
def test_go_trial_structure(anti, memory):
    task = GoConfig(anti=anti, memory=memory)
    assert task.label == ("delay_" if memory else "") + ("anti" if anti else "go")
    inputs, targets, mask = (np.asarray(a) for a in task.test_set())
    assert inputs.shape == (12, 75, 2) and targets.shape == mask.shape == (12, 75, 1)
    t = np.arange(task.length)
    for b in range(12):
        direction, shift = (1.0, -1.0)[b % 2], b // 2
        on = task.fixation + shift
        go = on + task.stimulus + task.delay
        off = on + task.stimulus if memory else task.length
        np.testing.assert_array_equal(inputs[b, :, 0], t < go)  # the fixation cue goes off at the response
        np.testing.assert_array_equal(inputs[b, :, 1], np.where((t >= on) & (t < off), direction, 0.0))
        np.testing.assert_array_equal(targets[b, :, 0], np.where(t >= go, -direction if anti else direction, 0.0))
        np.testing.assert_array_equal(mask[b, :, 0], ~((t >= go) & (t < go + task.grace)))
    x, y, m = task.sample(jax.random.key(0), 32)
    assert x.shape == (32, 75, 2) and x.dtype == np.float32
    onsets = np.argmax(np.asarray(y)[:, :, 0] != 0, axis=1)
    assert np.all((onsets >= 50) & (onsets <= 55))
    np.testing.assert_array_equal(np.asarray(x)[:, :, 0], np.arange(75)[None] < onsets[:, None])
    # without its fixation input: the stimulus channel alone, the same trials
    bare = dataclasses.replace(task, fixation_input=False)
    assert bare.n_inputs == 1 and bare.relevant_inputs().tolist() == [0]
    np.testing.assert_array_equal(bare.sample(jax.random.key(0), 32)[0], np.asarray(x)[:, :, 1:])


def test_go_tasks_are_refused_by_name():
    with pytest.raises(TypeError, match="`anti`"):
        GoConfig(anti="yes")
    with pytest.raises(ValueError, match="`grace`"):
        GoConfig(grace=20)
    with pytest.raises(ValueError, match="`noise_std`.*finite"):
        GoConfig(noise_std=float("inf"))


def test_dnms_is_dms_with_the_answer_reversed():
    key = jax.random.key(7)
    (x0, y0, m0), (x1, y1, m1) = DelayedMatchConfig().sample(key, 32), DelayedNonMatchConfig().sample(key, 32)
    np.testing.assert_array_equal(x0, x1)
    np.testing.assert_array_equal(m0, m1)
    np.testing.assert_array_equal(y1, -np.asarray(y0))
    assert not np.signbit(np.asarray(y1)[np.asarray(y1) == 0]).any()  # +0, not -0
    assert DelayedNonMatchConfig().test_set()[0].shape == (24, 70, 2)


def test_existing_tasks_are_unchanged():
    """The components are the registered tasks themselves: the preset's decision and memory components are the
    default configs (their trials are tests/test_tasks.py's)."""
    slots = {s.label: s.task for s in YANG.tasks}
    assert slots["dm1"] == slots["dm2"] == PerceptualDMConfig() and slots["ctx_dm"] == ContextDMConfig()
    assert slots["dms"] == DelayedMatchConfig()


# ---------------------------------------------------------------------------------------------- NeuroGym, training


def test_a_neurogym_component_is_drawn_from_a_bank():
    pytest.importorskip("neurogym")
    env = cj.NeurogymTask("GoNogo-v0")
    task = MultitaskConfig(tasks=(env, PerceptualDMConfig()), bank_size=64, fixation=False)
    key = jax.random.key(0)
    inputs, targets, mask, index = jax.jit(task.sample_with_tasks, static_argnums=1)(key, 32)
    bank = env.dataset(jax.random.key(task.bank_seed), 64)
    rows = np.asarray(jax.random.randint(task.component_keys(key)[0], (32,), 0, 64))
    sel = np.asarray(index) == 0
    m_i, o_i, t_i = task.tasks[0].sizes
    np.testing.assert_array_equal(np.asarray(inputs)[sel][:, :t_i, :m_i], np.asarray(bank[0])[rows[sel]])
    np.testing.assert_array_equal(np.asarray(targets)[sel][:, :t_i, :o_i], np.asarray(bank[1])[rows[sel]])
    assert task_from_dict("multitask", json.loads(json.dumps(task.to_dict()))) == task


def test_a_short_training_run_lowers_the_loss():
    task = MultitaskConfig(
        tasks=(GoConfig(fixation_input=False), TaskSlot(GoConfig(fixation_input=False, anti=True), channels=(0,)))
    )
    ens = cj.EnsembleConfig(members=2, units=32, inputs=task.n_inputs, outputs=task.n_outputs)
    trainer = cj.EnsembleTrainer(ens, cj.TrainConfig(steps=60, steps_per_call=30, learning_rate=1e-2), task)
    state, losses = trainer.train(trainer.init(), progress=cj.NoProgress())
    losses = np.asarray(losses)
    assert losses.shape[0] == 60 and np.all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    outputs = cj.ensemble_outputs(state.model, task.test_set()[0])
    scores = task.score(np.asarray(outputs), *task.test_set()[1:])
    assert scores["go/accuracy"].shape == scores["metric"].shape == (2,)
