"""The behavioural memory check (`memory_check`) on networks whose answer is known in closed form: decoupled
bistable tanh units (attractors), a linear unit with multiplier exactly 1 (a line attractor: perturbations
persist), a tanh unit held at its unstable point 0 (perturbations grow), and a slowly leaking linear unit
(the late ratio is `λ^(H/2)` and the readout drifts), and linear units of known leaks (the memory lifetimes
`ceil(ln(1 − τ/z0) / ln λ)`). Every network has N = 3 units, M = O = 3, `a = 1`."""

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

    def f32(a):
        return jnp.asarray(a, jnp.float32)

    return eqx.tree_at(
        lambda m: (m.W_rec, m.W_in, m.b, m.W_out, m.b_out),
        model,
        (f32(W_rec), f32(W_in), jnp.zeros(N), f32(W_out), jnp.zeros(N)),
    )


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
    assert np.any(moved) and np.all(~c.holds[1][moved])
    # ... but every one of them for more than a test trial: long-lived (lifetimes: test_lifetime_...)
    assert np.all(c.lifetime[1] >= c.trial_steps) and c.verdict[1] == "long-lived"


def test_lstm_perturbs_and_reports_the_full_state():
    model = cj.LSTM(N, 4, N, key=jax.random.key(1))
    c = cj.memory_check(model, TASK, horizon=0.1, n_perturbations=2)
    inputs, _, _ = TASK.test_set()
    full = np.asarray(model.full_states(inputs[0]))  # (T, 2·4): [h, c]
    _, step, _, label, _ = hold_ends(inputs, TASK.test_set()[1], np.zeros(N), readouts=TASK.memory_readouts())
    last = [step[label == i].max() for i in range(8)]  # equally long holds: the latest
    assert c.states.shape == (1, 8, 8)
    np.testing.assert_allclose(c.states[0], full[last], atol=1e-6)
    assert c.horizon_steps == 116 and set(c.verdict) <= {
        "attractors",
        "marginal",
        "unstable",
        "long-lived",
        "short-lived",
    }


def test_repr_and_to_dict(tanh_check):
    text = repr(tanh_check)
    assert "MemoryCheck" in text and "attractors" in text and "unstable" in text
    d = tanh_check.to_dict()
    assert d["verdict"] == ["attractors", "unstable"] and d["horizon_steps"] == 11600
    assert np.asarray(d["response"]).shape == (2, 8)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"horizon": 0}, "horizon"),
        ({"n_perturbations": 0}, "n_perturbations"),
        ({"scale": -1.0}, "scale"),
        ({"threshold": 0.0}, "threshold"),
        ({"min_hold": 0}, "min_hold"),
        ({"key": 3}, "key"),
        ({"min_hold": 500}, "no hold"),
    ],
)
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
    ensemble = cj.stack_members(
        [
            network(np.diag(W_DIAG), 2 * np.eye(N), np.diag(1 / H_STAR)),
            network(np.diag(W_DIAG), np.diag([0.0, 2.0, 2.0]), np.diag(1 / H_STAR)),
        ]
    )
    h0 = jax.random.uniform(jax.random.key(0), (2, 64, N), minval=-1, maxval=1)
    fp = cj.find_fixed_points(ensemble, np.zeros(N), h0, cj.FixedPointConfig(restarts=0, complete=False))
    result = cj.analyze(ensemble, TASK, fixed_points=fp, robustness=False, seed=1)
    assert [r["memory check"] for r in result.rows()] == ["attractors", "unstable"]
    assert result.to_dict()["memory_check"]["verdict"] == ["attractors", "unstable"]
    assert "Memory check" in result.markdown() and "1 attractors, 1 unstable" in result.markdown()
    # another seed draws other directions; the analytic answer is the same
    np.testing.assert_array_equal(result.memory_check.response, tanh_check.response)


LEAKS = (1 - 1e-3, 1 - 3e-4, 1 - 1e-4)  # multipliers of unit 0: memories that last shorter to longer


@pytest.fixture(scope="module")
def leak_check():
    """Three members whose unit 0 leaks at the multipliers `LEAKS` (the others `0.5`), read out as `z = h`."""
    members = [network(np.diag([lam, 0.5, 0.5]), 0.05 * np.eye(N), np.eye(N), activation="linear") for lam in LEAKS]
    return cj.memory_check(cj.stack_members(members), TASK)


