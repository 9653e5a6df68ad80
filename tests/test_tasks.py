import collections
import dataclasses
import itertools
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctrnn_jax.tasks._decision import ContextDMConfig, PerceptualDMConfig
from ctrnn_jax.tasks._memory import DelayedMatchConfig, ParametricWMConfig
from ctrnn_jax.tasks._task import AbstractTask, check_task

TASKS = [PerceptualDMConfig(), ContextDMConfig(), DelayedMatchConfig(), ParametricWMConfig()]
IDS = [t.name for t in TASKS]
CLEAN = {t.name: dataclasses.replace(t, noise_std=0.0) for t in TASKS}
B = 32  # one batch size throughout: every (task, batch size) compiles once


def _runs(x):
    """(start, stop) of the runs of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], x.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _onset(targets):
    """Response onset of each trial `(B, T, 1)`: the first step with a non-zero target."""
    return np.argmax(np.asarray(targets)[:, :, 0] != 0, axis=1)


def _answers(targets):
    return np.sign(np.asarray(targets)[:, -1, 0])


def _check_structure(task, inputs, targets, mask):
    inputs, targets, mask = (np.asarray(a) for a in (inputs, targets, mask))
    T = task.length
    for b, r0 in enumerate(_onset(targets)):
        assert task.length - task.response - task.jitter <= r0 <= T - task.response
        # 0 before the response onset, a constant ±1 from it to the end of the trial.
        assert np.all(targets[b, :r0] == 0)
        assert np.all(np.abs(targets[b, r0:]) == 1)
        assert np.all(targets[b, r0:] == targets[b, -1])
        # The mask is 0 in the grace steps and 1 everywhere else.
        expected = np.ones((T, 1), np.float32)
        expected[r0 : r0 + task.grace] = 0
        np.testing.assert_array_equal(mask[b], expected)


@pytest.mark.parametrize("task", TASKS, ids=IDS)
def test_protocol_shapes_and_dtypes(task, getkey):
    check_task(task)
    assert isinstance(task, AbstractTask)
    inputs, targets, mask = task.sample(getkey(), B)
    T, M = task.length, task.n_inputs
    assert T <= 100 and task.n_outputs == 1
    assert inputs.shape == (B, T, M) and targets.shape == (B, T, 1) and mask.shape == (B, T, 1)
    assert all(a.dtype == jnp.float32 for a in (inputs, targets, mask))
    test = task.test_set()
    assert test[0].shape[1:] == (T, M) and test[1].shape[1:] == (T, 1)
    assert test[0].shape[0] == test[1].shape[0] == test[2].shape[0] <= 512
    assert all(a.dtype == jnp.float32 for a in test)
    fp = task.fixed_point_inputs()
    assert isinstance(fp, np.ndarray) and fp.ndim == 2 and fp.shape[1] == M


def test_task_names():
    assert [t.name for t in TASKS] == ["perceptual_dm", "context_dm", "dms", "parametric_wm"]


@pytest.mark.parametrize("task", TASKS, ids=IDS)
def test_sample_is_a_function_of_the_key(task, getkey):
    key = getkey()
    a, b = task.sample(key, B), task.sample(key, B)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = task.sample(getkey(), B)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("task", TASKS, ids=IDS)
def test_mask_and_targets_structure(task, getkey):
    _check_structure(task, *task.sample(getkey(), B))
    _check_structure(task, *task.test_set())


def test_jitter_moves_the_response_onset(getkey):
    task = CLEAN["dms"]
    onsets = set(_onset(task.sample(getkey(), B)[1]).tolist())
    assert len(onsets) > 1  # the range is checked in _check_structure


@pytest.mark.parametrize("task", TASKS, ids=IDS)
def test_noise_only_in_stimulus_epochs(task, getkey):
    key = getkey()
    noisy, clean = task.sample(key, B), CLEAN[task.name].sample(key, B)
    np.testing.assert_array_equal(noisy[1], clean[1])  # conditions do not depend on the noise
    np.testing.assert_array_equal(noisy[2], clean[2])
    n_evidence = 2 if task.name == "context_dm" else task.n_inputs
    stimulus = np.any(np.asarray(clean[0])[..., :n_evidence] != 0, axis=-1)  # (B, T)
    diff = np.asarray(noisy[0]) - np.asarray(clean[0])
    assert np.all(diff[~stimulus] == 0)
    assert np.all(diff[..., :n_evidence][stimulus] != 0)


def test_perceptual_dm_target_is_the_sign_of_the_evidence(getkey):
    task = CLEAN["perceptual_dm"]
    inputs, targets, _ = (np.asarray(a) for a in task.sample(getkey(), B))
    for x, r0, answer in zip(inputs[:, :, 0], _onset(targets), _answers(targets)):
        [(start, stop)] = _runs(x != 0)
        assert stop - start == task.stimulus and stop + task.delay == r0
        assert np.sign(x.sum()) == answer
        assert abs(x[start]) in task.coherences


def test_context_dm_target_is_the_sign_of_the_cued_stream(getkey):
    task = CLEAN["context_dm"]
    inputs, targets, _ = (np.asarray(a) for a in task.sample(getkey(), B))
    contexts = []
    for x, r0, answer in zip(inputs, _onset(targets), _answers(targets)):
        cue = x[0, 2:]
        assert sorted(cue) == [0, 1] and np.all(x[:, 2:] == cue[None])  # one-hot, whole trial
        context = int(np.argmax(cue))
        [(start, stop)] = _runs(x[:, 0] != 0)
        assert _runs(x[:, 1] != 0) == [(start, stop)] and stop + task.delay == r0
        assert np.sign(x[:, context].sum()) == answer
        contexts.append(context)
    assert set(contexts) == {0, 1}


def _items(x):
    """Sample and test item of a clean DMS trial `(T, 2)`, and the test epoch's end."""
    (s0, s1), (t0, t1) = _runs(np.any(x != 0, axis=1))
    return int(np.argmax(x[s0])), int(np.argmax(x[t0])), t1


