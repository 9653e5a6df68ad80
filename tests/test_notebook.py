"""Research scripting, as in a notebook: train a tiny ensemble, analyse it, and get Python objects and
matplotlib Figures back without a file being written."""

import os

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import ctrnn_jax as cj


def test_train_analyze_and_get_figures_without_touching_the_disk(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = cj.FlipFlopConfig(length=120, gaps=(20, 30), first_onset=(5, 20))
    trainer = cj.EnsembleTrainer(
        cj.EnsembleConfig(members=2, units=8, alpha=0.5),
        cj.TrainConfig(steps=30, batch_size=4, steps_per_call=10),
        task,
    )
    state, losses = trainer.train(trainer.init(), progress=cj.NoProgress())
    config = cj.FixedPointConfig(n_candidates=32, n_trials=2, adam_steps=30, restarts=0, completion_rounds=2)
    result = cj.analyze(state.model, task, config=config, losses=losses, robustness=False)

    # the results are objects: evaluation, fixed points, memory states
    inputs, targets, _ = task.test_set()
    mse = cj.evaluate(state.model, inputs, targets)["mse"]
    np.testing.assert_allclose(result.evaluation["mse"], mse, rtol=1e-5)
    assert result.best == int(np.argmin(mse))
    fp = result.fixed_points[0]
    for k in range(2):
        model = cj.get_member(state.model, k)
        pts = jnp.asarray(fp.points[fp.member == k])
        if len(pts):
            r = jax.vmap(lambda h: model.step(h, jnp.zeros(3)) - h)(pts)
            assert float(jnp.max(jnp.abs(r))) < 1e-4  # they are fixed points
    assert len(result.memory_states) == 2 and result.W_rec_outside.shape == (2,)
    assert "best member" in repr(result) and "<table>" in result._repr_html_()

    # every figure comes back as a Figure, and nothing was written
    figures = result.figures()
    assert {"test_set", "state_space", "eigenvalues", "training_curves", "fixed_point_spectra"} <= set(figures)
    assert all(isinstance(f, Figure) for f in figures.values())
    assert os.listdir(tmp_path) == []
