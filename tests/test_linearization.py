"""The linearization with inputs and the continuation along an input path (issue #33), on systems whose
answers are known: a linear network, a 1-D bistable unit's saddle-node, a 2-D map with a Hopf point, a
hand-built line attractor's selection vector."""

import dataclasses
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ctrnn_jax as cj
from ctrnn_jax import AbstractRNN
from ctrnn_jax.dynamics import FixedPoints
from ctrnn_jax.dynamics._continuation import follow_fixed_points
from ctrnn_jax.dynamics._linearization import linearize, linearize_states, prediction_error


def _ctrnn(W, W_in, b=None, alpha=1.0, activation="tanh"):
    """A one-member CTRNN with the given weights (N = len(W), M = W_in.shape[1], O = 1)."""
    n, m = np.shape(W_in)
    ens = cj.make_ensemble(
        cj.EnsembleConfig(members=1, units=n, alpha=alpha, activation=activation), key=jax.random.key(0)
    )
    if ens.n_inputs != m:  # the config's inputs: the flip-flop's 3
        raise AssertionError
    b = np.zeros(n) if b is None else b
    return eqx.tree_at(
        lambda e: (e.W_rec, e.W_in, e.b),
        ens,
        (jnp.asarray(W, jnp.float32)[None], jnp.asarray(W_in, jnp.float32)[None], jnp.asarray(b, jnp.float32)[None]),
    )


def _points(states, inputs, n_members=1, member=None):
    """A FixedPoints of `states` `(P, S)` (the other fields are not used here)."""
    states = np.asarray(states, np.float64)
    p, s = states.shape
    member = np.zeros(p, int) if member is None else np.asarray(member)
    return FixedPoints(
        n_members=n_members,
        inputs=np.asarray(inputs, np.float64),
        member=member,
        points=states,
        q=np.zeros(p),
        jacobians=np.zeros((p, s, s)),
        eigvals=np.zeros((p, s), complex),
        eigvecs=None,
        is_stable=np.zeros(p, bool),
        is_stable_ct=np.zeros(p, bool),
        n_unstable=np.zeros(p, int),
        outputs=np.zeros((p, 1)),
        slow_member=np.zeros(0, int),
        slow_points=np.zeros((0, s)),
        slow_q=np.zeros(0),
    )


def test_a_linear_network_is_its_own_linearization():
    rng = np.random.default_rng(0)
    W, W_in, b = rng.normal(size=(5, 5)) * 0.3, rng.normal(size=(5, 3)), rng.normal(size=5) * 0.1
    ens = _ctrnn(W, W_in, b, alpha=0.5, activation="linear")
    h_star = np.linalg.solve(np.eye(5) - W, b)  # F(h) = h at u = 0
    lin = linearize(ens, _points(h_star[None], np.zeros((1, 3))))
    np.testing.assert_allclose(lin.A[0], 0.5 * np.eye(5) + 0.5 * W, atol=1e-6)
    np.testing.assert_allclose(lin.B[0], 0.5 * W_in, atol=1e-6)
    np.testing.assert_allclose(lin.left[0] @ lin.right[0], np.eye(5), atol=1e-10)  # l_i · r_j = δ_ij
    for i in range(5):  # left eigenvectors: l A = λ l
        np.testing.assert_allclose(lin.left[0, i] @ lin.A[0], lin.eigvals[0, i] * lin.left[0, i], atol=1e-6)
    h, u = h_star + rng.normal(size=5), rng.normal(size=3)  # far from the point: still exact
    true = np.asarray(jax.vmap(lambda m: m.step(jnp.asarray(h, jnp.float32), jnp.asarray(u, jnp.float32)))(ens))[0]
    np.testing.assert_allclose(lin.predict(h, u)[0], true, atol=1e-5)
    err = prediction_error(ens, lin, radii=(1e-2, 1.0), steps=(1, 5))
    assert err.error.shape == (1, 2, 2) and err.error.max() < 1e-4
    # at a state that is not a fixed point (a slow point's case) the affine iterate, drift included, is exact
    away = linearize_states(ens, [0], (h_star + 0.3)[None], np.zeros((1, 3)))
    np.testing.assert_allclose(away.drift[0], 0.5 * (W @ (h_star + 0.3) + b) - 0.5 * (h_star + 0.3), atol=1e-5)
    assert prediction_error(ens, away, radii=(1e-1, 1.0), steps=(5, 1)).error.max() < 1e-4