def test_dms_target_is_match(getkey):
    task = CLEAN["dms"]
    inputs, targets, _ = (np.asarray(a) for a in task.sample(getkey(), B))
    pairs = set()
    for x, r0, answer in zip(inputs, _onset(targets), _answers(targets)):
        sample_item, test_item, end = _items(x)
        assert end == r0
        assert answer == (1 if sample_item == test_item else -1)
        pairs.add((sample_item, test_item))
    assert pairs == {(0, 0), (0, 1), (1, 0), (1, 1)}


def _frequencies(x):
    """f1, f2 (scaled) of a clean parametric-WM trial `(T,)`, and stimulus 2's end."""
    (a0, a1), (b0, b1) = _runs(x != 0)
    assert np.all(x[a0:a1] == x[a0]) and np.all(x[b0:b1] == x[b0])
    return x[a0], x[b0], b1


def test_parametric_wm_target_is_f1_greater_than_f2(getkey):
    task = CLEAN["parametric_wm"]
    inputs, targets, _ = (np.asarray(a) for a in task.sample(getkey(), B))
    grid = np.asarray(task.frequencies, np.float32) / max(task.frequencies)
    for x, r0, answer in zip(inputs[:, :, 0], _onset(targets), _answers(targets)):
        f1, f2, end = _frequencies(x)
        assert end == r0 and f1 != f2
        assert np.isclose(grid, f1).any() and np.isclose(grid, f2).any()
        assert np.sign(f1 - f2) == answer


def test_perceptual_dm_test_set():
    task = TASKS[0]
    noisy = task.test_set()
    for x, y in zip(noisy, task.test_set()):
        np.testing.assert_array_equal(x, y)
    inputs, targets, _ = (np.asarray(a) for a in CLEAN[task.name].test_set())
    np.testing.assert_array_equal(targets, np.asarray(noisy[1]))
    assert inputs.shape[0] == 2 * 4 * 32
    coherences = [x[x != 0][0] for x in inputs[:, :, 0]]
    assert collections.Counter(float(c) for c in coherences) == {
        float(np.float32(s * c)): 32 for c in task.coherences for s in (1, -1)
    }
    assert 0 not in coherences
    assert np.all(np.sign(coherences) == _answers(targets))
    assert len(set(_onset(targets).tolist())) == task.jitter + 1  # the jitter cycles
    # The ideal observer (sign of the summed evidence) reaches the documented ~0.97 > 0.9.
    evidence = np.asarray(noisy[0])[:, :, 0].sum(axis=1)
    assert 0.93 <= np.mean(np.sign(evidence) == _answers(targets)) < 1


