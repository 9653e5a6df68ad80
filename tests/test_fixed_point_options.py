"""Every `FixedPointConfig` option means the same on every network: the 3-bit flip-flop, a decision task,
a custom task, a network without a task (a bare npz) and a gated cell. Each option checked here changes
what it should, or is refused before any search."""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctrnn_jax as cj
from ctrnn_jax.dynamics import FixedPointConfig, fixed_point_candidates, fixed_point_stage
from ctrnn_jax.dynamics._stage import probe_trials


@dataclasses.dataclass(frozen=True)
class Hold(cj.AbstractTask):
    """A custom task through the interface only: hold the sign of a pulse on 2 inputs."""

    name: ClassVar[str] = "hold"
    metric_name: ClassVar[str] = "accuracy"
    higher_is_better: ClassVar[bool] = True
    n_inputs: ClassVar[int] = 2
    n_outputs: ClassVar[int] = 1
    length: int = 12

    def sample(self, key, batch_size):
        sign = jnp.where(jax.random.bernoulli(key, shape=(batch_size, 1, 1)), 1.0, -1.0)
        t = jnp.arange(self.length).reshape(1, -1, 1)
        inputs = jnp.concatenate([sign * (t < 3), jnp.zeros((batch_size, self.length, 1))], axis=2)
        targets = jnp.where(t >= 3, sign, 0.0)
        return inputs, targets, jnp.ones_like(targets)

    def test_set(self):
        return self.sample(jax.random.key(0), 8)

    def score(self, outputs, targets, mask):
        return cj.decision_score(outputs, targets, mask)

    def success_threshold(self):
        return 0.9

    def fixed_point_inputs(self):
        return np.zeros((1, 2), np.float32)


def _case(name):
    """(ensemble, task) of each kind; K = 2, N = 6."""
    key = jax.random.key(3)
    if name == "flipflop":
        task = cj.FlipFlopConfig(length=60, first_onset=(2, 10), gaps=(10, 10), gap_jitter=3, width=3, delay=0)
        return cj.make_ensemble(cj.EnsembleConfig(members=2, units=6, gain=1.5), key=key), task
    if name == "decision":
        task = cj.make_task("perceptual_dm")
        return cj.make_ensemble(
            cj.EnsembleConfig(members=2, units=6, inputs=task.n_inputs, outputs=task.n_outputs), key=key
        ), task
    if name == "custom":
        return cj.make_ensemble(cj.EnsembleConfig(members=2, units=6, inputs=2, outputs=1), key=key), Hold()
    if name == "bare":
        return cj.make_ensemble(cj.EnsembleConfig(members=2, units=6, inputs=2, outputs=2, gain=2.0), key=key), None
    return cj.make_ensemble(cj.EnsembleConfig(members=2, units=6, cell="lstm"), key=key), cj.FlipFlopConfig(length=60)


CASES = ("flipflop", "decision", "custom", "bare", "lstm")
TINY = FixedPointConfig(n_candidates=16, n_trials=2, adam_steps=10, newton_steps=4, completion_rounds=1)


def _trials(ens, task):
    if task is None:
        return [probe_trials(np.zeros(ens.n_inputs), key=jax.random.key(0), batch=2)]
    return [np.asarray(task.test_set()[0])]


@pytest.mark.parametrize("name", CASES)
def test_candidate_options_act_on_every_network(name):
    ens, task = _case(name)
    trials = _trials(ens, task)
    key = jax.random.key(1)
    base, steps = fixed_point_candidates(ens, trials, TINY, key=key)
    s = ens.state_size
    assert base.shape == (2, 16, s) and steps.shape == (2, 16)
    # n_candidates: how many
    assert fixed_point_candidates(ens, trials, dataclasses.replace(TINY, n_candidates=10), key=key)[0].shape == (
        2,
        10,
        s,
    )
    # noise_std: only the trajectory part (the first 12 = 75 %) moves
    noisy, _ = fixed_point_candidates(ens, trials, dataclasses.replace(TINY, noise_std=0.5), key=key)
    moved = np.any(noisy != base, axis=2)
    assert moved[:, :12].all() and not moved[:, 12:].any()
    # state_space_fraction: 0 leaves only trajectory states, run no steps
    _, none = fixed_point_candidates(ens, trials, dataclasses.replace(TINY, state_space_fraction=0.0), key=key)
    assert not none.any() and steps[:, 12:14].min() >= 1


@pytest.mark.parametrize("name", CASES)
def test_search_options_act_on_every_network(name):
    ens, task = _case(name)
    with_vectors = fixed_point_stage(ens, task, config=dataclasses.replace(TINY, eigvecs=True))
    plain = fixed_point_stage(ens, task, config=TINY)
    for a, b in zip(with_vectors, plain):
        s = ens.state_size
        assert a.eigvecs is not None and a.eigvecs.shape == (len(a), s, s) and b.eigvecs is None
        # the same points either way: eigvecs changes what is kept, not what is found
        np.testing.assert_allclose(a.points, b.points, atol=1e-5)
        # outputs are the readouts of the hidden part of each point
        for k in range(2):
            model = cj.get_member(ens, k)
            mine = a.points[a.member == k]
            if len(mine):
                np.testing.assert_allclose(
                    a.outputs[a.member == k], model.readout(model.hidden(jnp.asarray(mine))), atol=1e-4
                )
    # float64 without 64-bit JAX is refused before any search, for every network
    with pytest.raises(ValueError, match="float64"):
        fixed_point_stage(ens, task, config=dataclasses.replace(TINY, dtype="float64"))
    # a wrong constant input is refused, naming the sizes
    with pytest.raises(ValueError, match="inputs"):
        fixed_point_stage(ens, task, inputs=np.zeros(ens.n_inputs + 1), config=TINY)
