"""Slow points analysed, the marginal classification, memory states and the topology over memory states,
on networks with closed-form answers: three decoupled bistable tanh units (`W_DIAG`; 8 attractors, the cube),
and the same with a fourth, linear unit of self-weight exactly 1 (a line attractor: 8 lines of marginal
states, one per corner)."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _analytic import H_STAR, W_DIAG, line_attractor_network  # tests/_analytic.py

from ctrnn_jax import (
    CTRNN,
    FixedPointConfig,
    FixedPoints,
    FlipFlopConfig,
    find_fixed_points,
    stack_members,
)
from ctrnn_jax.dynamics import (
    MemoryStates,
    memory_states,
    slow_threshold,
    topology_graph,
)
from ctrnn_jax.dynamics._fixed_point_set import count_marginal
from ctrnn_jax.tasks._task import READOUT_TOLERANCE, task_hold_steps

N, M = 4, 3
CORNER_READOUTS = np.asarray(list(itertools.product((-1.0, 1.0), repeat=3)))
NEWTON = FixedPointConfig(restarts=0, complete=False, eigvecs=True, adam_steps=0, newton_steps=4)
LINE = (-0.6, -0.2, 0.2, 0.6)  # positions on the line attractor where the points are placed


def bistable_network():
    """Units 0-2 bistable (W_rec = diag(w)), unit 3 silent, a = 1; readout h_i / h_i*: the cube's corners."""
    model = CTRNN(M, N, 3, key=jax.random.key(0), alpha=1.0)
    w_out = np.zeros((3, N))
    w_out[np.arange(3), np.arange(3)] = 1 / H_STAR
    return eqx.tree_at(
        lambda m: (m.W_rec, m.W_in, m.b, m.W_out, m.b_out),
        model,
        (
            jnp.asarray(np.diag([*W_DIAG, 0.0]), jnp.float32),
            jnp.zeros((N, M)),
            jnp.zeros(N),
            jnp.asarray(w_out, jnp.float32),
            jnp.zeros(3),
        ),
    )


def analytic_points(line=(0.0,)):
    """`(27·L, N)` the 27 analytic points (each bistable unit at −h*, 0 or +h*) with unit 3 at each of `line`."""
    levels = [(-h, 0.0, h) for h in H_STAR]
    return np.asarray([[*p, t] for t in line for p in itertools.product(*levels)])


# ---------------------------------------------------------------------------------------------------
# (b) bistable units: the memory states are the 8 attractors, the graph is the cube, as before


@pytest.fixture(scope="module")
def cube():
    ens = stack_members([bistable_network()])
    return ens, find_fixed_points(ens, np.zeros(M), analytic_points()[None], NEWTON)


def test_bistable_memory_states_are_the_attractors(cube):
    _, fp = cube
    assert fp.exact.all() and np.bincount(fp.n_unstable).tolist() == [8, 12, 6, 1]
    assert (fp.n_marginal == 0).all() and set(fp.kind[fp.is_stable]) == {"stable"}
    for readouts in (CORNER_READOUTS, None):  # by label and distance, or by distance only: the same
        ms = memory_states(fp, readouts=readouts)
        assert ms.n_states(0) == 8 and ms.counts(0) == {"attractor": 8}
        # one state per stable point, in the points' order
        np.testing.assert_array_equal(ms.representative[0], np.flatnonzero(fp.is_stable))
        assert [len(p) for p in ms.points[0]] == [1] * 8 and (ms.dimension[0] == 0).all()
    ms = memory_states(fp, readouts=CORNER_READOUTS)
    np.testing.assert_array_equal(np.sort(ms.label[0]), np.arange(8))  # one corner each
    assert ms.scale[0] == pytest.approx(0.25 * 2 * H_STAR.min(), rel=1e-5)  # a quarter of the closest pair
    d = ms.to_dict()["members"][0]
    assert d["n_states"] == 8 and d["by_mechanism"] == {"attractor": 8}


