"""The behavioural memory check (`memory_check`) on networks whose answer is known in closed form: decoupled
bistable tanh units (attractors), a linear unit with multiplier exactly 1 (a line attractor: perturbations
persist), a tanh unit held at its unstable point 0 (perturbations grow), and a slowly leaking linear unit
(the late ratio is `λ^(H/2)` and the readout drifts). Every network has N = 3 units, M = O = 3, `a = 1`."""

import math
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _analytic import H_STAR, W_DIAG  # tests/_analytic.py

import ctrnn_jax as cj
from ctrnn_jax.dynamics._behaviour import hold_ends

N = 3
TASK = cj.FlipFlopConfig(width=5, delay=5)  # test set: 16 pulses of 5 steps, T = 1160
SLOW = 1 - 3e-4  # the leaky linear unit's multiplier


def network(W_rec, W_in, W_out, activation="tanh"):
    model = cj.CTRNN(N, N, N, key=jax.random.key(0), activation=activation)
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    return eqx.tree_at(lambda m: (m.W_rec, m.W_in, m.b, m.W_out, m.b_out), model,
                       (f32(W_rec), f32(W_in), jnp.zeros(N), f32(W_out), jnp.zeros(N)))


@pytest.fixture(scope="module")
def tanh_check():
    """Member 0: bistable units `diag(1.5, 2, 3)` read out as `h_i / h_i*` (the cube's corners); member 1: the
    same with unit 0 cut from its input, so it stays at its unstable point 0."""
    readout = np.diag(1 / H_STAR)
    bistable = network(np.diag(W_DIAG), 2 * np.eye(N), readout)
    saddle = network(np.diag(W_DIAG), np.diag([0.0, 2.0, 2.0]), readout)
    return cj.memory_check(cj.stack_members([bistable, saddle]), TASK)


@pytest.fixture(scope="module")
def linear_check():
    """Member 0: `diag(1, 0.5, 0.5)` (unit 0 integrates its input: a line attractor); member 1: the same with
    unit 0 leaking, multiplier `SLOW`."""
    line = network(np.diag([1.0, 0.5, 0.5]), 0.05 * np.eye(N), np.eye(N), activation="linear")
    leak = network(np.diag([SLOW, 0.5, 0.5]), 0.05 * np.eye(N), np.eye(N), activation="linear")
    return cj.memory_check(cj.stack_members([line, leak]), TASK)


def test_holds_of_the_flipflop_test_set():
    inputs, targets, _ = TASK.test_set()
    trial, step, length, label, labels = hold_ends(inputs, targets, np.zeros(N), readouts=TASK.memory_readouts())
    # 16 pulses every 70 steps from step 30: each hold ends just before the next pulse, the last at the end
    assert step.tolist() == [29 + 70 * i for i in range(1, 16)] + [1159]
    assert length.tolist() == [65] * 15 + [75] and np.all(trial == 0)
    assert np.array_equal(labels[label], np.asarray(targets)[0, step])
    assert np.array_equal(np.bincount(label, minlength=8), [2] * 8)  # every corner twice
    # without memory readouts the zero target before the first pulse is a hold too
    _, step, _, label, labels = hold_ends(inputs, targets, np.zeros(N))
    assert step[0] == 29 and len(labels) == 9 and np.all(labels[label[0]] == 0)
    # a target that changes in the last min_hold steps of a rest is no hold
    assert len(hold_ends(inputs, targets, np.zeros(N), min_hold=71)[0]) == 0


def test_bistable_units_are_attractors_and_the_saddle_unstable(tanh_check):
    c = tanh_check
    assert c.horizon_steps == 10 * 1160 and c.states.shape == (2, 8, N)
    assert np.array_equal(c.labels, TASK.memory_readouts())
    # member 0 sits at the analytic attractor of each corner and its readout is the corner
    np.testing.assert_allclose(c.states[0], c.labels * H_STAR, atol=1e-5)
    assert np.all(c.start_error[0] < 1e-4) and np.all(c.drift[0] < 1e-4)
    assert np.all(c.response[0] == "shrink") and c.verdict[0] == "attractors"
    assert np.all(c.ratio[0] < 0.5) and np.all(c.growth[0] < 0.5)
    # member 1: unit 0 stays exactly at 0 (the readout holds) but perturbations leave for ±h*
    assert np.all(c.states[1][:, 0] == 0) and np.all(c.holds[1])
    assert np.all(c.response[1] == "grow") and c.verdict[1] == "unstable"
    assert np.all(c.growth[1] > 0.1 * H_STAR[0] / c.epsilon[1])  # grown to the attractor's scale


