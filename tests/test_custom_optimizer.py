"""Your own optimizer (issue #29): `optimizer=` in `EnsembleTrainer` and `make_train_step`, the built-in one
unchanged bit for bit, checkpoints and restarts with a user's optimizer, the trainer's refusal of a model that
contradicts its `EnsembleConfig`, and the reprs. The optimizers are defined here, outside the package."""

import dataclasses
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ctrnn_jax import (
    EnsembleConfig,
    EnsembleTrainer,
    FlipFlopConfig,
    NoProgress,
    TrainConfig,
    make_train_step,
    step_key,
)
from ctrnn_jax.io._serialisation import load_checkpoint, save_checkpoint
from ctrnn_jax.training._ensemble import make_ensemble
from ctrnn_jax.training._train import check_model, legacy_layouts, optimizer

TASK = FlipFlopConfig(length=24, first_onset=(1, 3), gaps=(5, 5), gap_jitter=3, width=3, delay=2)
ENSEMBLE = EnsembleConfig(members=4, units=6, alpha=(1.0, 0.5, 0.25, 0.5), gain=(1.0, 0.8, 1.2, 1.0))
# The run of `default_optimizer_before_29.npz`: per-member learning rates, clips and noise, every member restarted
# once (restart_ratio 0.01), so the update and the optimizer's init (at a restart) are both covered.
BEFORE = TrainConfig(
    steps=8,
    batch_size=4,
    steps_per_call=2,
    learning_rate=(1e-2, 3e-3, 1e-3, 2e-2),
    clip_norm=(1.0, 0.05, 10.0, 0.5),
    noise_std=(0.05, 0.1, 0.2, 0.0),
    restart_after=4,
    restart_ratio=0.01,
    max_restarts=1,
)
BEFORE_29 = Path(__file__).parent / "data" / "default_optimizer_before_29.npz"


def adamw_cosine() -> optax.GradientTransformation:
    """AdamW with a linear warm-up and a cosine decay: one transformation for every member."""
    schedule = optax.warmup_cosine_decay_schedule(init_value=0.0, peak_value=2e-2, warmup_steps=5, decay_steps=200)
    return optax.adamw(schedule, weight_decay=1e-4)


def per_member_adam(hyper) -> optax.GradientTransformation:
    """A per-member factory: Adam at the member's own learning rate, kept in the state (inject_hyperparams)."""
    return optax.inject_hyperparams(optax.adam)(learning_rate=hyper.learning_rate)


def leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def identical(x, y) -> bool:
    lx, ly = leaves(x), leaves(y)
    return len(lx) == len(ly) and all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(lx, ly))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the saved weights are those of the CPU's compilation")
def test_the_default_optimizer_is_todays_bit_for_bit():
    """`optimizer=None` against the weights, optimizer state and losses the code before #29 gave for the same
    run (`tests/data/default_optimizer_before_29.npz`, written at commit 56c94d8 from `BEFORE` on two CPU
    devices, as in this suite)."""
    trainer = EnsembleTrainer(ENSEMBLE, BEFORE, TASK)
    state, losses = trainer.train(trainer.init(), progress=NoProgress())
    ref = np.load(BEFORE_29)
    got = leaves((state.model, state.opt_state, state.restarts, state.start_step))
    assert len(got) == len(ref.files) - 1
    for i, leaf in enumerate(got):
        np.testing.assert_array_equal(leaf, ref[f"leaf{i}"])
    np.testing.assert_array_equal(losses, ref["losses"])


def test_the_default_optimizer_is_the_built_in_chain_as_a_factory():
    """`optimizer=None` and the built-in chain passed as an explicit per-member factory: the same run."""
    trainer = EnsembleTrainer(ENSEMBLE, BEFORE, TASK)
    state, losses = trainer.train(trainer.init(), progress=NoProgress())
    explicit = EnsembleTrainer(
        ENSEMBLE, BEFORE, TASK, optimizer=lambda h: optimizer(BEFORE, h.learning_rate, h.clip_norm)
    )
    other, other_losses = explicit.train(explicit.init(), progress=NoProgress())
    assert identical((state.model, state.opt_state), (other.model, other.opt_state))
    np.testing.assert_array_equal(losses, other_losses)


def test_adamw_with_a_cosine_schedule_trains_the_flipflop():
    ensemble = EnsembleConfig(members=2, units=8)
    train = TrainConfig(steps=80, batch_size=16, steps_per_call=40)
    trainer = EnsembleTrainer(ensemble, train, TASK, optimizer=adamw_cosine())
    _, losses = trainer.train(trainer.init(), progress=NoProgress())
    assert np.all(np.isfinite(losses))
    assert np.all(losses[-10:].mean(axis=0) < 0.7 * losses[:10].mean(axis=0))


