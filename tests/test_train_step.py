"""The pure training step (`make_train_step`), train to criterion, dead-start restarts, and resuming
checkpoints written before them (issue #21)."""

import dataclasses
import shutil
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
from ctrnn_jax.io._run import train_run
from ctrnn_jax.io._run_config import read_config
from ctrnn_jax.io._serialisation import load_checkpoint, save_checkpoint
from ctrnn_jax.training import restart_key
from ctrnn_jax.training._ensemble import fresh_members, make_ensemble
from ctrnn_jax.training._train import _LegacyState, legacy_layouts, optimizer

TASK = FlipFlopConfig(length=24, first_onset=(1, 3), gaps=(5, 5), gap_jitter=3, width=3, delay=2)
ENSEMBLE = EnsembleConfig(members=4, units=6, alpha=(1.0, 0.5, 0.25, 0.5), gain=(1.0, 0.8, 1.2, 1.0))
# per-member learning rates, clip norms and noise: the traced hyper-parameters of the chain
TRAIN = TrainConfig(
    steps=4,
    batch_size=4,
    steps_per_call=2,
    learning_rate=(1e-2, 3e-3, 1e-3, 2e-2),
    clip_norm=(1.0, 0.05, 10.0, 0.5),
    noise_std=(0.05, 0.1, 0.2, 0.0),
)
DATA = Path(__file__).parent / "data" / "run_before_21"


def leaves_equal(x, y) -> bool:
    lx, ly = jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(y)
    return len(lx) == len(ly) and all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(lx, ly))


@pytest.mark.parametrize(
    "train", [TRAIN, dataclasses.replace(TRAIN, dataset_size=16, noise_std=0.0)], ids=["fresh-trials", "data-set"]
)
def test_a_user_loop_over_step_reproduces_train_bit_for_bit(train):
    trainer = EnsembleTrainer(ENSEMBLE, train, TASK)
    final, losses = trainer.train(trainer.init(), progress=NoProgress())
    step = jax.jit(make_train_step(ENSEMBLE, train, TASK))
    state, mine = trainer.init(), []
    for _ in range(train.steps):
        state, metrics = step(state, step_key(state))
        mine.append(np.asarray(metrics["loss"]))
    np.testing.assert_array_equal(np.stack(mine), losses)
    assert leaves_equal((state.model, state.opt_state, state.step), (final.model, final.opt_state, final.step))
    assert set(metrics) == {"loss", "grad_norm"} and metrics["grad_norm"].shape == (4,)


def test_the_update_is_clip_then_adam_then_the_decayed_learning_rate():
    """Two steps of `optimizer` against the formulas: global-norm clip, Adam's moments with bias
    correction, lr / (1 + decay t)."""
    cfg = TrainConfig(lr_decay=0.5, adam_b1=0.9, adam_b2=0.99, adam_eps=1e-7)
    lr, clip = 0.1, 1.0
    opt = optimizer(cfg, jnp.float32(lr), jnp.float32(clip))
    grads = [{"w": jnp.array([3.0, 4.0])}, {"w": jnp.array([0.3, -0.4])}]  # norms 5 (clipped to 1) and 0.5
    state = opt.init({"w": jnp.zeros(2)})
    m = v = np.zeros(2)
    for t, g in enumerate(grads):
        updates, state = opt.update(g, state)
        gc = np.asarray(g["w"], np.float64)
        gc = gc * min(1.0, clip / np.linalg.norm(gc))
        m, v = 0.9 * m + 0.1 * gc, 0.99 * v + 0.01 * gc**2
        mhat, vhat = m / (1 - 0.9 ** (t + 1)), v / (1 - 0.99 ** (t + 1))
        expected = -lr / (1 + 0.5 * t) * mhat / (np.sqrt(vhat) + 1e-7)
        np.testing.assert_allclose(np.asarray(updates["w"]), expected, rtol=1e-5)


def test_train_to_criterion_records_the_first_step_and_stops_when_all_met():
    # some members meet it; every member computed throughout, as `run_steps` does
    train = dataclasses.replace(TRAIN, steps=12, steps_per_call=2, stop_mse=0.975, compact=False)
    trainer = EnsembleTrainer(ENSEMBLE, train, TASK)
    held = trainer.held_out()
    # the reference: chunk by chunk, the members' held-out MSE recomputed from the states
    state, first, met_w = trainer.init(), np.full(4, -1), {}
    while int(state.step) < train.steps and not np.all(first >= 0):
        state, _ = trainer.run_steps(state, 2)
        mse = np.asarray(trainer.held_out_mse(state.model, held))
        for k in np.flatnonzero((first < 0) & (mse < 0.975)):
            met_w[k] = np.asarray(state.model.W_rec[k])
        first = np.where((first < 0) & (mse < 0.975), int(state.step), first)
    final, losses = trainer.train(trainer.init(), progress=NoProgress())
    np.testing.assert_array_equal(np.asarray(final.criterion_step), first)
    for k, w in met_w.items():  # held at the weights that met the criterion
        np.testing.assert_array_equal(np.asarray(final.model.W_rec[k]), w)
    assert met_w, "no member met the criterion: the test checks nothing"
    assert losses.shape == (int(final.step), 4)
    if np.all(first >= 0):  # stopped at the chunk where the last member met it
        assert int(final.step) == first.max() < train.steps
    # a criterion every member meets at once: one chunk
    easy = EnsembleTrainer(ENSEMBLE, dataclasses.replace(train, stop_mse=1e6), TASK)
    s, l3 = easy.train(easy.init(), progress=NoProgress())
    assert l3.shape == (2, 4) and np.asarray(s.criterion_step).tolist() == [2, 2, 2, 2]


