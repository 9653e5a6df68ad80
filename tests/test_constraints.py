import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ctrnn_jax
from ctrnn_jax.training._constraints import (
    ConstraintConfig,
    Constraints,
    apply_constraints,
    constraint_violations,
    constraints_from_arrays,
    dale_recurrent_init,
    initialize_constrained,
    make_constraints,
)

FULL = ConstraintConfig(
    dale=True,
    excitatory_fraction=0.75,
    rec_density=0.5,
    in_density=0.5,
    out_density=0.5,
    autapses=False,
    dale_readout_excitatory_only=True,
)


def _radius(w):
    return np.max(np.abs(np.linalg.eigvals(np.asarray(w, np.float64))))


def _assert_satisfied(model, cons):
    """Every constraint holds exactly, checked directly on the arrays."""
    w_rec, sign = np.asarray(model.W_rec), np.asarray(cons.sign)
    assert np.all(w_rec[np.asarray(cons.rec_mask) == 0] == 0)
    assert np.all(np.asarray(model.W_in)[np.asarray(cons.in_mask) == 0] == 0)
    assert np.all(np.asarray(model.W_out)[np.asarray(cons.out_mask) == 0] == 0)
    if cons.dale:
        assert np.all(sign[None, :] * w_rec >= 0)
    assert all(float(v) == 0 for v in constraint_violations(model, cons).values())


def test_config_validation():
    with pytest.raises(TypeError, match="`dale` must be a bool"):
        ConstraintConfig(dale=1)
    with pytest.raises(TypeError, match="`rec_density` must be a number"):
        ConstraintConfig(rec_density="0.5")
    with pytest.raises(ValueError, match=r"`excitatory_fraction` must be in \(0, 1\)"):
        ConstraintConfig(excitatory_fraction=1.0)
    for name in ("rec_density", "in_density", "out_density"):
        with pytest.raises(ValueError, match=rf"`{name}` must be in \(0, 1\]"):
            ConstraintConfig(**{name: 0.0})
    with pytest.raises(ValueError, match="requires `dale=True`"):
        ConstraintConfig(dale_readout_excitatory_only=True)
    with pytest.raises(ValueError, match="at least one of each"):  # round(0.8 * 2) = 2 excitatory, 0 inhibitory
        make_constraints(ConstraintConfig(dale=True), 1, 2, 1, key=jax.random.key(0))
    assert ConstraintConfig(dale=True).n_excitatory(10) == 8


def test_config_json_round_trip_and_active():
    cfg = ConstraintConfig(dale=True, rec_density=1, autapses=False)
    assert isinstance(cfg.rec_density, float)
    assert ConstraintConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown ConstraintConfig field"):
        ConstraintConfig.from_dict({"dale": True, "sparsity": 0.1})
    assert not ConstraintConfig().active
    assert ConstraintConfig(autapses=False).active
    assert ConstraintConfig(out_density=0.9).active
    assert cfg.active


def test_masks_exact_density_and_signs(getkey):
    n, m, o = 20, 3, 2
    cons = make_constraints(FULL, m, n, o, key=getkey())
    rec, inp, out, sign = map(np.asarray, (cons.rec_mask, cons.in_mask, cons.out_mask, cons.sign))
    assert rec.dtype == inp.dtype == out.dtype == sign.dtype == np.float32
    assert set(np.unique(rec)) == {0.0, 1.0}
    n_e = 15  # round(0.75 * 20); the first n_E units are excitatory
    np.testing.assert_array_equal(sign, np.r_[np.ones(n_e), -np.ones(n - n_e)])
    assert np.all(np.diag(rec) == 0)
    assert rec.sum() == round(0.5 * n * (n - 1))  # of the off-diagonal entries
    assert inp.sum() == round(0.5 * n * m)
    assert np.all(out[:, n_e:] == 0) and out.sum() == round(0.5 * o * n_e)  # of the excitatory columns
    tiny = make_constraints(ConstraintConfig(rec_density=0.1, autapses=False), 1, 2, 1, key=getkey())
    assert np.asarray(tiny.rec_mask).sum() == 1  # at least one connection, never an autapse
    assert np.all(np.diag(np.asarray(tiny.rec_mask)) == 0)
    dense = make_constraints(ConstraintConfig(), m, n, o, key=getkey())
    assert not dense.dale and np.all(np.asarray(dense.sign) == 1)
    assert all(np.all(np.asarray(x) == 1) for x in (dense.rec_mask, dense.in_mask, dense.out_mask))


def test_apply_idempotent_and_keeps_allowed_entries(getkey):
    model = ctrnn_jax.CTRNN(3, 12, 2, key=getkey())
    cons = make_constraints(FULL, 3, 12, 2, key=getkey())
    projected = apply_constraints(model, cons)
    _assert_satisfied(projected, cons)
    again = apply_constraints(projected, cons)
    for name in ("W_rec", "W_in", "W_out"):
        w, p, q = (np.asarray(getattr(x, name)) for x in (model, projected, again))
        np.testing.assert_array_equal(p, q)
        kept = p != 0
        np.testing.assert_array_equal(p[kept], w[kept])  # allowed entries untouched, bit for bit
    sign = np.asarray(cons.sign)[None, :]
    allowed = (np.asarray(cons.rec_mask) == 1) & (sign * np.asarray(model.W_rec) >= 0)
    np.testing.assert_array_equal(np.asarray(projected.W_rec), np.where(allowed, model.W_rec, 0))


