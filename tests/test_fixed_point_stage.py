"""The one fixed-point stage (`fixed_point_stage`): every network gets its whole grid of fixed points.

Invariants: a network whose units are independent multistable switches has the full product grid of
fixed points, with a known number of saddles of each index; a trained n-bit flip-flop member with all
3ⁿ attractors has the full 5ⁿ grid, (n choose k)·2ᵏ·3ⁿ⁻ᵏ saddles of index k (27/54/36/8 for n = 3,
81/216/216/96/16 for n = 4)."""

import math
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _analytic import tanh_root  # tests/_analytic.py

import ctrnn_jax as cj
from ctrnn_jax.dynamics import FixedPointConfig, fixed_point_candidates, fixed_point_stage

DATA = Path(__file__).parent / "data"


def decoupled(weights, m=1):
    """A CTRNN `h ← tanh(diag(weights) h)` with `a = 1`, no input drive (`W_in = 0`) and no bias."""
    n = len(weights)
    model = cj.CTRNN(m, n, 1, key=jax.random.key(0), alpha=1.0)
    return eqx.tree_at(
        lambda mdl: (mdl.W_rec, mdl.W_in),
        model,
        (jnp.diag(jnp.asarray(weights, jnp.float32)), jnp.zeros((n, m), jnp.float32)),
    )


SMALL = FixedPointConfig(n_candidates=256, adam_steps=100)


def grid_counts(n_bistable: int, n_off: int = 0) -> dict:
    """Fixed points of `n_bistable` independent bistable units (±h*, and 0 between) and `n_off` contracting
    ones: index k has (n choose k)·2^(n−k) points."""
    return {k: math.comb(n_bistable, k) * 2 ** (n_bistable - k) for k in range(n_bistable + 1)}


def by_index(fp, member=0):
    """`{saddle index: count}` of the member's fixed points (the exact ones: not the analysed slow points)."""
    index = fp.n_unstable[(fp.member == member) & fp.exact]
    return {int(i): int(np.sum(index == i)) for i in np.unique(index)}


@pytest.fixture(scope="module")
def bistable4():
    """The hand-built 4-unit bistable network with no input drive, and its stage result (no task)."""
    ens = cj.stack_members([decoupled([1.5, 2.0, 3.0, 2.5])])
    return ens, fixed_point_stage(ens, config=SMALL)[0]


def test_bistable_4_units_full_grid(bistable4):
    ens, fp = bistable4
    # 3^4 = 81 fixed points: 16 stable, 32/24/8/1 saddles of index 1/2/3/4
    assert by_index(fp) == grid_counts(4)
    h_star = np.asarray([tanh_root(w) for w in (1.5, 2.0, 3.0, 2.5)])
    levels = np.abs(fp.points) / h_star
    assert np.allclose(np.round(levels), levels, atol=1e-4)  # every coordinate is 0 or ±h*
    assert len({tuple(np.sign(np.round(p, 4))) for p in fp.points}) == 81


def test_network_without_input_drive_gets_all_its_points():
    """`h ← tanh(W h)` on 4 units with 9 fixed points (two bistable units, two contracting ones): the
    trajectories alone (probe trials cannot move a network with `W_in = 0`) see only the origin."""
    ens = cj.stack_members([decoupled([1.5, 3.0, 0.5, 0.2])])
    fp = fixed_point_stage(ens, config=SMALL)[0]
    assert by_index(fp) == {0: 4, 1: 4, 2: 1}
    only_trajectories = fixed_point_stage(
        ens,
        config=FixedPointConfig(n_candidates=256, adam_steps=100, state_space_fraction=0.0, complete=False, restarts=0),
    )[0]
    assert len(only_trajectories) == 1  # the origin


def test_state_space_candidates_cover_the_activation_range():
    ens = cj.stack_members([decoupled([1.5, 3.0, 0.5, 0.2])])
    trials = [np.zeros((2, 10, 1), np.float32)]
    cfg = FixedPointConfig(n_candidates=200, state_space_fraction=0.5)
    h0, steps = fixed_point_candidates(ens, trials, cfg, key=jax.random.key(0))
    assert h0.shape == (1, 200, 4) and steps.shape == (1, 200)
    assert np.all(h0[0, :100] == 0)  # the trajectories stay at the origin
    space = h0[0, 100:]
    assert np.all((space > -1) & (space < 1)) and space.std(axis=0).min() > 0.4  # uniform on (-1, 1)^4
    assert np.all(steps[0, :100] == 0) and np.all(steps[0, 100:150] >= 1) and np.all(steps[0, 150:] == 0)


@pytest.fixture(scope="module")
def trained3():
    ens = cj.load_npz(DATA / "flipflop_n64_k2.npz")
    return ens, fixed_point_stage(ens, cj.FlipFlopConfig())[0]


def test_trained_3bit_members_have_the_5x5x5_grid(trained3):
    _, fp = trained3
    for k in range(2):
        # (3 choose k) 2^k 3^(3-k): 27 stable, 54, 36, 8 saddles of index 1, 2, 3
        assert by_index(fp, k) == {i: math.comb(3, i) * 2**i * 3 ** (3 - i) for i in range(4)}


@pytest.fixture(scope="module")
def trained4():
    """Members 0 and 5 of `ctrnn-jax train --n-bits 4` (default settings: 8 members, N = 64, seed 0, 8000
    steps; test MSE 0.018 and 0.021), the two of the eight that hold all 81 = 3⁴ attractors."""
    ens = cj.load_npz(DATA / "flipflop4_n64_k2.npz")
    return ens, fixed_point_stage(ens, cj.FlipFlopConfig(n_bits=4))[0]