def test_line_attractor_persists_and_a_leak_shrinks_at_the_predicted_rate(linear_check):
    c = linear_check
    assert np.all(c.holds[0]) and np.all(c.drift[0] < 1e-5)  # multiplier exactly 1: nothing moves
    assert np.all(c.response[0] == "persist") and c.verdict[0] == "marginal"
    np.testing.assert_allclose(c.ratio[0], 1.0, rtol=1e-3)  # the part along the line survives whole
    assert np.all(c.growth[0] <= 1 + 1e-3)
    # the leak: the late window is H/2 steps, over which the slow mode loses SLOW^(H/2) = e^-1.74
    expected = SLOW ** (c.horizon_steps // 2)
    np.testing.assert_allclose(c.ratio[1], expected, rtol=5e-2)  # float32 round-off of the two trajectories
    assert expected < 0.5 and np.all(c.response[1] == "shrink")
    assert c.band == pytest.approx(math.log(2) / 5800) and 1 - SLOW > c.band
    # the readout of unit 0 leaks away over the horizon: the states that held a value drift
    moved = np.abs(c.states[1][:, 0]) > 0.2
    assert np.any(moved) and np.all(~c.holds[1][moved]) and c.verdict[1] == "drifts"


def test_lstm_perturbs_and_reports_the_full_state():
    model = cj.LSTM(N, 4, N, key=jax.random.key(1))
    c = cj.memory_check(model, TASK, horizon=0.1, n_perturbations=2)
    inputs, _, _ = TASK.test_set()
    full = np.asarray(model.full_states(inputs[0]))  # (T, 2·4): [h, c]
    _, step, _, label, _ = hold_ends(inputs, TASK.test_set()[1], np.zeros(N), readouts=TASK.memory_readouts())
    last = [step[label == i].max() for i in range(8)]  # equally long holds: the latest
    assert c.states.shape == (1, 8, 8)
    np.testing.assert_allclose(c.states[0], full[last], atol=1e-6)
    assert c.horizon_steps == 116 and set(c.verdict) <= {"attractors", "marginal", "unstable", "drifts"}


def test_repr_and_to_dict(tanh_check):
    text = repr(tanh_check)
    assert "MemoryCheck" in text and "attractors" in text and "unstable" in text
    d = tanh_check.to_dict()
    assert d["verdict"] == ["attractors", "unstable"] and d["horizon_steps"] == 11600
    assert np.asarray(d["response"]).shape == (2, 8)


@pytest.mark.parametrize("kwargs, name", [({"horizon": 0}, "horizon"), ({"n_perturbations": 0}, "n_perturbations"),
                                          ({"scale": -1.0}, "scale"), ({"threshold": 0.0}, "threshold"),
                                          ({"min_hold": 0}, "min_hold"), ({"key": 3}, "key"),
                                          ({"min_hold": 500}, "no hold")])
def test_bad_arguments_name_the_argument(kwargs, name):
    model = network(np.diag(W_DIAG), 2 * np.eye(N), np.eye(N))
    with pytest.raises((TypeError, ValueError), match=name):
        cj.memory_check(model, TASK, **kwargs)


def test_trained_flipflop_members_hold_attractors():
    """The repository's trained 3-bit CTRNNs (the finder recovers every corner as a stable point,
    `test_trained_flipflop.py`) hold every corner and forget every perturbation."""
    c = cj.memory_check(cj.load_npz(Path(__file__).parent / "data" / "flipflop_n64_k2.npz"), cj.FlipFlopConfig())
    assert c.horizon_steps == 11900 and c.states.shape == (2, 8, 64)
    assert np.all(c.start_error < 0.2) and np.all(c.holds)
    assert np.all(c.response == "shrink") and c.verdict.tolist() == ["attractors", "attractors"]


def test_analyze_reports_the_memory_check(tanh_check):
    ensemble = cj.stack_members([network(np.diag(W_DIAG), 2 * np.eye(N), np.diag(1 / H_STAR)),
                                 network(np.diag(W_DIAG), np.diag([0.0, 2.0, 2.0]), np.diag(1 / H_STAR))])
    h0 = jax.random.uniform(jax.random.key(0), (2, 64, N), minval=-1, maxval=1)
    fp = cj.find_fixed_points(ensemble, np.zeros(N), h0, cj.FixedPointConfig(restarts=0, complete=False))
    result = cj.analyze(ensemble, TASK, fixed_points=fp, robustness=False, seed=1)
    assert [r["memory check"] for r in result.rows()] == ["attractors", "unstable"]
    assert result.to_dict()["memory_check"]["verdict"] == ["attractors", "unstable"]
    assert "Memory check" in result.markdown() and "1 attractors, 1 unstable" in result.markdown()
    # another seed draws other directions; the analytic answer is the same
    np.testing.assert_array_equal(result.memory_check.response, tanh_check.response)
