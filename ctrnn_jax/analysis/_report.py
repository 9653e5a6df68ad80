"""`ctrnn-jax analyze`: the one analysis (`analyze`) of a run folder or an `ensemble.npz`, written as
`report.md`, `analysis.json` and a `figures/` folder (PNG + PDF)."""

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..dynamics._config import FixedPointConfig
from ..dynamics._fixed_points import FixedPoints
from ._analyze import REPORT, Analysis, analyze, initial_W_rec


def load_analysis_inputs(path: str | Path, *, task=None):
    """`(ensemble, task, run_config)` of a run folder (its `config.json` gives the task; `task` must then be
    None or its name) or of a bare `ensemble.npz` (`task`: a task, a registered name, or None for what its
    sizes say: the 3-bit flip-flop when M = O = 3, else no task; see `task_for_ensemble`)."""
    from ..io._run import load_run_ensemble, task_for_ensemble
    from ..tasks._tasks import task_spec
    path = Path(path)
    ensemble, config = load_run_ensemble(path)
    if config is None:
        return ensemble, task_for_ensemble(ensemble, task), None
    names = (config.task.name, task_spec(config.task))
    if task is not None and (task not in names if isinstance(task, str) else task != config.task):
        raise ValueError(f"{path}: a run folder of the {config.task.name} task (config.json); `task` is for a "
                         "bare ensemble.npz.")
    return ensemble, config.task, config


def analyze_run(path: str | Path, *, out_dir: str | Path | None = None, seed: int = 0, log=print,
                fp_config: FixedPointConfig | None = None, task=None, inputs=None, overwrite: bool = False) -> Path:
    """`analyze` a run folder (or an `ensemble.npz`) and `Analysis.write` the result; returns `report.md`'s path.

    **Arguments:**

    - `path`: a run folder or an `ensemble.npz`.
    - `out_dir`: where to write (default: the run folder, or `<npz stem>_report/` next to an npz file). Checked
      before any work: never another network's run folder; another network's analysis, a comparison, or
      loose result files only with `overwrite` (see `Analysis.write`).
    - `seed`: seed of the sampled trials; `fp_config`: the `FixedPointConfig` (default
      `FixedPointConfig(seed=seed, eigvecs=True)`).
    - `task`: for a bare `ensemble.npz`, its task (an object or a registered name; see
      `load_analysis_inputs`).
    - `inputs`: constant inputs of the fixed points (default the task's, zeros without a task).
    - `log`: a function of one string, told what is being done.
    - `overwrite`: see `out_dir`.

    A run folder's training losses (`metrics.csv`, checked first) and its members' initial `W_rec` are drawn;
    its `fixed_points.npz` is reused only when it records this ensemble's fingerprint (points of other weights,
    e.g. from before `train --resume`, are found again, and the log says so) and, when `fp_config` is given,
    was found with that configuration.
    """
    from ..io._outputs import check_output_folder
    from ..io._run import METRICS, read_losses
    from ..io._serialisation import fingerprint
    path = Path(path)
    ensemble, task, config = load_analysis_inputs(path, task=task)
    network = fingerprint(ensemble)
    run_dir = path if path.is_dir() else None
    out = Path(out_dir) if out_dir is not None else (run_dir if run_dir else path.with_name(path.stem + "_report"))
    check_output_folder(out, "analysis", network, option="output folder", overwrite=overwrite)
    k = ensemble.W_out.shape[0]
    losses = read_losses(run_dir / METRICS, k) if run_dir else None
    fixed_points = _stored_fixed_points(run_dir, ensemble, task, network, inputs, fp_config, log) if run_dir else None
    fp_config = fp_config or FixedPointConfig(seed=seed, eigvecs=True)
    initial = None
    if config is not None and ensemble.recurrent_matrix is not None:
        initial = initial_W_rec(config)
    result = analyze(ensemble, task, config=fp_config, inputs=inputs, fixed_points=fixed_points,
                     threshold=config.threshold if config else None, losses=losses, seed=seed, source=str(path), log=log)
    if initial is not None:
        result = dataclasses.replace(result, initial_W_rec=initial[result.best])
    log(f"analysed {k} members; best member {result.best}")
    return result.write(out, fixed_points=fixed_points is None, overwrite=overwrite, log=log)


def _stored_fixed_points(run_dir: Path, ensemble, task, network: str, inputs, fp_config, log):
    """The run folder's `fixed_points.npz` when it belongs to this ensemble (its fingerprint), the task has one
    constant input, no other `inputs` are asked for, and (when `fp_config` is given) it was found with that
    configuration (`eigvecs` aside); else None (found again)."""
    from ..io._run import FIXED_POINTS, fixed_point_config_path
    stored_path = run_dir / FIXED_POINTS
    if inputs is not None or task is None or not stored_path.is_file() \
            or np.asarray(task.fixed_point_inputs()).shape[0] != 1:
        return None
    try:
        stored = FixedPoints.from_npz(stored_path)
    except ValueError as e:
        log(f"{stored_path}: unreadable ({e}); finding the fixed points again")
        return None
    if stored.network != network:
        log(f"{stored_path}: found for other weights (fingerprint {stored.network}; the ensemble's is {network}, "
            "e.g. training went on since): finding the fixed points again")
        return None
    if stored.n_members != ensemble.W_out.shape[0] or stored.points.shape[1:] != (ensemble.state_size,):
        return None
    if fp_config is not None:
        try:
            made_with = FixedPointConfig.from_dict(json.loads(fixed_point_config_path(stored_path).read_text()))
        except (OSError, ValueError, TypeError):
            made_with = None
        if made_with is None or dataclasses.replace(fp_config, eigvecs=made_with.eigvecs) != made_with:
            log(f"{stored_path}: found with other settings than those given; finding the fixed points again")
            return None
    return stored


__all__ = ["Analysis", "REPORT", "analyze_run", "load_analysis_inputs"]