def test_trained_4bit_members_have_the_5x5x5x5_grid(trained4):
    _, fp = trained4
    for k in range(2):
        # (4 choose k) 2^k 3^(4-k): 81 stable, 216, 216, 96, 16 saddles of index 1, 2, 3, 4
        assert by_index(fp, k) == {i: math.comb(4, i) * 2**i * 3 ** (4 - i) for i in range(5)}
        out = fp.outputs[(fp.member == k) & fp.is_stable]
        assert len({tuple(np.round(o).astype(int)) for o in out}) == 81  # every level of {-1, 0, 1}^4


def test_trained_3bit_points_are_fixed_points(trained3):
    ens, fp = trained3
    for k in range(2):  # the fixed points (the exact ones; analysed slow points move slowly)
        model = cj.get_member(ens, k)
        r = jax.vmap(lambda h: model.step(h, jnp.zeros(3)) - h)(jnp.asarray(fp.points[(fp.member == k) & fp.exact]))
        assert float(jnp.max(jnp.abs(r))) < 1e-5
        # each stable point reads out one of the 27 levels {-1, 0, 1}^3
        out = fp.outputs[(fp.member == k) & fp.is_stable & fp.exact]
        assert len({tuple(np.round(o).astype(int)) for o in out}) == 27


def test_completion_never_loses_points(bistable4):
    ens, fp = bistable4
    again = cj.complete_saddles(ens, np.zeros(1), fp, SMALL)
    assert len(again) == len(fp)
    assert np.allclose(np.sort(again.points, axis=0), np.sort(fp.points, axis=0), atol=1e-5)


def test_repr_and_html_table(bistable4):
    _, fp = bistable4
    text = repr(fp)
    assert "81 fixed points" in text and "index 4" in text
    html = fp._repr_html_()
    assert html.count("<tr>") == 2 and "<th>index 4</th>" in html


def test_config_is_validated_and_round_trips():
    cfg = FixedPointConfig(n_candidates=64, tol_q=1e-9, dtype="float64")
    assert FixedPointConfig.from_dict(cfg.to_dict()) == cfg
    for bad in (
        {"n_candidates": 1},
        {"state_space_fraction": 1.5},
        {"tol_q": -1.0},
        {"learning_rate": math.inf},
        {"dtype": "int32"},
        {"neighbours": 0},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            FixedPointConfig(**bad)
    with pytest.raises(ValueError, match="unknown"):
        FixedPointConfig.from_dict({"candidates": 3})


def test_written_fixed_points_keep_their_config(bistable4, tmp_path):
    import json

    from ctrnn_jax.io._fixed_point_files import fixed_point_config_path, write_fixed_points

    ens, fp = bistable4
    found, per_member, _ = write_fixed_points(ens, tmp_path / "fp.npz", config=SMALL)
    assert per_member is None  # no task, so no memory states
    assert FixedPointConfig.from_dict(json.loads(fixed_point_config_path(tmp_path / "fp.npz").read_text())) == SMALL
    assert by_index(cj.FixedPoints.from_npz(tmp_path / "fp.npz")) == by_index(fp)
    with pytest.raises(ValueError, match="memory states"):
        write_fixed_points(ens, tmp_path / "fp2.npz", config=SMALL, cube_json=tmp_path / "cube.json")


def _points_where(fp, keep):
    """The fixed points of `fp` where `keep` (per point), slow points unchanged."""
    import dataclasses

    per_point = {
        f.name
        for f in dataclasses.fields(fp)
        if f.name not in ("slow_member", "slow_points", "slow_q")
        and isinstance(getattr(fp, f.name), np.ndarray)
        and getattr(fp, f.name).shape[:1] == (len(fp),)
    }
    return dataclasses.replace(fp, **{name: getattr(fp, name)[keep] for name in per_point})


def test_completion_stops_a_member_at_max_points(trained3):
    ens, fp = trained3
    stable = _points_where(fp, fp.is_stable & fp.exact)  # the 27 attractors of each member, no saddle
    assert [int(np.sum(stable.member == k)) for k in range(2)] == [27, 27]
    # both members at the bound: no round at all
    assert len(cj.complete_saddles(ens, np.zeros(3), stable, FixedPointConfig(max_points=27))) == 54
    # member 1 one point below it: member 1 alone is completed (its saddles found), member 0 left as it is
    fewer = _points_where(stable, np.arange(len(stable)) != np.flatnonzero(stable.member == 1)[0])
    again = cj.complete_saddles(ens, np.zeros(3), fewer, FixedPointConfig(max_points=27))
    assert int(np.sum(again.member == 0)) == 27
    assert int(np.sum((again.member == 1) & (again.n_unstable == 1))) > 0
    with pytest.raises(ValueError, match="max_points"):
        FixedPointConfig(max_points=0)


def test_a_completion_round_computes_only_the_members_with_work():
    from ctrnn_jax.dynamics._fixed_points import _working_members

    e, w = np.zeros((0, 2)), np.ones((3, 2))
    assert _working_members([e, e, e]) == []
    assert _working_members([e, w, e, e, e, e, e, e]) == [1]  # one busy member of 8: a batch of 1
    assert _working_members([w, e, w, e, w, e, e, e]) == [0, 2, 4, 0]  # 3 busy: padded to 4 with the first
    assert _working_members([w, w, w]) == [0, 1, 2]  # never more rows than members
