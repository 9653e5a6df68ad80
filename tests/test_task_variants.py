"""Flip-flop variants of issue 18 (the binary/cube flip-flop with a start pulse, dense pulses) and the
weight penalties as per-member training controls: exact checks on small cases, the paper's task
unchanged, bad values refused."""

import dataclasses
import hashlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctrnn_jax import (
    EnsembleConfig,
    EnsembleTrainer,
    FlipFlopConfig,
    TrainConfig,
    make_train_step,
    step_key,
)
from ctrnn_jax.tasks._flipflop import _pulse_structure, _render_dense
from ctrnn_jax.training._train import weight_penalty

BINARY = dict(start_pulse=True, first_pulse_can_be_zero=False)


def _hash(*arrays) -> str:
    m = hashlib.sha256()
    for a in arrays:
        m.update(np.ascontiguousarray(np.asarray(a, np.float32)).tobytes())
    return m.hexdigest()[:16]


def _forward_fill(signs: np.ndarray) -> np.ndarray:
    """`(T,)` pulse signs -> the sign of the latest non-zero entry up to each step (0 before any)."""
    out, held = np.zeros_like(signs), 0.0
    for t, s in enumerate(signs):
        held = s if s != 0 else held
        out[t] = held
    return out


# -- the paper's task is unchanged ------------------------------------------------------------------------
def test_the_default_task_is_bit_for_bit_what_it_was():
    """Checksums recorded from main before the variants existed: a sample's pulses (noise-free inputs:
    the pulses never depend on `noise_std`), targets and mask, the 8-state test and validation sets and a
    data set."""
    config = FlipFlopConfig()
    _, targets, mask = config.sample(jax.random.key(0), 8)
    clean, clean_targets, _ = dataclasses.replace(config, noise_std=0.0).sample(jax.random.key(0), 8)
    np.testing.assert_array_equal(clean_targets, targets)
    assert _hash(clean, targets, mask) == "11a3d5b1be272370"
    assert _hash(*config.test_set()) == "4fab8eae7820e782"
    assert _hash(*config.validation_set()) == "adb983af27f60db4"
    other = FlipFlopConfig(first_pulse_can_be_zero=False, n_bits=2, length=200, noise_std=0.0)
    assert _hash(*other.dataset(jax.random.key(3), 5)) == "379f1cb036fed1c1"
    assert (config.start_pulse, config.pulses, config.pulse_prob) == (False, "paper", 0.2)


# -- the binary (cube) variant --------------------------------------------------------------------------
SMALL = dict(n_bits=2, length=40, width=3, delay=2, first_onset=(1, 4), gaps=(5, 6), gap_jitter=2, noise_std=0.0)


def test_start_pulse_moves_pulse_one_to_step_zero_and_keeps_the_other_draws():
    plain = FlipFlopConfig(**SMALL, first_pulse_can_be_zero=False)
    binary = dataclasses.replace(plain, start_pulse=True)
    for seed in range(5):
        onsets, signs = _pulse_structure(jax.random.key(seed), plain)
        b_onsets, b_signs = _pulse_structure(jax.random.key(seed), binary)
        np.testing.assert_array_equal(b_signs, signs)  # same signs, all ±1
        assert set(np.unique(np.asarray(b_signs))) <= {-1.0, 1.0}
        np.testing.assert_array_equal(b_onsets, onsets - onsets[:, :1])  # same gaps, pulse 1 at step 0
        assert np.all(np.asarray(b_onsets)[:, 0] == 0)