def test_adamw_with_a_cosine_schedule_checkpoints_and_resumes_bit_for_bit(tmp_path):
    ensemble = EnsembleConfig(members=2, units=6)
    train = TrainConfig(steps=8, batch_size=4, steps_per_call=2)
    trainer = EnsembleTrainer(ensemble, train, TASK, optimizer=adamw_cosine())
    straight, straight_losses = trainer.train(trainer.init(), progress=NoProgress())

    half, first = trainer.train(trainer.init(), until=4, progress=NoProgress())
    save_checkpoint(tmp_path / "checkpoint.eqx", half, first)
    fresh = EnsembleTrainer(ensemble, train, TASK, optimizer=adamw_cosine())  # a new process, as it were
    assert legacy_layouts(fresh.init()) == []  # older layouts are the built-in optimizer's only
    loaded, history = load_checkpoint(tmp_path / "checkpoint.eqx", like=fresh.init())
    assert identical(loaded, half)
    resumed, second = fresh.train(loaded, progress=NoProgress())

    assert identical(
        (resumed.model, resumed.opt_state, resumed.step), (straight.model, straight.opt_state, straight.step)
    )
    np.testing.assert_array_equal(np.concatenate([history, second]), straight_losses)
    assert int(jax.tree_util.tree_leaves(resumed.opt_state)[0][0]) == 8  # Adam's count: 8 updates


def test_a_user_loop_over_make_train_step_reproduces_the_trainer():
    ensemble = EnsembleConfig(members=2, units=6)
    train = TrainConfig(steps=4, batch_size=4, steps_per_call=2)
    trainer = EnsembleTrainer(ensemble, train, TASK, optimizer=adamw_cosine())
    final, _ = trainer.train(trainer.init(), progress=NoProgress())
    step = jax.jit(make_train_step(ensemble, train, TASK, optimizer=adamw_cosine()))
    state = trainer.init()
    for _ in range(train.steps):
        state, _ = step(state, step_key(state))
    assert identical((state.model, state.opt_state), (final.model, final.opt_state))


def test_a_per_member_factory_gets_each_members_learning_rate():
    lr = (1e-2, 0.0, 3e-3, 0.0)
    train = TrainConfig(steps=4, batch_size=4, steps_per_call=2, learning_rate=lr)
    trainer = EnsembleTrainer(ENSEMBLE, train, TASK, optimizer=per_member_adam)
    state0 = trainer.init()
    np.testing.assert_array_equal(np.asarray(state0.opt_state.hyperparams["learning_rate"]), np.asarray(lr, np.float32))
    state, _ = trainer.train(state0, progress=NoProgress())
    for k, rate in enumerate(lr):
        moved = [not np.array_equal(a[k], b[k]) for a, b in zip(leaves(state.model), leaves(state0.model))]
        assert any(moved) == (rate > 0), (k, rate)


def test_a_restart_reinitializes_the_members_user_optimizer_state():
    # every member is a dead start at step 4 (ratio 0.01) and restarted once: 4 more updates after it
    train = TrainConfig(
        steps=8,
        batch_size=4,
        steps_per_call=2,
        learning_rate=(1e-2, 3e-3, 1e-3, 2e-2),
        restart_after=4,
        restart_ratio=0.01,
        max_restarts=1,
    )
    trainer = EnsembleTrainer(ENSEMBLE, train, TASK, optimizer=per_member_adam)
    state, _ = trainer.train(trainer.init(), progress=NoProgress())
    np.testing.assert_array_equal(np.asarray(state.restarts), 1)
    np.testing.assert_array_equal(np.asarray(state.start_step), 4)
    np.testing.assert_array_equal(np.asarray(state.opt_state.count), 4)  # inject_hyperparams' count
    np.testing.assert_array_equal(np.asarray(state.opt_state.inner_state[0].count), 4)  # Adam's
    np.testing.assert_array_equal(
        np.asarray(state.opt_state.hyperparams["learning_rate"]), np.asarray(train.learning_rate, np.float32)
    )  # each its own, again


@pytest.mark.parametrize(
    "opt, fields, absent",
    [
        (optax.adam(1e-3), dict(lr_decay=0.0, learning_rate=3e-3), "adam_b2"),
        (optax.adam(1e-3), dict(clip_norm=None), "lr_decay"),
        (per_member_adam, dict(adam_b2=0.95, lr_decay=0.0), "learning_rate"),
    ],
    ids=["transformation-lr", "transformation-clip", "factory-adam"],
)
def test_a_user_optimizer_refuses_the_optimizer_fields_it_ignores(opt, fields, absent):
    train = TrainConfig(steps=2, batch_size=4, steps_per_call=2, **fields)
    with pytest.raises(ValueError, match="no effect") as info:
        EnsembleTrainer(ENSEMBLE, train, TASK, optimizer=opt)
    for name in fields:
        assert f"`{name}`=" in str(info.value)
    assert absent not in str(info.value)
    with pytest.raises(ValueError, match="no effect"):
        make_train_step(ENSEMBLE, train, TASK, optimizer=opt)
    # a per-member factory takes the learning rates and clips
    EnsembleTrainer(
        ENSEMBLE,
        dataclasses.replace(TrainConfig(steps=2), learning_rate=(1e-2, 0.0, 1e-3, 1e-3), clip_norm=None),
        TASK,
        optimizer=per_member_adam,
    )