def test_compaction_computes_only_the_members_still_training():
    """Members 0-2 done (criterion met) from the start: the chunks are compiled for member 3 alone (padded
    with a done member to the devices), the done members keep their weights bit for bit and have NaN
    losses, member 3 trains as when every member is computed (up to rounding), and its dead-start restart
    in the compacted chunk draws from its own key with its own `alpha` (0.5; row 0's is 1.0)."""
    train = dataclasses.replace(
        TRAIN,
        steps=8,
        steps_per_call=2,
        stop_mse=1e-9,
        restart_after=4,
        restart_ratio=1e-6,
        max_restarts=1,
        noise_std=0.0,
    )
    sizes = []
    trainer = EnsembleTrainer(ENSEMBLE, train, TASK)
    after = trainer._after_chunk
    trainer._after_chunk = lambda s, *a: (sizes.append(s.frozen.shape[0]), after(s, *a))[1]
    start = trainer.init()
    start = dataclasses.replace(start, criterion_step=jnp.asarray([0, 0, 0, -1], jnp.int32))
    final, losses = trainer.train(start, until=4, progress=NoProgress())
    d = 1 if trainer.mesh is None else trainer.mesh.devices.size
    assert sizes == [d]  # one compiled chunk, of one member per device
    assert leaves_equal(
        jax.tree_util.tree_map(lambda a: a[:3], (final.model, final.opt_state)),
        jax.tree_util.tree_map(lambda a: a[:3], (start.model, start.opt_state)),
    )
    assert np.all(np.isnan(losses[:, :3])) and np.all(np.isfinite(losses[:, 3]))
    every = EnsembleTrainer(ENSEMBLE, dataclasses.replace(train, compact=False), TASK)
    ref, ref_losses = every.train(start, until=4, progress=NoProgress())
    np.testing.assert_allclose(losses[:, 3], ref_losses[:, 3], rtol=1e-5)
    assert np.all(np.isnan(ref_losses[:, :3]))  # done members have no loss either way
    # member 3 was a dead start at step 4 (past restart_after), restarted inside the compacted chunk
    assert np.asarray(final.restarts).tolist() == [0, 0, 0, 1] == np.asarray(ref.restarts).tolist()
    drawn = fresh_members(ENSEMBLE, restart_key(train.seed, 3, 1)[None], members=jnp.asarray([3]))
    assert float(drawn.alpha[0]) == 0.5
    assert leaves_equal(
        jax.tree_util.tree_map(lambda a: a[3], final.model), jax.tree_util.tree_map(lambda a: a[0], drawn)
    )
    assert leaves_equal(final.model, ref.model)


def test_the_flipflop_criterion_evaluates_a_series_like_the_test_but_not_the_test():
    trainer = EnsembleTrainer(ENSEMBLE, dataclasses.replace(TRAIN, stop_mse=0.1), TASK)
    inputs, targets, mask = (np.asarray(a) for a in trainer.held_out())
    test_inputs, test_targets, _ = TASK.test_set()
    assert inputs.shape[0] == 1 and inputs.shape != np.asarray(test_inputs).shape and np.all(mask == 1)
    held = {tuple(row) for row in np.sign(targets[0]).astype(int).tolist() if 0 not in row}
    assert len(held) == 8  # every memory state, as in the test series


def test_a_dead_start_is_redrawn_from_its_member_and_restart_count():
    """With `restart_ratio` tiny every member counts as a dead start at the chunk that takes it past
    `restart_after`; its weights become those drawn from `restart_key`, its optimizer state (and so
    its learning-rate schedule) starts again, and `max_restarts` bounds the count."""
    train = dataclasses.replace(TRAIN, steps=16, steps_per_call=2, restart_after=4, restart_ratio=1e-6, max_restarts=1)
    trainer = EnsembleTrainer(ENSEMBLE, train, TASK)
    state = trainer.init()
    for _ in range(2):  # steps 0-4: the first chunk sets start_loss, the second crosses restart_after
        state, losses = trainer.run_steps(state, 2)
    assert np.asarray(state.restarts).tolist() == [1, 1, 1, 1]
    assert np.asarray(state.start_step).tolist() == [4, 4, 4, 4]
    keys = jax.vmap(lambda i: restart_key(train.seed, i, 1))(jnp.arange(4))
    assert leaves_equal(state.model, fresh_members(ENSEMBLE, keys))
    assert not leaves_equal(state.model, make_ensemble(ENSEMBLE, key=jax.random.split(jax.random.key(0))[0]))
    assert np.asarray(state.opt_state[1].count).tolist() == [0, 0, 0, 0]
    assert np.asarray(state.opt_state[2].count).tolist() == [0, 0, 0, 0]
    assert np.all(np.isinf(np.asarray(state.start_loss)))
    final, _ = trainer.train(state, progress=NoProgress())  # max_restarts = 1: no second restart
    assert np.asarray(final.restarts).tolist() == [1, 1, 1, 1] and int(final.step) == 16