def test_context_dm_test_set():
    task = TASKS[1]
    noisy = task.test_set()
    inputs, targets, _ = (np.asarray(a) for a in CLEAN[task.name].test_set())
    np.testing.assert_array_equal(targets, np.asarray(noisy[1]))
    assert inputs.shape[0] == 2 * 8 * 8 * 4
    conditions = [
        (int(np.argmax(x[0, 2:])), float(x[x[:, 0] != 0, 0][0]), float(x[x[:, 1] != 0, 1][0])) for x in inputs
    ]
    signed = [np.float32(s * c) for c in task.coherences for s in (1, -1)]
    expected = {(k, float(a), float(b)): 4 for k in range(2) for a in signed for b in signed}
    assert collections.Counter(conditions) == expected
    answers = _answers(targets)
    assert all(np.sign(c[1 + c[0]]) == r for c, r in zip(conditions, answers))
    assert sum(np.sign(a) != np.sign(b) for _, a, b in conditions) == inputs.shape[0] // 2
    # The ideal observer of the cued stream is above the default threshold.
    x = np.asarray(noisy[0])
    cued = np.where(x[:, :1, 2] > 0, x[:, :, 0], x[:, :, 1])
    assert np.mean(np.sign(cued.sum(axis=1)) == answers) >= 0.93


def test_dms_test_set():
    task = TASKS[2]
    inputs, targets, _ = (np.asarray(a) for a in task.test_set())
    assert inputs.shape[0] == 4 * 6
    trials = collections.Counter()
    for x, r0, answer in zip(inputs, _onset(targets), _answers(targets)):
        sample_item, test_item, _ = _items(x)
        assert answer == (1 if sample_item == test_item else -1)
        trials[(sample_item, test_item, int(r0))] += 1
    onsets = range(task.length - task.response - task.jitter, task.length - task.response + 1)
    assert trials == {(s, e, r): 1 for s in range(2) for e in range(2) for r in onsets}
    assert np.all(np.isin(inputs, [0.0, 1.0]))  # noise-free


def test_parametric_wm_test_set():
    task = TASKS[3]
    inputs, targets, _ = (np.asarray(a) for a in task.test_set())
    assert inputs.shape[0] == 7 * 6 * 6
    trials = collections.Counter()
    for x, r0, answer in zip(inputs[:, :, 0], _onset(targets), _answers(targets)):
        f1, f2, _ = _frequencies(x)
        assert np.sign(f1 - f2) == answer
        trials[(round(float(f1) * 34), round(float(f2) * 34), int(r0))] += 1
    onsets = range(task.length - task.response - task.jitter, task.length - task.response + 1)
    assert trials == {(int(a), int(b), r): 1 for a, b in itertools.permutations(task.frequencies, 2) for r in onsets}


