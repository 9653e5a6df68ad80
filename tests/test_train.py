import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctrnn_jax import EnsembleConfig, EnsembleTrainer, FlipFlopConfig, NoProgress, TrainConfig, select_members

TASK = FlipFlopConfig(length=24, first_onset=(1, 3), gaps=(5, 5), gap_jitter=3, width=3, delay=2)
ENSEMBLE = EnsembleConfig(members=3, units=5, alpha=(1.0, 0.5, 0.25), gain=(1.0, 0.8, 1.2))
TRAIN = TrainConfig(
    steps=6,
    batch_size=4,
    steps_per_call=2,
    learning_rate=(1e-2, 3e-3, 1e-3),
    clip_norm=(1.0, 0.05, 10.0),
    noise_std=(0.05, 0.1, 0.2),
)


def member_config(ensemble, train, k):
    """Member `k`'s hyper-parameters as a one-member configuration."""

    def pick(value):
        return value[k] if isinstance(value, tuple) else value

    ensemble = dataclasses.replace(ensemble, members=1, alpha=pick(ensemble.alpha), gain=pick(ensemble.gain))
    train = dataclasses.replace(
        train, learning_rate=pick(train.learning_rate), clip_norm=pick(train.clip_norm), noise_std=pick(train.noise_std)
    )
    return ensemble, train


def params(model):
    return (model.W_rec, model.W_in, model.b, model.W_out, model.b_out, model.alpha)


# TRAIN: a batch and noise per member; SHARED: one batch for all, no noise, b not trained.
SHARED = dataclasses.replace(TRAIN, shared_batch=True, noise_std=0.0, train_bias=False)


@pytest.mark.parametrize("train", [TRAIN, SHARED], ids=["own-batches-noise", "shared-batch"])
def test_vmapped_members_train_as_if_alone(train, tree_allclose):
    trainer = EnsembleTrainer(ENSEMBLE, train, TASK)
    state0 = trainer.init()
    state, losses = trainer.run_steps(state0, 2)
    for k in range(3):
        alone = EnsembleTrainer(*member_config(ENSEMBLE, train, k), TASK)
        state_k, losses_k = alone.run_steps(select_members(state0, jnp.array([k])), 2)
        together = select_members(state, jnp.array([k]))
        np.testing.assert_allclose(losses_k[:, 0], losses[:, k], rtol=1e-5)
        assert tree_allclose(params(state_k.model), params(together.model), rtol=1e-5, atol=1e-6)
        assert tree_allclose(state_k.opt_state, together.opt_state, rtol=1e-4, atol=1e-8)
    assert not np.allclose(state.model.W_rec, state0.model.W_rec)  # they did train
    assert tree_allclose(state.model.alpha, state0.model.alpha, exact=True)  # alpha is not trained


def test_nonfinite_member_freezes_without_touching_the_others(tree_allclose):
    def run(learning_rate):
        trainer = EnsembleTrainer(ENSEMBLE, dataclasses.replace(TRAIN, learning_rate=learning_rate), TASK)
        states, losses = [trainer.init()], []
        for _ in range(4):
            state, loss = trainer.run_steps(states[-1], 1)
            states.append(state)
            losses.append(np.asarray(loss[0]))
        return states, np.stack(losses)

    states, losses = run((1e-3, 1e30, 1e-3))
    reference, reference_losses = run((1e-3, 1e-3, 1e-3))
    final = states[-1]
    assert final.frozen.tolist() == [False, True, False]
    step = int(final.frozen_step[1])
    assert final.frozen_step.tolist() == [-1, step, -1] and step >= 1
    assert np.all(np.isfinite(losses[:step, 1])) and not np.isfinite(losses[step, 1])
    blown_up = select_members(final, jnp.array([1]))
    assert all(np.all(np.isfinite(x)) for x in params(blown_up.model))
    assert np.max(np.abs(blown_up.model.W_out)) > 1e20
    # its parameters and optimizer state are those of the last finite step, and stay there
    for s in states[step:]:
        member = select_members(s, jnp.array([1]))
        assert tree_allclose((member.model, member.opt_state), (blown_up.model, blown_up.opt_state), exact=True)
    assert not tree_allclose(select_members(states[step - 1], jnp.array([1])).model, blown_up.model)
    # members 0 and 2 are exactly those of a run without the bad member
    for k in (0, 2):
        assert tree_allclose(
            select_members(final, jnp.array([k])), select_members(reference[-1], jnp.array([k])), exact=True
        )
        np.testing.assert_array_equal(losses[:, k], reference_losses[:, k])


def test_training_lowers_the_loss():
    task = FlipFlopConfig(length=60, first_onset=(1, 10), gaps=(10, 10), gap_jitter=5, width=3, delay=2)
    trainer = EnsembleTrainer(
        EnsembleConfig(members=2, units=32, alpha=1.0),
        TrainConfig(steps=150, batch_size=16, steps_per_call=50, learning_rate=5e-3),
        task,
    )
    state, losses = trainer.train(trainer.init(), progress=NoProgress())
    assert losses.shape == (150, 2) and int(state.step) == 150
    # about 10x in trials; ask for 4x
    assert np.all(losses[:3].mean(axis=0) > 4 * losses[-10:].mean(axis=0))