def test_members_that_met_the_criterion_are_not_restarted():
    met = dataclasses.replace(TRAIN, steps=8, steps_per_call=2, restart_after=4, restart_ratio=1e-6, stop_mse=1e6)
    trainer = EnsembleTrainer(ENSEMBLE, met, TASK)
    state, _ = trainer.run_steps(trainer.init(), 2)
    state, _ = trainer.run_steps(state, 2)
    assert np.asarray(state.restarts).tolist() == [0, 0, 0, 0]


def test_bad_criterion_and_restart_options_name_the_field():
    with pytest.raises(ValueError, match="stop_mse"):
        TrainConfig(stop_mse=0.0)
    with pytest.raises(ValueError, match="restart_after"):
        TrainConfig(restart_after=0)
    with pytest.raises(ValueError, match="restart_ratio"):
        TrainConfig(restart_ratio=-1.0)
    with pytest.raises(ValueError, match="max_restarts"):
        TrainConfig(max_restarts=-1)


def test_a_checkpoint_written_before_the_chain_resumes(tmp_path):
    """`tests/data/run_before_21`: a run folder (2 members, N = 8, 4 steps) written by the trainer of
    commit e832a1d (Adam state alone). It resumes: model and Adam moments as stored, the schedule's
    count from Adam's, no restarts, and training goes on."""
    run = tmp_path / "run"
    shutil.copytree(DATA, run)
    config = read_config(run)
    trainer = EnsembleTrainer(config.ensemble, config.train, config.task)
    like = trainer.init()
    old_like = legacy_layouts(like)[0][0]
    old, old_losses = load_checkpoint(run / "checkpoint.eqx", old_like)
    assert isinstance(old, _LegacyState) and int(old.step) == 4
    state, losses = load_checkpoint(run / "checkpoint.eqx", like, older=legacy_layouts(like))
    np.testing.assert_array_equal(losses, old_losses)
    assert leaves_equal((state.model, state.opt_state[1]), (old.model, old.opt_state))
    assert np.asarray(state.opt_state[2].count).tolist() == [4, 4]
    assert np.asarray(state.restarts).tolist() == [0, 0] and np.asarray(state.criterion_step).tolist() == [-1, -1]
    longer = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=6))
    result = train_run(run, longer, resume=True, progress=NoProgress(), log=lambda m: None)
    assert result["restarts"] == [0, 0] and result["criterion_step"] == [-1, -1]
    resumed, history = load_checkpoint(run / "checkpoint.eqx", like)
    assert int(resumed.step) == 6 and history.shape == (6, 2)
    np.testing.assert_array_equal(history[:4], old_losses)


def test_a_checkpoint_of_another_layout_says_what_to_do(tmp_path):
    trainer = EnsembleTrainer(ENSEMBLE, TRAIN, TASK)
    save_checkpoint(tmp_path / "c.eqx", {"x": jnp.zeros(3)}, np.zeros((0, 4), np.float32))
    like = trainer.init()
    with pytest.raises(ValueError, match="train again into a new run folder") as info:
        load_checkpoint(tmp_path / "c.eqx", like, older=legacy_layouts(like))
    assert "\n" not in str(info.value)


def test_the_chain_state_is_what_optax_gives():
    trainer = EnsembleTrainer(ENSEMBLE, TRAIN, TASK)
    clip, adam, sched = trainer.init().opt_state
    assert isinstance(adam, optax.ScaleByAdamState) and isinstance(sched, optax.ScaleByScheduleState)
    assert adam.mu.W_rec.shape == (4, 6, 6) and sched.count.shape == (4,)


def test_two_members_keep_the_run_key_whole_on_two_devices():
    """K = 2 on the tests' 2 CPU devices: the run's key (2 words for threefry) is replicated, not split as
    if it were the member axis, so `step_key` and training work."""
    assert len(jax.devices()) == 2
    train = TrainConfig(steps=4, batch_size=4, steps_per_call=2)
    trainer = EnsembleTrainer(EnsembleConfig(members=2, units=6), train, TASK)
    state = trainer.init()
    assert state.key_data.sharding.is_fully_replicated
    assert not state.model.W_rec.sharding.is_fully_replicated  # the members are split
    key = step_key(state)
    np.testing.assert_array_equal(
        jax.random.key_data(key), jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(state.key_data), 0))
    )
    state, losses = trainer.run_steps(state, 2)
    assert losses.shape == (2, 2) and np.all(np.isfinite(losses))