def test_binary_series_pulses_targets_and_mask():
    config = FlipFlopConfig(**SMALL, **BINARY)
    x, y, mask = (np.asarray(a) for a in config.sample(jax.random.key(7), 16))
    switch = config.width + config.delay  # 5: the start pulse's switch, the same for every bit
    assert set(np.unique(np.abs(x[:, :3]))) == {1.0}  # every bit pulses on steps 0..2 ...
    assert np.all(x[:, :3] == x[:, :1])  # ... with one sign
    assert {-1.0, 1.0} <= set(np.unique(x[:, 0]))  # both signs occur
    assert np.all(x[:, 3] == 0)
    assert np.all(y[:, :switch] == 0) and np.all(np.abs(y[:, switch:]) == 1)  # never 0 after the switch
    np.testing.assert_array_equal(y[:, switch], x[:, 0])  # the start pulse's sign
    np.testing.assert_array_equal(mask[:, :switch], 0.0)  # no "0" memory trained
    np.testing.assert_array_equal(mask[:, switch:], 1.0)
    for b in range(16):  # the flip-flop rule: the sign of the latest pulse, `delay` steps after it ends
        for c in range(2):
            starts = np.flatnonzero(np.diff(np.abs(x[b, :, c]), prepend=0) > 0)
            signs = np.zeros(40)
            for s in starts:
                if s + switch < 40:
                    signs[s + switch] = x[b, s, c]
            np.testing.assert_array_equal(y[b, :, c], _forward_fill(signs))
    _, yd, md = config.dataset(jax.random.key(7), 16)  # the data set: the same series and mask
    np.testing.assert_array_equal(yd, y)
    np.testing.assert_array_equal(md, mask)


def test_binary_test_and_validation_sets_mask_what_precedes_the_first_switch():
    config, paper = FlipFlopConfig(**BINARY), FlipFlopConfig()
    for made, ref, first_switch in (
        (config.test_set(), paper.test_set(), 70),
        (config.validation_set(), paper.validation_set(), 60),
    ):
        x, y, mask = (np.asarray(a) for a in made)
        np.testing.assert_array_equal(x, ref[0])  # the same series as the paper's task
        np.testing.assert_array_equal(y, ref[1])
        np.testing.assert_array_equal(mask[0, :first_switch], 0.0)
        np.testing.assert_array_equal(mask[0, first_switch:], 1.0)
        assert np.all(np.abs(y[mask == 1]) == 1)  # every scored target is a corner of the cube


# -- dense pulses -----------------------------------------------------------------------------------------
def test_dense_render_on_a_hand_made_case():
    slots = jnp.array([[1.0, 0.0, 0.0, -1.0, 1.0], [0.0, 0.0, -1.0, 0.0, 0.0]])
    x, y = _render_dense(slots, 2.0, 2, 1, 10)  # width 2, delay 1: slot k switches at 2(k+1) + 1
    np.testing.assert_array_equal(x.T, [[2, 2, 0, 0, 0, 0, -2, -2, 2, 2], [0, 0, 0, 0, -2, -2, 0, 0, 0, 0]])
    np.testing.assert_array_equal(y.T, [[0, 0, 0, 1, 1, 1, 1, 1, 1, -1], [0, 0, 0, 0, 0, 0, 0, -1, -1, -1]])


def test_dense_one_step_pulses_follow_golubs_rule():
    """Width 1, delay 0: a Bernoulli(p) pulse of random sign on every step and bit; the target is the
    sign of the latest pulse before the step (Golub's targets, one step later)."""
    config = FlipFlopConfig(pulses="dense", width=1, delay=0, length=60, noise_std=0.0, pulse_prob=0.3)
    x, y, mask = (np.asarray(a) for a in config.sample(jax.random.key(1), 8))
    assert set(np.unique(x)) == {-1.0, 0.0, 1.0} and np.all(mask == 1)
    for b in range(8):
        for c in range(3):
            np.testing.assert_array_equal(y[b, :, c], np.concatenate([[0.0], _forward_fill(x[b, :-1, c])]))
    long = dataclasses.replace(config, length=4000)
    xl = np.asarray(long.sample(jax.random.key(2), 4)[0])
    assert abs(np.mean(xl != 0) - 0.3) < 0.015  # 48000 draws: std 0.002
    assert abs(np.mean(xl[xl != 0] > 0) - 0.5) < 0.02


