import dataclasses
import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctrnn_jax.tasks._flipflop import (
    FlipFlopConfig,
    _pulse_structure,
    flipflop_dataset,
    flipflop_test_set,
    sample_flipflop,
)


def _clean(config):
    return dataclasses.replace(config, noise_std=0.0)


def _reference_targets(clean_inputs, width, delay):
    """Flip-flop rule from noise-free inputs `(T, n_bits)`: sign of the latest pulse, from pulse end
    + delay on. Pulses are runs of non-zero input; a pulse cut by the series end never switches.
    A zero-amplitude first pulse is invisible here, so the target must stay 0 until pulse 2."""
    T, n_bits = clean_inputs.shape
    out = np.zeros((T, n_bits), np.float32)
    for c in range(n_bits):
        x = clean_inputs[:, c]
        switches = {}
        t = 0
        while t < T:
            if x[t] != 0:
                start, sign = t, np.sign(x[t])
                while t < T and x[t] != 0:
                    assert np.sign(x[t]) == sign
                    t += 1
                if t < T:  # pulse ended inside the series
                    assert t - start == width
                    switches[t + delay] = sign
            else:
                t += 1
        state = 0.0
        for t in range(T):
            state = switches.get(t, state)
            out[t, c] = state
    return out


@pytest.mark.parametrize(
    "config",
    [
        FlipFlopConfig(),
        FlipFlopConfig(delay=5),
        FlipFlopConfig(width=7),
        FlipFlopConfig(gaps=(30, 30, 30), gap_jitter=10, amplitude=0.5),
    ],
)
def test_targets_follow_flipflop_rule(config):
    inputs, targets = sample_flipflop(jax.random.key(0), _clean(config), 16)
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    assert inputs.shape == targets.shape == (16, config.length, config.n_bits)
    assert inputs.dtype == targets.dtype == np.float32
    assert set(np.unique(np.abs(inputs))) <= {0.0, config.amplitude}
    for x, y in zip(inputs, targets):
        np.testing.assert_array_equal(y, _reference_targets(x, config.width, config.delay))
    assert np.abs(targets[:, -1]).sum() > 0  # the last step is not forced to 0


def test_noise_level_and_structure_independent_of_noise():
    config = FlipFlopConfig()
    key = jax.random.key(1)
    inputs, targets = sample_flipflop(key, config, 16)
    clean, clean_targets = sample_flipflop(key, _clean(config), 16)
    np.testing.assert_array_equal(targets, clean_targets)
    assert abs(float(jnp.std(inputs - clean)) / config.noise_std - 1) < 0.05
    assert abs(float(jnp.mean(inputs - clean))) < 0.01


def test_pulse_statistics():
    config = FlipFlopConfig()
    keys = jax.random.split(jax.random.key(2), 4000)
    structure = jax.jit(jax.vmap(_pulse_structure, in_axes=(0, None)), static_argnums=1)
    onsets, signs = map(np.asarray, structure(keys, config))
    assert onsets.shape == signs.shape == (4000, 3, 3)
    assert onsets[..., 0].min() == 10 and onsets[..., 0].max() == 99
    for i, gap in enumerate(config.gaps):
        d = onsets[..., i + 1] - (onsets[..., i] + config.width)
        assert d.min() == gap + 1 and d.max() == gap + config.gap_jitter
    assert abs(np.mean(signs[..., 0] == 0) - 1 / 3) < 0.02
    assert abs(np.mean(signs[..., 0] == 1) - 1 / 3) < 0.02
    assert set(np.unique(signs[..., 1:])) == {-1.0, 1.0}
    assert abs(np.mean(signs[..., 1:] == 1) - 0.5) < 0.02
    no_zero = dataclasses.replace(config, first_pulse_can_be_zero=False)
    _, signs = structure(keys, no_zero)
    assert set(np.unique(signs[..., 0])) == {-1.0, 1.0}


def test_test_set():
    config = FlipFlopConfig(noise_std=0.5, amplitude=2.0)
    inputs, targets = flipflop_test_set(config)
    assert inputs.shape == targets.shape == (1, 1190, 3)
    x, y = np.asarray(inputs[0]), np.asarray(targets[0])
    assert set(np.unique(x)) == {-2.0, 0.0, 2.0}  # no noise, amplitude-scaled
    assert np.all(y[:70] == 0) and np.all(y[-1] != 0)
    # Every state is held `period` steps; all 8 sign combinations, each twice.
    states = y[70:].reshape(16, 70, 3)
    assert np.all(states == states[:, :1])
    combos = [tuple(s) for s in states[:, 0]]
    assert sorted(combos) == sorted(2 * list(itertools.product([-1.0, 1.0], repeat=3)))
    # Each channel's target flips exactly at its own pulse end + delay.
    for c in range(3):
        np.testing.assert_array_equal(y[:, c], _reference_targets(x[:, c : c + 1], 20, 20)[:, 0])
    np.testing.assert_array_equal(x[30:50, 0], 2.0)
    np.testing.assert_array_equal(np.sign(x[30::70, :][:8]), [combos[k] for k in range(8)])


def test_validation_set_is_a_held_out_series_of_the_test_kind():
    """The criterion's series: every state held 70 steps like the test, visited from the opposite corner
    (every pulse of the opposite sign) and 10 steps earlier, so it is not the test series."""
    config = FlipFlopConfig()
    x, y, mask = config.validation_set()
    tx, ty = flipflop_test_set(config)
    assert x.shape == y.shape == mask.shape == (1, 1180, 3) and np.all(np.asarray(mask) == 1)
    x, y = np.asarray(x[0]), np.asarray(y[0])
    np.testing.assert_array_equal(x, -np.asarray(tx[0])[10:])  # the test, shifted and sign-inverted
    np.testing.assert_array_equal(y, -np.asarray(ty[0])[10:])
    held = y[60:].reshape(16, 70, 3)
    assert np.all(held == held[:, :1])  # 16 holds of 70 steps
    assert sorted(map(tuple, held[:, 0])) == sorted(2 * list(itertools.product([-1.0, 1.0], repeat=3)))
    assert tuple(held[0, 0]) != tuple(np.asarray(ty[0])[70])  # it starts from another corner
    for c in range(3):  # the flip-flop rule holds on it as on any series
        np.testing.assert_array_equal(y[:, c], _reference_targets(x[:, c : c + 1], 20, 20)[:, 0])


