"""`ctrnn-jax analyze`: the one analysis (`analyze`) of a run folder or an `ensemble.npz`, written as
`report.md`, `analysis.json` and a `figures/` folder (PNG + PDF)."""

import dataclasses
from pathlib import Path

import jax
import numpy as np

from ..dynamics._config import FixedPointConfig
from ..dynamics._fixed_points import FixedPoints
from ..training._ensemble import make_ensemble
from ._analyze import REPORT, Analysis, analyze


def load_analysis_inputs(path: str | Path, *, task=None):
    """`(ensemble, task, run_config)` of a run folder (its `config.json` gives the task; `task` must then be
    None or its name) or of a bare `ensemble.npz` (`task`: a task, a registered name, or None for what its
    sizes say: the 3-bit flip-flop when M = O = 3, else no task; see `task_for_ensemble`)."""
    from ..io._run import load_run_ensemble, task_for_ensemble
    path = Path(path)
    ensemble, config = load_run_ensemble(path)
    if config is None:
        return ensemble, task_for_ensemble(ensemble, task), None
    if task is not None and (task if isinstance(task, str) else getattr(task, "name", None)) != config.task.name:
        raise ValueError(f"{path}: a run folder of the {config.task.name} task (config.json); `task` is for a "
                         "bare ensemble.npz.")
    return ensemble, config.task, config


def analyze_run(path: str | Path, *, out_dir: str | Path | None = None, seed: int = 0, log=print,
                fp_config: FixedPointConfig | None = None, task=None, inputs=None) -> Path:
    """`analyze` a run folder (or an `ensemble.npz`) and `Analysis.write` the result; returns `report.md`'s path.

    **Arguments:**

    - `path`: a run folder or an `ensemble.npz`.
    - `out_dir`: where to write (default: the run folder, or `<npz stem>_report/` next to an npz file).
    - `seed`: seed of the sampled trials; `fp_config`: the `FixedPointConfig` (default
      `FixedPointConfig(seed=seed, eigvecs=True)`).
    - `task`: for a bare `ensemble.npz`, its task (an object or a registered name; see
      `load_analysis_inputs`).
    - `inputs`: constant inputs of the fixed points (default the task's, zeros without a task).
    - `log`: a function of one string, told what is being done.

    A run folder's training losses (`metrics.csv`) and its members' initial `W_rec` are drawn; its
    `fixed_points.npz` is reused when it belongs to this ensemble and the task's constant inputs.
    """
    from ..io._run import FIXED_POINTS, METRICS, read_losses
    path = Path(path)
    ensemble, task, config = load_analysis_inputs(path, task=task)
    run_dir = path if path.is_dir() else None
    out = Path(out_dir) if out_dir is not None else (run_dir if run_dir else path.with_name(path.stem + "_report"))
    k = ensemble.W_out.shape[0]
    losses = read_losses(run_dir / METRICS, k) if run_dir else None
    fixed_points = None
    if run_dir is not None and inputs is None and (run_dir / FIXED_POINTS).is_file():
        stored = FixedPoints.from_npz(run_dir / FIXED_POINTS)
        if stored.n_members == k and stored.points.shape[1:] == (ensemble.state_size,) and task is not None \
                and np.asarray(task.fixed_point_inputs()).shape[0] == 1:
            fixed_points = stored
    initial = None
    if config is not None and ensemble.recurrent_matrix is not None:
        k_model, _ = jax.random.split(jax.random.key(config.train.seed))
        initial = np.asarray(make_ensemble(config.ensemble, key=k_model).W_rec)
    result = analyze(ensemble, task, config=fp_config or FixedPointConfig(seed=seed, eigvecs=True), inputs=inputs,
                     fixed_points=fixed_points, threshold=config.threshold if config else 0.02, losses=losses,
                     seed=seed, source=str(path), log=log)
    if initial is not None:
        result = dataclasses.replace(result, initial_W_rec=initial[result.best])
    log(f"analysed {k} members; best member {result.best}")
    return result.write(out, fixed_points=fixed_points is None)


__all__ = ["Analysis", "REPORT", "analyze_run", "load_analysis_inputs"]