def test_an_optimizer_of_another_kind_is_refused():
    with pytest.raises(TypeError, match="GradientTransformation"):
        EnsembleTrainer(ENSEMBLE, TrainConfig(), TASK, optimizer="adamw")


def test_init_from_refuses_a_model_that_contradicts_the_ensemble_config():
    model = make_ensemble(dataclasses.replace(ENSEMBLE, activation="relu"), key=jax.random.key(0))
    trainer = EnsembleTrainer(EnsembleConfig(members=3, units=999, cell="gru"), TrainConfig(), TASK)
    with pytest.raises(ValueError) as info:
        trainer.init_from(model)
    message = str(info.value)
    assert "`EnsembleConfig.units` = 999 but the model has N = 6 units" in message
    assert "`EnsembleConfig.members` = 3 but the model has 4 members" in message
    assert "`EnsembleConfig.cell` = 'gru' but the model is a ctrnn_jax.models._model.CTRNN (cell 'ctrnn')" in message
    assert "`EnsembleConfig.activation` = 'tanh' but the model has 'relu'" in message
    assert "inputs" not in message and "outputs" not in message
    EnsembleTrainer(dataclasses.replace(ENSEMBLE, activation="relu"), TrainConfig(), TASK).init_from(model)


def test_the_cell_may_be_named_by_import_string():
    model = make_ensemble(ENSEMBLE, key=jax.random.key(0))
    config = types.SimpleNamespace(**{**ENSEMBLE.to_dict(), "cell": "ctrnn_jax:CTRNN"})
    check_model(config, model)  # the same class, by another path
    config.cell = "ctrnn_jax:GRU"
    with pytest.raises(ValueError, match="`EnsembleConfig.cell` = 'ctrnn_jax:GRU' but the model is a"):
        check_model(config, model)
    config.cell = "no_such_module_29:Cell"
    with pytest.raises(ValueError, match="no_such_module_29:Cell"):
        check_model(config, model)


def test_the_reprs_say_what_is_trained_and_how():
    default = EnsembleTrainer(ENSEMBLE, BEFORE, TASK)
    text = repr(default)
    for fact in (
        "4 members",
        "ctrnn",
        "6 units",
        "tanh",
        "flipflop",
        "8 steps",
        "batch 4",
        "clip(‖g‖ ≤ (1, 0.05, 10, 0.5))",
        "Adam(b1=0.9, b2=0.999, eps=1e-07)",
        "lr/(1 + 0.001·t)",
        "lr = (0.01, 0.003, 0.001, 0.02)",
    ):
        assert fact in text, fact
    step = repr(default.step)
    assert step.startswith("TrainStep(4 members, task flipflop") and "Adam(" in step and " at 0x" not in step
    user = EnsembleTrainer(ENSEMBLE, TrainConfig(steps=2), TASK, optimizer=adamw_cosine())
    assert "user: GradientTransformationExtraArgs from optax.transforms.chain" in repr(user)
    factory = EnsembleTrainer(ENSEMBLE, TrainConfig(steps=2), TASK, optimizer=per_member_adam)
    assert "user: per-member factory" in repr(factory.step) and "per_member_adam" in repr(factory.step)
    assert "Adam(" not in repr(factory)


def test_compaction_criterion_and_restart_with_a_per_member_factory():
    """Members 0-2 done from the start (criterion met): the compacted chunks train member 3 alone, with its own
    learning rate, and its restart there re-initializes its optimizer state with its own `Hyper`."""
    lr = (1e-2, 3e-3, 1e-3, 2e-2)
    train = TrainConfig(
        steps=8,
        batch_size=4,
        steps_per_call=2,
        learning_rate=lr,
        stop_mse=1e-9,
        restart_after=4,
        restart_ratio=1e-6,
        max_restarts=1,
    )
    trainer = EnsembleTrainer(ENSEMBLE, train, TASK, optimizer=per_member_adam)
    start = dataclasses.replace(trainer.init(), criterion_step=jnp.asarray([0, 0, 0, -1], jnp.int32))
    final, losses = trainer.train(start, until=6, progress=NoProgress())
    assert np.all(np.isnan(losses[:, :3])) and np.all(np.isfinite(losses[:, 3]))
    assert identical(
        jax.tree_util.tree_map(lambda a: a[:3], (final.model, final.opt_state)),
        jax.tree_util.tree_map(lambda a: a[:3], (start.model, start.opt_state)),
    )
    assert np.asarray(final.restarts).tolist() == [0, 0, 0, 1]
    assert int(final.opt_state.count[3]) == 2  # restarted at step 4, two updates since
    np.testing.assert_array_equal(np.asarray(final.opt_state.hyperparams["learning_rate"]), np.asarray(lr, np.float32))