def test_constraint_violations_reports_each_kind(getkey):
    cons = constraints_from_arrays(
        rec_mask=1 - np.eye(3),
        in_mask=[[1], [0], [1]],
        out_mask=[[1, 1, 0]],
        sign=[1, 1, -1],
        n_inputs=1,
        n_units=3,
        n_outputs=1,
    )
    model = ctrnn_jax.CTRNN(1, 3, 1, key=getkey())
    w_rec = jnp.array([[0.7, 0.1, -0.2], [0.0, 0.0, 0.3], [-0.5, 0.2, -0.1]])
    model = eqx.tree_at(
        lambda m: (m.W_rec, m.W_in, m.W_out),
        model,
        (w_rec, jnp.array([[1.0], [-0.4], [1.0]]), jnp.array([[1.0, 1.0, 0.25]])),
    )
    v = {k: float(x) for k, x in constraint_violations(model, cons).items()}
    assert v == pytest.approx({"rec_mask": 0.7, "in_mask": 0.4, "out_mask": 0.25, "dale": 0.5, "autapses": 0.7})


def test_constraints_from_arrays_validation():
    kw = dict(n_inputs=2, n_units=4, n_outputs=1)
    cons = constraints_from_arrays(rec_mask=np.ones((4, 4), bool), sign=[1, 1, 1, -1], **kw)
    assert cons.dale and cons.rec_mask.dtype == jnp.float32 and cons.in_mask.shape == (4, 2)
    assert not constraints_from_arrays(**kw).dale
    with pytest.raises(ValueError, match=r"`rec_mask` must have shape \(4, 4\)"):
        constraints_from_arrays(rec_mask=np.ones((4, 3)), **kw)
    with pytest.raises(ValueError, match=r"`in_mask` must have shape \(4, 2\)"):
        constraints_from_arrays(in_mask=np.ones((2, 4)), **kw)
    with pytest.raises(ValueError, match="`out_mask` must contain only the values 0, 1"):
        constraints_from_arrays(out_mask=np.full((1, 4), 0.5), **kw)
    with pytest.raises(ValueError, match="`sign` must contain only the values -1, 1"):
        constraints_from_arrays(sign=[1, 0, 1, -1], **kw)
    with pytest.raises(ValueError, match=r"`sign` must have shape \(4,\)"):
        constraints_from_arrays(sign=[1, -1], **kw)
    with pytest.raises(ValueError, match="does not fit `model.W_rec`"):
        apply_constraints(ctrnn_jax.CTRNN(2, 5, 1, key=jax.random.key(0)), cons)


def test_dale_init_signs_radius_and_balance(getkey):
    n = 20
    cons = make_constraints(FULL, 2, n, 1, key=getkey())
    w = np.asarray(dale_recurrent_init(getkey(), n, cons.sign, spectral_radius=1.3, rec_mask=cons.rec_mask))
    sign = np.asarray(cons.sign)
    assert np.all(sign[None, :] * w >= 0) and np.all(w[np.asarray(cons.rec_mask) == 0] == 0)
    assert np.count_nonzero(w) == np.asarray(cons.rec_mask).sum()
    assert abs(_radius(w) - 1.3) < 1e-4
    assert np.allclose(w.sum(axis=1), 0.0, atol=1e-5)  # every row balanced: E input cancels I input
    # a row with only excitatory inputs allowed cannot be balanced: it starts at 0
    mask = np.ones((4, 4)) - np.eye(4)
    mask[0, 3] = 0  # unit 3, the only inhibitory one, projects to units 1 and 2 only
    w = np.asarray(dale_recurrent_init(getkey(), 4, [1, 1, 1, -1], rec_mask=mask))
    assert np.all(w[[0, 3]] == 0) and np.all((w[1:3] != 0) == (mask[1:3] == 1))
    assert np.allclose(w.sum(axis=1), 0.0, atol=1e-5)
    assert abs(_radius(w) - 1.0) < 1e-4


def test_dale_init_has_no_outlier_eigenvalue(getkey):
    n = 100  # large enough for the bulk to be a disk
    sign = np.where(np.arange(n) < 80, 1.0, -1.0)
    w = np.asarray(dale_recurrent_init(getkey(), n, sign, spectral_radius=1.0))
    ev = np.sort(np.abs(np.linalg.eigvals(w)))[::-1]
    assert ev[0] / ev[2] < 1.5
    # without the balancing the mean weight gives an isolated eigenvalue ~ N·mean far outside the bulk
    naive = np.abs(np.random.default_rng(0).normal(size=(n, n))) * sign[None, :]
    ev = np.sort(np.abs(np.linalg.eigvals(naive)))[::-1]
    assert ev[0] / ev[2] > 3