@pytest.mark.parametrize("task", TASKS, ids=IDS)
def test_score(task, getkey):
    _, targets, mask = task.sample(getkey(), B)
    outputs = jnp.stack([targets, -targets, jnp.zeros_like(targets)])
    scores = task.score(outputs, targets, mask)
    np.testing.assert_array_equal(scores["metric"], [1, 0, 0])
    np.testing.assert_array_equal(scores["accuracy"], [1, 0, 0])
    np.testing.assert_array_equal(scores["success"], [True, False, False])
    assert scores["mse"][0] == 0 and scores["mse"][1] > 0
    # Half the trials right: fails at the default threshold, succeeds at 0.5.
    half = jnp.concatenate([targets[: B // 2], -targets[B // 2 :]])[None]
    assert not task.score(half, targets, mask)["success"][0]
    lenient = dataclasses.replace(task, success_accuracy=0.5)
    assert lenient.score(half, targets, mask)["success"][0]


def test_fixed_point_inputs():
    np.testing.assert_array_equal(PerceptualDMConfig().fixed_point_inputs(), np.zeros((1, 1)))
    np.testing.assert_array_equal(ContextDMConfig().fixed_point_inputs(), [[0, 0, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(DelayedMatchConfig().fixed_point_inputs(), np.zeros((1, 2)))
    np.testing.assert_array_equal(ParametricWMConfig().fixed_point_inputs(), np.zeros((1, 1)))
    # The context fixed-point inputs are the inputs of the fixation epoch of each context.
    inputs = np.asarray(CLEAN["context_dm"].test_set()[0])[:, 0]
    assert {tuple(x) for x in inputs} == {tuple(x) for x in ContextDMConfig().fixed_point_inputs()}


@pytest.mark.parametrize(
    "cls, kwargs, error, field",
    [
        (PerceptualDMConfig, {"stimulus": 0}, ValueError, "stimulus"),
        (PerceptualDMConfig, {"fixation": 1.5}, TypeError, "fixation"),
        (PerceptualDMConfig, {"coherences": (0.1, 0.0)}, ValueError, "coherences"),
        (PerceptualDMConfig, {"coherences": ()}, ValueError, "coherences"),
        (PerceptualDMConfig, {"coherences": 0.1}, TypeError, "coherences"),
        (PerceptualDMConfig, {"coherences": (0.1, 0.1)}, ValueError, "coherences"),
        (PerceptualDMConfig, {"noise_std": -0.1}, ValueError, "noise_std"),
        (PerceptualDMConfig, {"noise_std": float("nan")}, ValueError, "noise_std"),
        (PerceptualDMConfig, {"success_accuracy": 1.5}, ValueError, "success_accuracy"),
        (PerceptualDMConfig, {"grace": 20}, ValueError, "grace"),
        (ContextDMConfig, {"test_repeats": 0}, ValueError, "test_repeats"),
        (ContextDMConfig, {"jitter": -1}, ValueError, "jitter"),
        (ContextDMConfig, {"test_seed": True}, TypeError, "test_seed"),
        (ContextDMConfig, {"coherences": ("a",)}, TypeError, "coherences"),
        (DelayedMatchConfig, {"stimulus1": 0}, ValueError, "stimulus1"),
        (DelayedMatchConfig, {"delay": -1}, ValueError, "delay"),
        (DelayedMatchConfig, {"noise_std": "0.1"}, TypeError, "noise_std"),
        (DelayedMatchConfig, {"success_accuracy": 0.0}, ValueError, "success_accuracy"),
        (ParametricWMConfig, {"frequencies": (10.0,)}, ValueError, "frequencies"),
        (ParametricWMConfig, {"frequencies": (10.0, -4.0)}, ValueError, "frequencies"),
        (ParametricWMConfig, {"response": 0}, ValueError, "response"),
    ],
)
def test_validation(cls, kwargs, error, field):
    with pytest.raises(error, match=re.escape(f"`{field}")):
        cls(**kwargs)


@pytest.mark.parametrize("task", TASKS[:1], ids=IDS[:1])
def test_sample_argument_validation(task):
    with pytest.raises(ValueError, match="`batch_size`"):
        task.sample(jax.random.key(0), 0)
    with pytest.raises(TypeError, match="`batch_size`"):
        task.sample(jax.random.key(0), 2.0)
    with pytest.raises(TypeError, match="`key`"):
        task.sample(jax.random.PRNGKey(0), 2)
    with pytest.raises(ValueError, match="`key`"):
        task.sample(jax.random.split(jax.random.key(0), 2), 2)


@pytest.mark.parametrize(
    "task",
    [
        PerceptualDMConfig(coherences=[0.3, 0.05], jitter=0),
        ContextDMConfig(test_seed=7),
        DelayedMatchConfig(delay=11),
        ParametricWMConfig(frequencies=[8, 12.5, 30]),
    ],
    ids=IDS,
)
def test_dict_round_trip(task):
    d = task.to_dict()
    assert "name" not in d
    again = type(task).from_dict(json.loads(json.dumps(d)))
    assert again == task and hash(again) == hash(task)
    with pytest.raises(ValueError, match="bogus"):
        type(task).from_dict({**d, "bogus": 1})


@pytest.mark.parametrize("task", TASKS, ids=IDS)
def test_sample_under_jit(task, getkey):
    key = getkey()
    jitted = jax.jit(lambda k: task.sample(k, B))(key)
    for x, y in zip(jitted, task.sample(key, B)):
        np.testing.assert_allclose(x, y, atol=1e-6)


def test_sample_under_vmap(getkey):
    task = CLEAN["perceptual_dm"]
    keys = jax.random.split(getkey(), 2)
    batched = jax.vmap(lambda k: task.sample(k, B))(keys)
    for x, y in zip(batched, task.sample(keys[1], B)):
        np.testing.assert_allclose(x[1], y, atol=1e-6)
