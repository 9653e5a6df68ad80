"""Trainer options of issue #6: any task (masked loss), regularization, fixed weight groups."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctrnn_jax import EnsembleConfig, EnsembleTrainer, FlipFlopConfig, TrainConfig
from ctrnn_jax.tasks._decision import PerceptualDMConfig
from ctrnn_jax.tasks._task import masked_mse
from ctrnn_jax.training._train import trainable_filter

FLIP = FlipFlopConfig(length=24, first_onset=(1, 3), gaps=(5, 5), gap_jitter=3, width=3, delay=2)
ENS = EnsembleConfig(members=2, units=5, alpha=0.5)


def _first_batch(trainer, state, member):
    key = jax.random.wrap_key_data(state.key_data)
    return trainer.step.batch(jax.random.fold_in(key, state.step), state.step, member, None)


def test_masked_mse_ignores_masked_entries(getkey):
    out, tgt = jax.random.normal(getkey(), (2, 6, 3)), jax.random.normal(getkey(), (2, 6, 3))
    np.testing.assert_allclose(masked_mse(out, tgt, jnp.ones_like(out)), jnp.mean((out - tgt) ** 2), rtol=1e-6)
    mask = jnp.zeros_like(out).at[:, 2:4].set(1.0)
    garbage = out.at[:, :2].set(1e6)  # masked outputs do not count
    np.testing.assert_allclose(masked_mse(garbage, tgt, mask), jnp.mean((out - tgt)[:, 2:4] ** 2), rtol=1e-6)


def test_reported_loss_is_masked_mse_plus_penalties():
    """The first step's loss, recomputed by hand from the same batch: masked MSE on a decision
    task (where the mask matters) + rate L2 + weight L1 and L2 over the trained matrices."""
    task = PerceptualDMConfig()
    ens = EnsembleConfig(members=2, units=6, alpha=0.5, inputs=task.n_inputs, outputs=task.n_outputs)
    train = TrainConfig(
        steps=1, batch_size=3, steps_per_call=1, rate_l2=0.3, weight_l1=0.02, weight_l2=0.05, fixed=("W_in",)
    )
    trainer = EnsembleTrainer(ens, train, task, devices=jax.devices()[:1])
    state = trainer.init()
    _, losses = trainer.run_steps(state, 1)
    for k in range(2):
        x, y, mask = _first_batch(trainer, state, k)
        assert 0 < float(jnp.mean(mask)) < 1  # a real mask: fixation and grace steps differ
        m = jax.tree_util.tree_map(lambda a: a[k], state.model)
        hs = m.states(x)
        mats = [m.W_rec, m.W_out]  # W_in is fixed: not penalised
        expected = (
            masked_mse(m.readout(hs), y, mask)
            + 0.3 * jnp.mean(hs**2)
            + 0.02 * sum(jnp.mean(jnp.abs(w)) for w in mats)
            + 0.05 * sum(jnp.mean(w**2) for w in mats)
        )
        np.testing.assert_allclose(float(losses[0, k]), float(expected), rtol=1e-5)


def test_fixed_groups_stay_bit_for_bit():
    train = TrainConfig(steps=10, batch_size=4, steps_per_call=10, fixed=("W_rec", "W_in", "b"))
    trainer = EnsembleTrainer(ENS, train, FLIP)
    state0 = trainer.init()
    state, losses = trainer.run_steps(state0, 10)
    for name in ("W_rec", "W_in", "b", "alpha"):
        np.testing.assert_array_equal(np.asarray(getattr(state.model, name)), np.asarray(getattr(state0.model, name)))
    assert not np.array_equal(np.asarray(state.model.W_out), np.asarray(state0.model.W_out))
    assert float(jnp.mean(losses[-1])) < float(jnp.mean(losses[0]))  # the readout alone learns something


def test_fixed_rejects_unknown_names():
    model = jax.tree_util.tree_map(lambda a: a[0], EnsembleTrainer(ENS, TrainConfig(), FLIP).init().model)
    with pytest.raises(ValueError, match="`fixed` names unknown weights \\['W_hh'\\]"):
        trainable_filter(model, True, ("W_hh",))
    with pytest.raises(TypeError, match="`fixed`"):
        TrainConfig(fixed=(1,))
    with pytest.raises(ValueError, match="rate_l2"):
        TrainConfig(rate_l2=-1.0)


def test_trainer_takes_any_task_and_checks_its_sizes():
    task = PerceptualDMConfig()
    with pytest.raises(ValueError, match="perceptual_dm task has 1 inputs and 1 outputs"):
        EnsembleTrainer(ENS, TrainConfig(), task)
    with pytest.raises(TypeError, match="AbstractTask"):
        EnsembleTrainer(ENS, TrainConfig(), object())


def test_constraints_hold_after_training_steps():
    """Dale's law, sparse masks and no autapses, drawn from the config, enforced by the trainer."""
    ens = EnsembleConfig(members=2, units=10, alpha=0.5, dale=True, rec_density=0.5, in_density=0.7, autapses=False)
    trainer = EnsembleTrainer(ens, TrainConfig(steps=30, batch_size=4, steps_per_call=30, learning_rate=3e-2), FLIP)
    state0 = trainer.init()
    state, losses = trainer.run_steps(state0, 30)
    cons = trainer.constraints
    W, W0 = np.asarray(state.model.W_rec), np.asarray(state0.model.W_rec)
    sign, rec_mask = np.asarray(cons.sign), np.asarray(cons.rec_mask)
    assert not np.allclose(W, W0)  # it trained
    for k in range(2):
        assert np.all(W[k][rec_mask[k] == 0] == 0) and np.all(np.diag(W[k]) == 0)
        assert np.all(W[k] * sign[k][None, :] >= 0)  # column j has unit j's sign
        assert np.all(np.asarray(state.model.W_in)[k][np.asarray(cons.in_mask)[k] == 0] == 0)
        n_e = int(np.sum(sign[k] > 0))
        assert n_e == 8  # 80% of 10 units excitatory
    assert np.all(np.isfinite(np.asarray(losses)))
    # the E/I-balanced initialization: every row sums to 0, so no outlier eigenvalue
    np.testing.assert_allclose(W0.sum(axis=2), 0.0, atol=1e-5)