def test_initialize_constrained(getkey):
    model = ctrnn_jax.CTRNN(2, 12, 1, key=getkey(), gain=0.9)
    cons = make_constraints(FULL, 2, 12, 1, key=getkey())
    init = initialize_constrained(model, cons, key=getkey())
    _assert_satisfied(init, cons)
    assert abs(_radius(init.W_rec) - 0.9) < 1e-4  # the model's gain carries over
    assert np.allclose(np.asarray(init.W_rec).sum(axis=1), 0.0, atol=1e-5)
    sparse = make_constraints(ConstraintConfig(rec_density=0.5), 2, 12, 1, key=getkey())
    init = initialize_constrained(model, sparse, key=getkey(), spectral_radius=1.2)
    _assert_satisfied(init, sparse)
    assert abs(_radius(init.W_rec) - 1.2) < 1e-4
    dense = make_constraints(ConstraintConfig(in_density=0.5), 2, 12, 1, key=getkey())
    np.testing.assert_array_equal(initialize_constrained(model, dense, key=getkey()).W_rec, model.W_rec)


def test_training_with_projection_keeps_constraints(getkey):
    n, m, o, batch, length = 12, 2, 1, 16, 10
    cons = make_constraints(FULL, m, n, o, key=getkey())
    model = initialize_constrained(ctrnn_jax.CTRNN(m, n, o, key=getkey(), alpha=0.5), cons, key=getkey())
    inputs = jax.random.normal(getkey(), (batch, length, m))
    targets = jnp.tanh(0.3 * jnp.cumsum(inputs[..., :1], axis=1))  # integrate channel 0
    spec = eqx.tree_at(lambda mdl: mdl.alpha, jax.tree_util.tree_map(eqx.is_inexact_array, model), replace=False)
    params, static = eqx.partition(model, spec)
    opt = optax.adam(1e-2)

    def loss_fn(p):
        return jnp.mean((eqx.combine(p, static)(inputs) - targets) ** 2)

    @jax.jit
    def train(params):
        def step(carry, _):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = opt.update(grads, opt_state)
            raw = eqx.combine(eqx.apply_updates(params, updates), static)
            before = jnp.max(jnp.stack(list(constraint_violations(raw, cons).values())))
            params = eqx.filter(apply_constraints(raw, cons), spec)
            return (params, opt_state), (loss, before)

        (params, _), (losses, before) = jax.lax.scan(step, (params, opt.init(params)), length=200)
        return params, losses, before

    params, losses, before = train(params)
    trained = eqx.combine(params, static)
    _assert_satisfied(trained, cons)
    assert np.all(np.diag(np.asarray(trained.W_rec)) == 0)
    assert float(losses[-1]) < 0.5 * float(losses[0])
    assert float(jnp.max(before)) > 0  # the raw Adam steps did violate: the projection did work
    assert not np.array_equal(trained.W_rec, model.W_rec)


def test_projection_over_stacked_ensemble(getkey):
    config = ctrnn_jax.EnsembleConfig(members=3, units=8, inputs=2, outputs=1)
    ensemble = ctrnn_jax.make_ensemble(config, key=getkey())
    keys = jax.random.split(getkey(), 3)
    dense_rec = ConstraintConfig(**{**FULL.to_dict(), "rec_density": 1.0})  # every row can be balanced
    cons = eqx.filter_vmap(lambda k: make_constraints(dense_rec, 2, 8, 1, key=k))(keys)
    assert isinstance(cons, Constraints) and cons.rec_mask.shape == (3, 8, 8) and cons.sign.shape == (3, 8)
    assert not np.array_equal(cons.in_mask[0], cons.in_mask[1])  # each member its own masks
    projected = eqx.filter_jit(eqx.filter_vmap(apply_constraints))(ensemble, cons)
    direct = apply_constraints(ensemble, cons)  # stacked arrays, no vmap
    for k in range(3):
        member = ctrnn_jax.get_member(projected, k)
        member_cons = jax.tree_util.tree_map(lambda x, k=k: x[k], cons)
        _assert_satisfied(member, member_cons)
        np.testing.assert_array_equal(
            member.W_rec, apply_constraints(ctrnn_jax.get_member(ensemble, k), member_cons).W_rec
        )
        np.testing.assert_array_equal(member.W_out, ctrnn_jax.get_member(direct, k).W_out)
    assert constraint_violations(ensemble, cons)["dale"].shape == (3,)
    # one member's constraints shared by the whole ensemble
    shared = jax.tree_util.tree_map(lambda x: x[0], cons)
    for k in range(3):
        _assert_satisfied(ctrnn_jax.get_member(apply_constraints(ensemble, shared), k), shared)
    # constrained initialization, per member, keeps each member's gain (orthogonal, g = 1)
    init = eqx.filter_vmap(lambda mdl, c, k: initialize_constrained(mdl, c, key=k))(ensemble, cons, keys)
    for k in range(3):
        assert abs(_radius(init.W_rec[k]) - 1.0) < 1e-4
        _assert_satisfied(ctrnn_jax.get_member(init, k), jax.tree_util.tree_map(lambda x, k=k: x[k], cons))