def test_dense_wide_pulses_sit_on_slots_and_start_pulse_masks():
    config = FlipFlopConfig(
        pulses="dense", width=4, delay=3, length=30, noise_std=0.0, pulse_prob=0.5, n_bits=2, **BINARY
    )
    x, y, mask = (np.asarray(a) for a in config.sample(jax.random.key(3), 8))
    blocks = x[:, :28].reshape(8, 7, 4, 2)  # the 7 whole slots of 4 steps
    assert np.all(blocks == blocks[:, :, :1])  # constant within a slot
    assert np.all(np.abs(x[:, 0]) == 1)  # the start pulse: slot 0 always pulses
    np.testing.assert_array_equal(mask[:, :7], 0.0)
    np.testing.assert_array_equal(mask[:, 7:], 1.0)
    assert np.all(np.abs(y[:, 7:]) == 1)
    for b in range(8):  # slot k switches at 4(k+1) + 3
        for c in range(2):
            signs = np.zeros(30)
            for k in range(7):
                if 4 * (k + 1) + 3 < 30:
                    signs[4 * (k + 1) + 3] = x[b, 4 * k, c]
            np.testing.assert_array_equal(y[b, :, c], _forward_fill(signs))


def test_the_dense_test_set_uses_the_dense_pulse_width():
    config = FlipFlopConfig(pulses="dense", width=1, delay=0)
    x, y, mask = (np.asarray(a[0]) for a in config.test_set())
    assert x.shape == (30 + 16 * 70 + 1, 3) and np.all(mask == 1)
    onsets = np.flatnonzero(x[:, 0])
    np.testing.assert_array_equal(onsets, 30 + 70 * np.arange(16))  # 1-step pulses
    assert np.all(y[:31] == 0) and np.all(y[31] == 1)  # switches the step after the pulse
    held = {tuple(v) for v in y[31:]}
    assert len(held) == 8


# -- bad values, serialisation, the command line ----------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(pulses="sparse"), ValueError, "pulses"),
        (dict(pulse_prob=0.0), ValueError, r"pulse_prob.*\(0, 1\]"),
        (dict(pulse_prob=1.5), ValueError, "pulse_prob"),
        (dict(pulse_prob="0.2"), TypeError, "pulse_prob"),
        (dict(start_pulse=1), TypeError, "start_pulse"),
        (dict(start_pulse=True), ValueError, "first_pulse_can_be_zero=False"),
        (dict(pulses="dense", length=40, width=20, delay=20), ValueError, "width \\+ delay"),
        (dict(length=40, width=20, delay=20, first_onset=(10, 20), **BINARY), ValueError, "width \\+ delay"),
    ],
)
def test_bad_variant_values_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        FlipFlopConfig(**kwargs)


def test_start_pulse_needs_no_room_before_pulse_one():
    # the paper's `first_onset[0] + width + delay < length` does not bind a start pulse at step 0
    FlipFlopConfig(length=45, width=20, delay=20, first_onset=(10, 20), **BINARY)
    with pytest.raises(ValueError, match="first_onset"):
        FlipFlopConfig(length=45, width=20, delay=20, first_onset=(10, 20))


def test_variant_fields_serialise_and_old_dicts_read_as_the_paper_task():
    config = FlipFlopConfig(pulses="dense", pulse_prob=0.5, width=1, delay=0, **BINARY)
    d = json.loads(json.dumps(config.to_dict()))
    assert d["pulses"] == "dense" and d["pulse_prob"] == 0.5 and d["start_pulse"] is True
    assert FlipFlopConfig.from_dict(d) == config
    old = {k: v for k, v in FlipFlopConfig().to_dict().items() if k not in ("start_pulse", "pulses", "pulse_prob")}
    assert FlipFlopConfig.from_dict(old) == FlipFlopConfig()


def test_the_command_line_sets_the_variants_and_the_weight_penalties(capsys):
    from ctrnn_jax._cli import build_parser, config_from_args

    args = build_parser().parse_args(
        [
            "train",
            "--members",
            "2",
            "--pulses",
            "dense",
            "--pulse-prob",
            "0.3",
            "--width",
            "1",
            "--delay",
            "0",
            "--start-pulse",
            "--no-first-pulse-can-be-zero",
            "--l2",
            "0.01,0",
            "--weight-l1",
            "0.002",
        ]
    )
    config, _ = config_from_args(args)
    assert config.task == FlipFlopConfig(pulses="dense", pulse_prob=0.3, width=1, delay=0, **BINARY)
    assert config.train.weight_l2 == (0.01, 0.0) and config.train.weight_l1 == 0.002
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    shown = capsys.readouterr().out
    for option in ("--pulses {paper,dense}", "--pulse-prob X", "--start-pulse", "--l2 X|X,...", "--weight-l1 X|X,..."):
        assert option in shown
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--pulses", "sparse"])