def test_train_bias_false_keeps_b_at_zero():
    trainer = EnsembleTrainer(ENSEMBLE, SHARED, TASK)
    state0 = trainer.init()
    state, _ = trainer.run_steps(state0, 2)
    np.testing.assert_array_equal(state.model.b, 0.0)
    np.testing.assert_array_equal(state.model.alpha, state0.model.alpha)
    assert not np.allclose(state.model.W_rec, state0.model.W_rec)


def test_steps_compile_once():
    trainer = EnsembleTrainer(ENSEMBLE, dataclasses.replace(TRAIN, steps=7), TASK)
    state = trainer.init()
    for _ in range(3):
        state, _ = trainer.run_steps(state, 2)
    assert trainer.trace_count == 1
    state, losses = trainer.train(state, until=12, progress=NoProgress())  # three more chunks of 2
    assert trainer.trace_count == 1 and losses.shape == (6, 3) and int(state.step) == 12
    state, losses = trainer.train(state, until=13, progress=NoProgress())  # a last chunk of 1
    assert trainer.trace_count == 2 and losses.shape == (1, 3) and int(state.step) == 13


def test_train_continues_from_the_state_step(tree_allclose):
    trainer = EnsembleTrainer(ENSEMBLE, TRAIN, TASK)
    whole, whole_losses = trainer.train(trainer.init(), progress=NoProgress())
    half, first = trainer.train(trainer.init(), until=4, progress=NoProgress())
    rest, second = trainer.train(half, progress=NoProgress())
    assert tree_allclose(whole, rest, exact=True)
    np.testing.assert_array_equal(whole_losses, np.concatenate([first, second]))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(steps=-1), ValueError, "steps"),
        (dict(steps=1.5), TypeError, "steps"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(learning_rate=-1.0), ValueError, "learning_rate"),
        (dict(learning_rate=(1e-2, -1e-3)), ValueError, "learning_rate"),
        (dict(clip_norm=0.0), ValueError, "clip_norm"),
        (dict(noise_std=-0.1), ValueError, "noise_std"),
        (dict(steps_per_call=0), ValueError, "steps_per_call"),
        (dict(dataset_size=4, batch_size=8), ValueError, "dataset_size"),
        (dict(lr_decay=-1.0), ValueError, "lr_decay"),
        (dict(adam_b1=1.0), ValueError, "adam_b1"),
        (dict(shared_batch=1), TypeError, "shared_batch"),
    ],
)
def test_train_config_rejects_bad_values(kwargs, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**kwargs)


def test_trainer_rejects_mismatched_configs():
    with pytest.raises(ValueError, match="flipflop task has 2 inputs.*`inputs`=3"):
        EnsembleTrainer(ENSEMBLE, TRAIN, dataclasses.replace(TASK, n_bits=2))
    with pytest.raises(ValueError, match="learning_rate.*length 3"):
        EnsembleTrainer(ENSEMBLE, dataclasses.replace(TRAIN, learning_rate=(1e-2, 1e-3)), TASK)
    with pytest.raises(TypeError, match="TrainConfig"):
        EnsembleTrainer(ENSEMBLE, dict(steps=1), TASK)
    trainer = EnsembleTrainer(ENSEMBLE, TRAIN, TASK)
    with pytest.raises(ValueError, match="n_steps"):
        trainer.run_steps(trainer.init(), 0)


def test_dataset_mode_visits_every_series_once_per_epoch():
    task = FlipFlopConfig(length=30, first_onset=(1, 5), gaps=(5, 5), gap_jitter=3, width=3, delay=2)
    trainer = EnsembleTrainer(
        EnsembleConfig(members=2, units=4), TrainConfig(steps=4, batch_size=4, dataset_size=16), task
    )
    inputs, targets, mask = trainer.data()
    assert inputs.shape == (16, 30, 3) and targets.shape == (16, 30, 3) and np.all(np.asarray(mask) == 1)
    key = jax.random.key(0)
    data = np.asarray(inputs)
    for member in (0, 1):
        seen = []
        for step in range(4):  # one epoch = 16 // 4 steps
            x, _, _ = trainer.step.batch(key, jnp.asarray(step), member, (inputs, targets, mask))
            for row in np.asarray(x):
                seen.append(int(np.flatnonzero(np.all(data == row, axis=(1, 2)))[0]))
        assert sorted(seen) == list(range(16))
    # training in data-set mode runs and keeps the members apart
    state, losses = trainer.train(trainer.init(), progress=NoProgress())
    assert losses.shape == (4, 2) and np.all(np.isfinite(losses)) and not np.allclose(losses[:, 0], losses[:, 1])