def test_the_prediction_error_of_a_smooth_network_shrinks_in_proportion_to_the_distance():
    """tanh with a bias: the remainder is quadratic, so error / r halves when r halves (ratio 0.1 per decade)."""
    ens = _ctrnn([[0.5]], [[1.0, 0.0, 0.0]], b=[0.3])
    h = 0.0
    for _ in range(100):
        h = np.tanh(0.5 * h + 0.3)
    lin = linearize(ens, _points([[h]], np.zeros((1, 3))))
    err = prediction_error(ens, lin, radii=(1e-2, 1e-1), steps=(1,), n_directions=2).error[0, :, 0]
    assert 0.07 < err[0] / err[1] < 0.13, err


def test_the_selection_vector_of_a_hand_built_line_attractor():
    """W = R diag(1, 0.5, 0.2) R⁻¹ with R not orthogonal: the line attractor's direction r = R[:, 0] and its
    selection vector l = (R⁻¹)[0] differ; an input b moves the state along the line by l · b per step."""
    rng = np.random.default_rng(1)
    R = np.array([[1.0, 0.9, 0.0], [0.2, 1.0, 0.7], [0.6, 0.0, 1.0]])  # far from orthogonal
    W = R @ np.diag([1.0, 0.5, 0.2]) @ np.linalg.inv(R)
    W_in = rng.normal(size=(3, 3))
    ens = _ctrnn(W, W_in, activation="linear")
    lin = linearize(ens, _points(np.zeros((1, 3)), np.zeros((1, 3))))
    r = R[:, 0] / np.linalg.norm(R[:, 0])
    r = r * np.sign(r[np.argmax(np.abs(r))])
    left = np.linalg.inv(R)[0] * np.linalg.norm(R[:, 0]) * np.sign(R[np.argmax(np.abs(R[:, 0])), 0])
    np.testing.assert_allclose(lin.slow_directions(1)[0, :, 0], r, atol=1e-5)
    np.testing.assert_allclose(lin.selection_vectors(1)[0, 0], left, atol=1e-4)
    np.testing.assert_allclose(lin.input_overlaps(1)[0, 0], left @ W_in, atol=1e-4)
    assert abs(lin.selection_vectors(1)[0, 0] @ lin.slow_directions(1)[0, :, 0] - 1) < 1e-6
    assert abs(r @ left / np.linalg.norm(left) - 1) > 0.1  # not the same direction: the test can tell them apart


def test_the_input_jacobian_of_every_cell_is_the_finite_difference():
    for cell in ("gru", "lstm", "ugrnn"):
        ens = cj.make_ensemble(cj.EnsembleConfig(members=2, units=4, cell=cell), key=jax.random.key(3))
        rng = np.random.default_rng(0)
        s, u = rng.normal(size=(2, ens.state_size)) * 0.3, rng.normal(size=(2, 3))
        lin = linearize_states(ens, [0, 1], s, u)
        eps = 1e-3
        for k in range(2):
            model = jax.tree_util.tree_map(lambda a: a[k] if eqx.is_array(a) else a, ens)

            def f(x):
                return np.asarray(model.step(jnp.asarray(s[k], jnp.float32), jnp.asarray(x, jnp.float32)), np.float64)

            fd = np.stack([(f(u[k] + eps * e) - f(u[k] - eps * e)) / (2 * eps) for e in np.eye(3)], 1)
            np.testing.assert_allclose(lin.B[k], fd, atol=2e-3, err_msg=cell)
            np.testing.assert_allclose(lin.left[k] @ lin.right[k], np.eye(ens.state_size), atol=1e-8)