# -- weight penalties as per-member training controls -----------------------------------------------------
def test_the_weight_penalty_gradients_are_the_analytic_ones():
    w, u, b = jnp.array([[0.5, -1.0], [2.0, 0.25]]), jnp.arange(6.0).reshape(3, 2) - 2.5, jnp.array([1.0, -3.0])
    params = {"W_rec": w, "W_out": u, "b": b}
    l1, l2 = jnp.float32(0.03), jnp.float32(0.2)
    value = jax.jit(weight_penalty)(params, l1, l2)
    np.testing.assert_allclose(
        value, 0.03 * (np.mean(np.abs(w)) + np.mean(np.abs(u))) + 0.2 * (np.mean(w**2) + np.mean(u**2)), rtol=1e-6
    )
    g = jax.grad(weight_penalty)(params, None, l2)  # d/dW l2·mean(W²) = 2·l2·W / W.size
    np.testing.assert_allclose(g["W_rec"], 2 * 0.2 * w / 4, rtol=1e-6)
    np.testing.assert_allclose(g["W_out"], 2 * 0.2 * u / 6, rtol=1e-6)
    np.testing.assert_array_equal(g["b"], 0.0)  # never a bias
    g1 = jax.grad(weight_penalty)(params, l1, None)
    np.testing.assert_allclose(g1["W_out"], 0.03 * np.sign(u) / 6, rtol=1e-6)
    assert float(weight_penalty(params, None, None)) == 0.0 and float(weight_penalty(params, 0.0, 0)) == 0.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(weight_l2=-0.1), r"weight_l2.*\[0.0, inf\)"),
        (dict(weight_l2=(0.1, -0.1)), "weight_l2"),
        (dict(weight_l1=float("nan")), "weight_l1"),
        (dict(weight_l2=(0.1, 0.2, 0.3)), "one per member"),
    ],
)
def test_bad_weight_penalties_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs).hyper(2)
    with pytest.raises(TypeError, match="weight_l2"):
        TrainConfig(weight_l2="0.1")


def test_per_member_l2_trains_each_member_as_its_own_scalar_run():
    """weight_l2 = (0, 0.05, 0, 0.05): members 0 and 2 train bit for bit as without any penalty (the
    penalty-free step, the default's), members 1 and 3 as with weight_l2 = 0.05 for everyone; and the
    penalty does act. (4 members: with 2, `step_key` fails on the 2 test devices, the run key's data being
    sharded like a member axis.)"""
    task = FlipFlopConfig(length=16, first_onset=(1, 3), gaps=(4,), gap_jitter=2, width=2, delay=1, n_bits=2)
    ens = EnsembleConfig(members=4, units=4, inputs=2, outputs=2)
    base = TrainConfig(steps=2, batch_size=2, steps_per_call=1)

    def run(train):
        step = jax.jit(make_train_step(ens, train, task))
        state = EnsembleTrainer(ens, train, task).init()
        losses = []
        for _ in range(2):
            state, metrics = step(state, step_key(state))
            losses.append(np.asarray(metrics["loss"]))
        return state.model, np.stack(losses)

    m_mixed, l_mixed = run(dataclasses.replace(base, weight_l2=(0.0, 0.05, 0.0, 0.05)))
    m_none, l_none = run(base)
    m_all, l_all = run(dataclasses.replace(base, weight_l2=0.05))
    for k, (m_ref, l_ref) in enumerate(2 * ((m_none, l_none), (m_all, l_all))):
        np.testing.assert_array_equal(l_mixed[:, k], l_ref[:, k])
        for a, b in zip(jax.tree_util.tree_leaves(m_mixed), jax.tree_util.tree_leaves(m_ref)):
            np.testing.assert_array_equal(np.asarray(a)[k], np.asarray(b)[k])
    assert np.all(l_all[:, 1::2] > l_none[:, 1::2])  # the penalty is in members 1 and 3's loss