def test_bistable_graph_is_the_cube_unchanged(cube):
    ens, fp = cube
    for readouts in (None, CORNER_READOUTS):
        g = topology_graph(ens, fp, readouts=readouts, hold_steps=280)[0]
        # the nodes are the stable points themselves, in their order (the graph of before memory states)
        np.testing.assert_array_equal(g.points, fp.points[fp.is_stable].astype(np.float64))
        assert g.n_nodes == 8 and g.n_edges == 12 and g.n_unmatched == 0
        assert {tuple(r) for r in g.labels.tolist()} == set(itertools.product((-1, 1), repeat=3))
        assert all(np.sum(g.labels[i] != g.labels[j]) == 1 for i, j in g.edges)
        assert len(g.labelled_edges()) == 12 and (g.dimension == 0).all()
        assert sorted((d, len(s)) for d, s in g.higher) == [(2, 4)] * 6 + [(3, 8)]


# ---------------------------------------------------------------------------------------------------
# (a) a known marginal manifold: the line attractor beside the bistable units


@pytest.fixture(scope="module")
def line():
    ens = stack_members([line_attractor_network()])
    return ens, find_fixed_points(ens, np.zeros(M), analytic_points(LINE)[None], NEWTON)


def test_line_attractor_points_are_marginal_of_dimension_1(line):
    _, fp = line
    assert len(fp) == 27 * len(LINE)
    # every point has the eigenvalue 1 of the line exactly, and the index of its bistable units
    assert (fp.n_marginal == 1).all() and np.all(np.min(np.abs(np.abs(fp.eigvals) - 1), axis=1) < 1e-6)
    assert np.bincount(fp.n_unstable).tolist() == [8 * 4, 12 * 4, 6 * 4, 1 * 4]
    assert set(fp.kind[fp.n_unstable == 0]) == {"marginal"} and not fp.is_stable.any()


def test_line_attractor_memory_states_are_8_marginal_lines(line):
    _, fp = line
    ms = memory_states(fp, readouts=CORNER_READOUTS)
    assert ms.n_states(0) == 8 and ms.counts(0) == {"marginal manifold of dimension 1": 8}
    assert ms.scale[0] == np.inf  # no stable point: one state per label
    assert sorted(ms.label[0].tolist()) == list(range(8)) and (ms.dimension[0] == 1).all()
    for pts in ms.points[0]:  # each state: the 4 points of one corner's line
        assert len(pts) == len(LINE)
        assert np.ptp(np.sign(fp.points[pts, :3]), axis=0).max() == 0
        np.testing.assert_allclose(np.sort(fp.points[pts, 3]), LINE, atol=1e-6)
    # by distance only, with a scale below the corners' spacing and above the points' along a line
    assert memory_states(fp, scale=0.5).counts(0) == {"marginal manifold of dimension 1": 8}


def test_line_attractor_graph_is_the_cube_over_memory_states(line):
    ens, fp = line
    g = topology_graph(ens, fp, readouts=CORNER_READOUTS, hold_steps=280)[0]
    assert g.n_nodes == 8 and (g.dimension == 1).all()
    # every index-1 saddle (4 per edge of the cube, one per place on the line) joins the two corners
    # that differ in its unit; the saddles of one edge are one manifold: one edge
    assert g.n_unmatched == 0 and g.n_edges == 12
    assert all(np.sum(g.labels[i] != g.labels[j]) == 1 for i, j in g.edges)
    assert len(g.labelled_edges()) == 12


# ---------------------------------------------------------------------------------------------------
# (c) the slow threshold


def test_slow_threshold_rule():
    ens = stack_members([bistable_network(), bistable_network()])
    task = FlipFlopConfig()
    assert task.hold_steps() == task_hold_steps(task) == 280  # channel C holds 4 periods of 70 steps
    norm = np.linalg.norm(np.asarray(ens.W_out[0], np.float64), 2)
    expected = 0.5 * (READOUT_TOLERANCE / (norm * 280)) ** 2
    np.testing.assert_allclose(slow_threshold(ens, task), [expected, expected], rtol=1e-6)
    # a point whose drift over the hold moves the readout by exactly the tolerance sits on the threshold
    assert norm * 280 * np.sqrt(2 * expected) == pytest.approx(READOUT_TOLERANCE)


GHOST_W, GHOST_B = 2.0, 0.5328 + 8e-3  # unit 3: just past the saddle-node of tanh(2h + b) = h at b ≈ 0.5328


def _bisect(f, lo, hi):
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.sign(f(mid)) == np.sign(f(lo)) else (lo, mid)
    return 0.5 * (lo + hi)