def test_a_bistable_units_saddle_node_is_at_the_analytic_input():
    """h ← tanh(w h + u), w = 2: the stable point h < 0 and the saddle h = 0 meet where w (1 − h²) = 1, at
    u* = atanh(h) − w h with h = −√(1 − 1/w); found within 1e-4 from both sides."""
    w = 2.0
    ens = _ctrnn([[w]], [[1.0, 0.0, 0.0]])
    roots = np.array([-1.0, 0.0, 1.0])
    for _ in range(60):
        roots = roots - (np.tanh(w * roots) - roots) / (w * (1 - np.tanh(w * roots) ** 2) - 1)
    cont = follow_fixed_points(ens, _points(roots[:, None], np.zeros((1, 3))), [1.0, 0.0, 0.0], label="u")
    h = -np.sqrt(1 - 1 / w)
    u_star = np.arctanh(h) - w * h  # ≈ 0.5328 > 0: the input that pushes h up to the fold
    folds = cont.events_of("saddle-node")
    assert len(folds) == 2 and {e["branch"] for e in folds} == {0, 1}  # the stable branch and the saddle's
    for e in folds:
        assert abs(e["param"] - u_star) < 1e-4, (e["param"], u_star)
        assert abs(e["state"][0] - h) < 1e-2
    assert cont.first_loss(0) == pytest.approx(u_star, abs=1e-4)  # the stable point h < 0 disappears there
    assert cont.first_loss(2) is None  # h > 0 stays stable all the way
    assert list(cont.ended) == ["left the path"] * 3
    assert cont.n_unstable[2].max() == 0 and cont.param[2].max() > 1.0
    from ctrnn_jax.analysis import plot_bifurcation_diagram

    fig = plot_bifurcation_diagram(cont)  # the legend counts what the table counts
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["stable", "unstable", "saddle-node (2)"]
    assert "0.5328" in repr(cont) and fig.axes[0].get_xlabel().startswith("u")


class Rotor(AbstractRNN):
    """A 2-D map `s ← (0.8 + x₀) R(θ) s`: the origin is a fixed point at every input, with eigenvalues
    `(0.8 + x₀) e^{±iθ}`: a Hopf point at `x₀ = 0.2`."""

    cell: ClassVar[str] = "rotor"
    W_rec: jax.Array
    W_in: jax.Array
    W_out: jax.Array
    b_out: jax.Array
    activation: str = eqx.field(static=True, default="linear")

    def __init__(self, n_inputs=1, n_units=2, n_outputs=1, *, key=None, activation="linear"):
        t = 0.7
        self.W_rec = jnp.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]], jnp.float32)
        self.W_in = jnp.zeros((2, n_inputs))
        self.W_out = jnp.ones((n_outputs, 2))
        self.b_out = jnp.zeros(n_outputs)
        self.activation = activation

    def step(self, s, x):
        return (0.8 + x[0]) * (self.W_rec @ s)

    def full_states(self, inputs, **options):
        raise NotImplementedError

    def states(self, inputs, **options):
        raise NotImplementedError


def test_a_hopf_point_of_a_cell_of_ones_own():
    ens = jax.tree_util.tree_map(lambda a: a[None], Rotor())
    cont = follow_fixed_points(ens, _points(np.zeros((1, 2)), np.zeros((1, 1))), [0.5], label="x₀")
    hopf = cont.events_of("hopf")
    assert len(hopf) == 1 and abs(hopf[0]["param"] - 0.4) < 1e-4, hopf  # x₀ = 0.2 at p = 0.4 of [0, 0.5]
    assert hopf[0]["stable_lost"] and cont.events_of("saddle-node") == []
    np.testing.assert_allclose(hopf[0]["state"], 0.0, atol=1e-6)