def test_test_set_options():
    config = FlipFlopConfig(width=5, delay=3)
    inputs, targets = flipflop_test_set(config, period=10, first_onset=0, n_pulses=8)
    assert inputs.shape == (1, 0 + 8 * 10 + 5 + 3, 3)
    assert np.all(targets[0, :8] == 0) and np.all(targets[0, 8] != 0)
    # any number of bits: the held output states visit all 2**n_bits sign patterns
    for n in (1, 2, 4):
        x, y = flipflop_test_set(FlipFlopConfig(n_bits=n))
        held = {tuple(v) for v in np.sign(np.asarray(y[0]))[np.all(np.asarray(y[0]) != 0, axis=1)]}
        assert x.shape[2] == n and len(held) == 2**n
    with pytest.raises(ValueError, match="period"):
        flipflop_test_set(config, period=4)
    with pytest.raises(ValueError, match="first_onset"):
        flipflop_test_set(config, first_onset=-1)
    with pytest.raises(ValueError, match="n_pulses"):
        flipflop_test_set(config, n_pulses=0)


def test_keys_jit_vmap():
    config = _clean(FlipFlopConfig(delay=5))
    key1, key2 = jax.random.key(4), jax.random.key(5)
    a = sample_flipflop(key1, config, 16)
    b = sample_flipflop(key1, config, 16)
    c = sample_flipflop(key2, config, 16)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[1], c[1])
    jitted = jax.jit(sample_flipflop, static_argnums=(1, 2))(key1, config, 16)
    np.testing.assert_allclose(jitted[0], a[0], atol=1e-6)
    np.testing.assert_array_equal(jitted[1], a[1])
    keys = jax.random.split(key2, 4)
    batched = jax.vmap(lambda k: sample_flipflop(k, config, 16))(keys)
    looped = [sample_flipflop(k, config, 16) for k in keys]
    assert batched[0].shape == (4, 16, 340, 3)
    np.testing.assert_allclose(batched[0], np.stack([batch[0] for batch in looped]), atol=1e-6)
    np.testing.assert_array_equal(batched[1], np.stack([batch[1] for batch in looped]))


def test_dataset_shape_and_determinism():
    config = FlipFlopConfig()
    key = jax.random.key(6)
    inputs, targets = flipflop_dataset(key, config, 16, chunk_size=6)  # padded to 3 chunks
    assert inputs.shape == targets.shape == (16, 340, 3)
    again = flipflop_dataset(key, config, 16, chunk_size=6)
    np.testing.assert_array_equal(again[0], inputs)
    np.testing.assert_array_equal(again[1], targets)
    batch = sample_flipflop(key, config, 16)
    np.testing.assert_allclose(batch[0], inputs, atol=1e-6)
    np.testing.assert_array_equal(batch[1], targets)
    with pytest.raises(ValueError, match="n_samples"):
        flipflop_dataset(key, config, 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_bits=0), "n_bits"),
        (dict(length=0), "length"),
        (dict(width=0), "width"),
        (dict(delay=-1), "delay"),
        (dict(gap_jitter=-1), "gap_jitter"),
        (dict(gaps=(10, -1)), "gaps"),
        (dict(noise_std=-0.1), "noise_std"),
        (dict(amplitude=0.0), "amplitude"),
        (dict(first_onset=(10, 10)), "first_onset"),
        (dict(first_onset=(-1, 10)), "first_onset"),
        (dict(first_onset=(1, 2, 3)), "first_onset"),
        (dict(delay=320), "delays shorter than the series"),
        (dict(length=50, first_onset=(10, 20)), "delays shorter than the series"),
    ],
)
def test_config_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FlipFlopConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_bits=3.0), "n_bits"),
        (dict(delay=True), "delay"),
        (dict(noise_std="0.1"), "noise_std"),
        (dict(gaps=50), "gaps"),
        (dict(first_pulse_can_be_zero=1), "first_pulse_can_be_zero"),
    ],
)
def test_config_type_errors(kwargs, match):
    with pytest.raises(TypeError, match=match):
        FlipFlopConfig(**kwargs)


def test_sample_argument_errors():
    config = FlipFlopConfig()
    with pytest.raises(ValueError, match="batch_size"):
        sample_flipflop(jax.random.key(0), config, 0)
    with pytest.raises(TypeError, match="batch_size"):
        sample_flipflop(jax.random.key(0), config, 2.0)
    with pytest.raises(TypeError, match="key"):
        sample_flipflop(jax.random.PRNGKey(0), config, 2)
    with pytest.raises(TypeError, match="config"):
        sample_flipflop(jax.random.key(0), {}, 2)


def test_config_serialisation():
    config = FlipFlopConfig(gaps=(30, 30, 30), delay=5, first_pulse_can_be_zero=False)
    assert config.n_pulses == 4 and FlipFlopConfig().n_pulses == 3
    d = json.loads(json.dumps(config.to_dict()))
    assert FlipFlopConfig.from_dict(d) == config
    assert hash(FlipFlopConfig.from_dict(d)) == hash(config)
    with pytest.raises(ValueError, match="bogus"):
        FlipFlopConfig.from_dict({**d, "bogus": 1})