def analytic_lifetime(z0, lam, tau, horizon):
    """`h(t) = λ^t h(0)` read out as `z = h`: the readout's deviation `|z0| (1 − λ^t)` first reaches `τ` at
    `t = ceil(ln(1 − τ/|z0|) / ln λ)`; never (censored at the horizon) when `|z0| <= τ`."""
    z0 = np.abs(np.asarray(z0, np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.ceil(np.log(1 - tau / z0) / np.log(lam))
    return np.where(z0 > tau, np.minimum(t, horizon), horizon)


def test_lifetime_of_a_leaking_linear_unit_is_the_analytic_one(leak_check):
    c = leak_check
    assert c.trial_steps == 1160 and c.horizon_steps == 11600
    for k, lam in enumerate(LEAKS):
        expected = analytic_lifetime(c.states[k][:, 0], lam, c.tolerance, c.horizon_steps)
        lost = expected < c.horizon_steps
        assert np.any(lost)  # the memories held by unit 0 leak within the horizon
        np.testing.assert_allclose(c.lifetime[k][lost], expected[lost], rtol=0.05)
        assert np.all(c.holds[k] == (c.lifetime[k] == c.horizon_steps))  # censored exactly where it holds
        assert np.all(c.holds[k][~lost])
    np.testing.assert_allclose(c.lifetime_trials, c.lifetime / 1160)


def test_members_whose_memories_last_longer_get_longer_lifetimes(leak_check):
    c = leak_check
    reached = c.reached
    # each member's memories that leak (held by unit 0; the faster leak reaches fewer of them at all)
    medians = [np.median(c.lifetime[k][~c.holds[k]]) for k in range(3)]
    assert medians[0] < medians[1] < medians[2]
    assert medians[2] / medians[0] > 5  # leaks 10 times smaller: lifetimes about 10 times longer
    # the bands: the fastest leak loses a memory within one trial, the slower ones hold each for a trial
    assert c.verdict.tolist() == ["short-lived", "long-lived", "long-lived"]
    held = c.held_for_a_trial()
    assert held[0] < held[1] <= held[2] and np.all(held <= reached.sum(axis=1))
    rows = c.rows()
    assert [r["verdict"] for r in rows] == c.verdict.tolist()
    assert rows[0]["lifetime min"] == f"{c.lifetime[0].min() / 1160:.3g}" and rows[1]["lifetime median"]


def test_lifetimes_round_trip_and_an_old_dict_still_loads(leak_check, tanh_check):
    d = leak_check.to_dict()
    back = cj.MemoryCheck.from_dict(d)
    np.testing.assert_array_equal(back.lifetime, leak_check.lifetime)
    np.testing.assert_array_equal(back.reached, leak_check.reached)
    assert back.trial_steps == 1160 and back.verdict.tolist() == leak_check.verdict.tolist()
    assert back.rows() == leak_check.rows()
    assert d["held_for_a_trial"] == leak_check.held_for_a_trial().tolist()
    # an analysis.json written before the lifetimes: no lifetime, trial length or reached, verdicts as written
    old = {
        key: v
        for key, v in tanh_check.to_dict().items()
        if key not in ("lifetime", "trial_steps", "lifetime_trials", "held_for_a_trial", "reached")
    }
    old["verdict"] = ["attractors", "drifts"]
    back = cj.MemoryCheck.from_dict(old)
    assert back.lifetime is None and back.held_for_a_trial() is None and back.lifetime_trials is None
    assert "lifetime min" not in back.rows()[0] and "1 drifts" in repr(back)


def test_lifetime_figure(leak_check, tmp_path):
    import matplotlib.pyplot as plt

    from ctrnn_jax.analysis import plot_memory_lifetimes

    fig = plot_memory_lifetimes(leak_check)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "member" and "test trials of 1160 steps" in ax.get_ylabel()
    assert ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    n_held = int(np.sum(leak_check.holds & leak_check.reached))
    n_lost = int(np.sum(~leak_check.holds & leak_check.reached))
    assert f"held for the whole horizon (censored): {n_held}" in labels  # legends count what tables count
    assert f"lost within the horizon: {n_lost}" in labels
    assert not list(tmp_path.iterdir())  # nothing written without a path
    plot_memory_lifetimes(leak_check, tmp_path / "lifetimes")
    assert (tmp_path / "lifetimes.png").stat().st_size > 1000 and (tmp_path / "lifetimes.pdf").is_file()
    plt.close("all")
    with pytest.raises(ValueError, match="check"):
        plot_memory_lifetimes("not a check")