def test_continuation_checks_its_arguments():
    ens = _ctrnn([[2.0]], [[1.0, 0.0, 0.0]])
    fp = _points(np.zeros((1, 1)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="`end` must be a finite input of shape"):
        follow_fixed_points(ens, fp, [1.0, 0.0])
    with pytest.raises(ValueError, match="ds_min <= ds <= ds_max"):
        follow_fixed_points(ens, fp, [1.0, 0.0, 0.0], ds=1.0)
    with pytest.raises(ValueError, match="`max_steps` must be an integer >= 1"):
        follow_fixed_points(ens, fp, [1.0, 0.0, 0.0], max_steps=0)


def test_switching_amplitudes_of_decoupled_bistable_units():
    """Three units h_i ← tanh(2 h_i + u_i), readout z = h / h₊: eight memories. A pulse on channel i against
    bit i removes the memory at the bistable unit's saddle-node u* ≈ 0.5328 (× the amplitude 1); along bit i it
    never does. The network held at each amplitude of the sweep switches first at 0.55: one step above c*."""
    from ctrnn_jax.dynamics._switching import pulse_switching

    w = 2.0
    h = 1.0
    for _ in range(60):
        h = h - (np.tanh(w * h) - h) / (w * (1 - np.tanh(w * h) ** 2) - 1)
    ens = _ctrnn(w * np.eye(3), np.eye(3))
    ens = eqx.tree_at(lambda e: (e.W_out, e.b_out), ens, (jnp.eye(3)[None] / h, jnp.zeros((1, 3))))
    corners = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], float)
    fp = _points(corners * h, np.zeros((1, 3)))
    fp = dataclasses.replace(fp, outputs=corners, n_marginal=np.zeros(8, int))
    sw = pulse_switching(ens, cj.FlipFlopConfig(), fp, hold=1000)
    u_star = np.arctanh(-np.sqrt(1 - 1 / w)) + w * np.sqrt(1 - 1 / w)
    against = sw.memory[np.arange(len(sw)), sw.channel] * sw.sign < 0  # the pulse points against the bit
    assert len(sw) == 8 * 3 * 2 and against.sum() == 24
    np.testing.assert_allclose(sw.continuation[against], u_star, atol=1e-4)
    assert np.all(np.isnan(sw.continuation[~against])) and np.all(np.isnan(sw.simulated[~against]))
    np.testing.assert_allclose(sw.simulated[against], 0.55)
    assert sw.agrees[against].all()
    row = sw.per_channel()[0]
    assert row["switched"] == 4 and row["switch_all"] == pytest.approx(u_star, abs=1e-4) and row["agree"] == 1.0