def ghost_network():
    """`bistable_network` with unit 3 `h ← tanh(2 h + b)` just past its saddle-node: one root (upper branch)
    and a ghost near h = −0.71, where q has a local minimum > 0: a genuine slow point, far from every root."""
    model = bistable_network()
    return eqx.tree_at(
        lambda m: (m.W_rec, m.b),
        model,
        (jnp.asarray(np.diag([*W_DIAG, GHOST_W]), jnp.float32), jnp.asarray([0.0, 0.0, 0.0, GHOST_B], jnp.float32)),
    )


def test_points_just_below_the_threshold_are_analysed_above_only_listed():
    ens = stack_members([ghost_network()])
    g = lambda h: np.tanh(GHOST_W * h + GHOST_B) - h  # noqa: E731
    root = _bisect(g, 0.5, 1.0)
    ghost = _bisect(lambda h: GHOST_W / np.cosh(GHOST_W * h + GHOST_B) ** 2 - 1, -0.9, -0.5)
    corners = np.asarray([[*c[:3], root] for c in analytic_points() if np.all(c[:3] != 0)])
    q_ghost = 0.5 * g(ghost) ** 2
    slow_q = q_ghost / 0.9  # the ghost's floor just below the threshold
    # a second slow point left of the ghost, at 1.1 slow_q
    left = _bisect(lambda h: 0.5 * g(h) ** 2 - 1.1 * slow_q, ghost - 0.3, ghost)
    extra = np.asarray([[*corners[0, :3], ghost], [*corners[7, :3], left]])
    config = FixedPointConfig(
        restarts=0, complete=False, adam_steps=0, newton_steps=0, slow_tol=1e-3, outlier_scale=None
    )
    fp = find_fixed_points(ens, np.zeros(M), np.concatenate([corners, extra])[None], config, slow_q=slow_q)
    assert fp.exact.tolist() == [True] * 8 + [False]  # the exact points first, then the analysed slow one
    np.testing.assert_allclose(fp.points[8], extra[0], atol=1e-6)
    assert fp.q[8] == pytest.approx(0.9 * slow_q, rel=1e-3) and fp.kind[8] == "marginal"  # g' = 0: λ = 1
    # both slow points are listed, as before; only the one below the threshold is analysed
    np.testing.assert_allclose(np.sort(fp.slow_q), [0.9 * slow_q, 1.1 * slow_q], rtol=1e-3)
    # a slow point on a fixed point's slope is that fixed point, not a slow point: dropped from both lists
    slope = np.asarray([[*corners[3, :3], root + 0.003]])
    near = find_fixed_points(ens, np.zeros(M), np.concatenate([corners, slope])[None], config, slow_q=1.0)
    assert len(near) == 8 and near.exact.all() and len(near.slow_q) == 0
    plain = find_fixed_points(ens, np.zeros(M), np.concatenate([corners, extra])[None], config)
    assert len(plain) == 8 and plain.exact.all() and len(plain.slow_q) == 2
    np.testing.assert_array_equal(plain.points, fp.points[:8])
    with pytest.raises(ValueError, match="`slow_q` must be None"):
        find_fixed_points(ens, np.zeros(M), corners[None], config, slow_q=[1e-5, 1e-5])
    with pytest.raises(ValueError, match="`marginal_tol` must be in"):
        FixedPointConfig(marginal_tol=1.0)