def test_selection_analysis_of_a_hand_built_line_attractor_in_two_contexts():
    """A linear line attractor (the eigenvalue-1 mode of W = R diag(1, 0.5, 0.2, 0.1) R⁻¹), cues without effect:
    three points along the line in each context; the overlaps are |l · b_m| exactly, the relevant/other ratio
    that of the cued stream (ContextDMConfig: motion in context 0, colour in context 1)."""
    from ctrnn_jax.dynamics._selection import selection_analysis

    R = np.array([[1.0, 0.9, 0.0, 0.2], [0.2, 1.0, 0.7, 0.0], [0.6, 0.0, 1.0, 0.3], [0.0, 0.4, 0.1, 1.0]])
    W = R @ np.diag([1.0, 0.5, 0.2, 0.1]) @ np.linalg.inv(R)
    W_in = np.zeros((4, 4))
    W_in[:, 0], W_in[:, 1] = [1.0, 0.5, -0.3, 0.2], [0.1, -0.4, 0.8, 0.5]
    n = 4
    ens = cj.make_ensemble(cj.EnsembleConfig(members=1, units=n, alpha=1.0, activation="linear"), key=jax.random.key(0))
    ens = eqx.tree_at(lambda e: e.W_in, ens, jnp.zeros((1, n, 4)))  # the context task's 4 inputs
    ens = eqx.tree_at(
        lambda e: (e.W_rec, e.W_in, e.b),
        ens,
        (jnp.asarray(W, jnp.float32)[None], jnp.asarray(W_in, jnp.float32)[None], jnp.zeros((1, n))),
    )
    task = cj.ContextDMConfig()
    line = np.outer([-1.0, 0.0, 1.0], R[:, 0])
    fps = [_points(line, u[None]) for u in task.fixed_point_inputs()]
    sel = selection_analysis(ens, task, fps)
    left = np.linalg.inv(R)[0] * np.linalg.norm(R[:, 0])
    expected = np.abs(left @ W_in)
    assert sel.n_points.tolist() == [[3, 3]] and np.allclose(sel.alignment, 1.0)
    np.testing.assert_allclose(sel.overlap[0, :, :2], np.stack([expected[:2]] * 2), rtol=1e-4)
    np.testing.assert_allclose(sel.ratio[0], [expected[0] / expected[1], expected[1] / expected[0]], rtol=1e-4)
    assert sel.has_line().all() and sel.evidence.tolist() == [0, 1]


def test_the_finder_stores_the_input_jacobian_and_left_vectors_and_files_without_them_still_load(tmp_path):
    """A linear network's one fixed point: `B = a W_in` and `L R = I` stored in `FixedPoints` and its file;
    a file written before they were stored reads with None."""
    rng = np.random.default_rng(1)
    W, W_in, b = rng.normal(size=(4, 4)) * 0.2, rng.normal(size=(4, 3)), rng.normal(size=4) * 0.1
    ens = _ctrnn(W, W_in, b, alpha=0.5, activation="linear")
    fp = cj.find_fixed_points(
        ens,
        np.zeros(3),
        rng.normal(size=(1, 8, 4)),
        cj.FixedPointConfig(eigvecs=True, complete=False, restarts=0),
        newton_starts=0,
    )
    assert int(np.sum(fp.exact)) == 1
    np.testing.assert_allclose(fp.points[0], np.linalg.solve(np.eye(4) - W, b), atol=1e-5)
    assert fp.input_jacobians.shape == (1, 4, 3)
    np.testing.assert_allclose(fp.input_jacobians[0], 0.5 * W_in, atol=1e-6)
    np.testing.assert_allclose(fp.left_eigvecs[0] @ fp.eigvecs[0], np.eye(4), atol=1e-5)
    for i in range(4):  # l A = λ l
        np.testing.assert_allclose(
            fp.left_eigvecs[0, i] @ fp.jacobians[0], fp.eigvals[0, i] * fp.left_eigvecs[0, i], atol=1e-5
        )
    fp.to_npz(tmp_path / "fp.npz")
    back = FixedPoints.from_npz(tmp_path / "fp.npz")
    np.testing.assert_array_equal(back.input_jacobians, fp.input_jacobians)
    np.testing.assert_array_equal(back.left_eigvecs, fp.left_eigvecs)
    np.testing.assert_array_equal(back.select(0).input_jacobians, fp.input_jacobians)
    with np.load(tmp_path / "fp.npz") as z:  # as written before: no B, no left vectors, no eigenvectors
        old = {k: z[k] for k in z.files if k not in ("input_jacobians", "left_eigvecs", "eigvecs")}
    np.savez(tmp_path / "old.npz", **old)
    back = FixedPoints.from_npz(tmp_path / "old.npz")
    assert back.input_jacobians is None and back.left_eigvecs is None and back.eigvecs is None
    np.testing.assert_array_equal(back.points, fp.points)
    with pytest.raises(ValueError, match="input_jacobians"):
        dataclasses.replace(fp, input_jacobians=np.zeros((2, 4, 3)))