def test_the_readout_drift_rule_keeps_slow_points_the_readout_does_not_see():
    """`slow_readout`: a slow point is analysed when its readout moves at most that much per step, whatever
    its `q`; the task's rule in `fixed_point_stage` (tol_readout / T_hold). The same slow point (the ghost of
    unit 3, `ghost_network`) in a network that does not read unit 3 and in one that does."""
    silent_net = ghost_network()
    w_out = np.asarray(silent_net.W_out).copy()
    w_out[0, 3] = 1.0  # output 0 also reads unit 3: the ghost's drift moves it
    seen_net = eqx.tree_at(lambda m: m.W_out, silent_net, jnp.asarray(w_out, jnp.float32))
    g = lambda h: np.tanh(GHOST_W * h + GHOST_B) - h  # noqa: E731
    root = _bisect(g, 0.5, 1.0)
    ghost = _bisect(lambda h: GHOST_W / np.cosh(GHOST_W * h + GHOST_B) ** 2 - 1, -0.9, -0.5)
    corners = np.asarray([[*c[:3], root] for c in analytic_points() if np.all(c[:3] != 0)])
    point = np.asarray([*corners[0, :3], ghost])
    config = FixedPointConfig(
        restarts=0, complete=False, adam_steps=0, newton_steps=0, slow_tol=1e-4, outlier_scale=None
    )
    x0 = np.concatenate([corners, [point]])[None]
    for net in (silent_net, seen_net):
        both = find_fixed_points(stack_members([net]), np.zeros(M), x0, config, slow_q=1e-4)
        assert int(np.sum(~both.exact)) == 1  # slow (q <= 1e-4) ...
        assert both.q[8] == pytest.approx(0.5 * g(ghost) ** 2, rel=1e-3)  # far above a strict bound such as 1e-7
    fp = find_fixed_points(stack_members([silent_net]), np.zeros(M), x0, config, slow_q=1e-4, slow_readout=1e-6)
    assert fp.exact.tolist() == [True] * 8 + [False]  # ... yet only where the readout cannot see it, it passes
    np.testing.assert_allclose(fp.points[8], point, atol=1e-6)
    seen = find_fixed_points(stack_members([seen_net]), np.zeros(M), x0, config, slow_q=1e-4, slow_readout=1e-6)
    assert seen.exact.tolist() == [True] * 8 and len(seen.slow_q) == 1  # listed, not analysed
    with pytest.raises(ValueError, match="`slow_readout` must be None"):
        find_fixed_points(stack_members([silent_net]), np.zeros(M), x0, config, slow_q=1e-4, slow_readout=-1.0)


def test_classification_band():
    lam = np.asarray([[0.5, 0.998], [0.5, 0.9995], [1.0005, 0.5], [1.002, 0.9995], [1.002, 0.5]])
    np.testing.assert_array_equal(count_marginal(lam, 1e-3), [0, 1, 1, 1, 0])


# ---------------------------------------------------------------------------------------------------
# (d) files written before slow points were analysed


def test_old_fixed_points_file_loads(cube, tmp_path):
    _, fp = cube
    fp.to_npz(tmp_path / "new.npz")
    with np.load(tmp_path / "new.npz") as z:  # the old format: no exact, n_marginal, marginal_tol
        old = {name: z[name] for name in z.files if name not in ("exact", "n_marginal", "marginal_tol")}
    np.savez(tmp_path / "old.npz", **old)
    back = FixedPoints.from_npz(tmp_path / "old.npz")
    assert back.exact.all() and back.marginal_tol == 1e-3
    np.testing.assert_array_equal(back.n_marginal, fp.n_marginal)
    np.testing.assert_array_equal(back.points, fp.points)
    again = FixedPoints.from_npz(tmp_path / "new.npz")
    np.testing.assert_array_equal(again.exact, fp.exact)
    assert isinstance(memory_states(back), MemoryStates) and memory_states(back).n_states(0) == 8


def test_a_member_without_memory_states_gets_an_empty_graph():
    """Only a saddle (the origin of the bistable units): no memory state, an empty graph (whose topology
    distances are NaN), not an error."""
    ens = stack_members([bistable_network()])
    fp = find_fixed_points(ens, np.zeros(M), np.zeros((1, 1, N)), NEWTON)
    assert len(fp) == 1 and fp.kind.tolist() == ["saddle"]
    g = topology_graph(ens, fp, readouts=CORNER_READOUTS, hold_steps=280).graphs[0]
    assert g.n_nodes == 0 and g.n_edges == 0 and g.outputs.shape == (0, 3) and g.labels.shape == (0, 3)


def test_per_point_arrays_of_another_length_are_refused(cube):
    """`exact` and `n_marginal` have one entry per point: a mismatch is a clear error at construction, not a
    file that cannot be read back."""
    import dataclasses

    _, fp = cube
    with pytest.raises(ValueError, match="`exact` has shape"):
        dataclasses.replace(fp, exact=fp.exact[:3])
    with pytest.raises(ValueError, match="`n_marginal` has shape"):
        dataclasses.replace(fp, n_marginal=np.zeros(len(fp) + 1, np.int64))
