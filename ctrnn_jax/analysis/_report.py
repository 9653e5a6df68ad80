"""`ctrnn-jax analyze`: the one analysis (`analyze`) of a run folder or an `ensemble.npz`, written as
`report.md`, `analysis.json` and a `figures/` folder (PNG + PDF)."""

import dataclasses
from pathlib import Path

import numpy as np

from ..dynamics._config import FixedPointConfig
from ..dynamics._fixed_point_set import FixedPoints
from ._analyze import REPORT, Analysis, analyze, initial_W_rec, training_summary


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
        raise ValueError(
            f"{path}: a run folder of the {config.task.name} task (config.json); `task` is for a bare ensemble.npz."
        )
    return ensemble, config.task, config


def analyze_run(
    path: str | Path,
    *,
    out_dir: str | Path | None = None,
    seed: int = 0,
    log=print,
    fp_config: FixedPointConfig | None = None,
    task=None,
    inputs=None,
    overwrite: bool = False,
) -> Path:
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

    A run folder's training losses (`metrics.csv`, checked first) and its members' initial `W_rec` are drawn, and
    how its training ended (`eval.json`'s training record: steps, criterion and margin, criterion step and restarts
    per member, wall time) is reported;
    its `fixed_points.npz` is reused only when it records this ensemble's fingerprint (points of other weights,
    e.g. from before `train --resume`, are found again), the same constant input and task, finite points and,
    when `fp_config` is given, that configuration; otherwise they are found again, and the log says why.
    """
    from ..io._metrics import read_losses
    from ..io._outputs import METRICS, check_output_folder
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
    training = training_summary(run_dir, network, losses) if run_dir else None
    result = analyze(
        ensemble,
        task,
        config=fp_config,
        inputs=inputs,
        fixed_points=fixed_points,
        threshold=config.threshold if config else None,
        losses=losses,
        seed=seed,
        source=str(path),
        training=training,
        log=log,
    )
    if initial is not None:
        result = dataclasses.replace(result, initial_W_rec=initial[result.best])
    log(f"analysed {k} members; best member {result.best}")
    return result.write(out, fixed_points=fixed_points is None, overwrite=overwrite, log=log)


def _stored_fixed_points(run_dir: Path, ensemble, task, network: str, inputs, fp_config, log):
    """The run folder's `fixed_points.npz` when it matches everything the points depend on: this ensemble (its
    fingerprint and sizes), the constant input (one: the task's, or `inputs`), the task (name and settings), the
    `FixedPointConfig` when `fp_config` is given (`eigvecs` aside; when it is not, the settings the points were
    found with stand), and finite content. Else None (found again), and `log` says why in one line; so does a file
    written before the input, settings and task were recorded (`FixedPoints.found_with`)."""
    from ..dynamics._stage import constant_inputs, found_with
    from ..io._fixed_point_files import FIXED_POINTS
    from ..io._lock import check_complete

    stored_path = run_dir / FIXED_POINTS
    if task is None or not stored_path.is_file():
        return None
    wanted = constant_inputs(ensemble, task, inputs)
    if wanted.shape[0] != 1:  # several constant inputs: fixed_points_<i>.npz, found again
        return None
    try:
        check_complete(run_dir, "its fixed points")  # a killed writer's half-replaced set: never reused
        stored = FixedPoints.from_npz(stored_path)
    except ValueError as e:
        log(f"{stored_path}: unreadable ({e}); finding the fixed points again")
        return None
    why = _mismatch(
        stored, ensemble, network, found_with(fp_config or FixedPointConfig(), task, wanted[0]), fp_config is not None
    )
    if why is not None:
        log(f"{stored_path}: {why}: finding the fixed points again")
        return None
    return stored


def _mismatch(stored: FixedPoints, ensemble, network: str, wanted: dict, check_config: bool) -> str | None:
    """Why the stored fixed points do not fit (None: they do). `wanted`: `found_with` of the search asked for."""
    if stored.network != network:
        return (
            f"found for other weights (fingerprint {stored.network}; the ensemble's is {network}, e.g. training "
            "went on since)"
        )
    if stored.n_members != ensemble.W_out.shape[0] or stored.points.shape[1:] != (ensemble.state_size,):
        return f"found for a network of another size ({stored.n_members} members, states {stored.points.shape[1:]})"
    made = stored.found_with
    if not made or not {"config", "input", "task"} <= set(made):
        return "written without a record of the input, settings and task it was found with (an older file)"
    given = np.asarray(wanted["input"], np.float64)
    if (
        np.shape(stored.inputs)[-1:] != given.shape
        or not np.allclose(np.asarray(stored.inputs, np.float64), given)
        or not np.allclose(np.asarray(made["input"], np.float64), given)
    ):
        return f"found at input {made['input']}, not at {wanted['input']}"
    if made["task"] != wanted["task"]:
        return f"found for another task ({made['task']}; this run's is {wanted['task']})"
    if check_config:
        differ = sorted(
            k
            for k in set(made["config"]) | set(wanted["config"])
            if k != "eigvecs" and made["config"].get(k) != wanted["config"].get(k)
        )
        if differ:
            return (
                "found with other settings than those given ("
                + ", ".join(f"{k} {made['config'].get(k)!r}, not {wanted['config'].get(k)!r}" for k in differ)
                + ")"
            )
    arrays = (stored.points, stored.q, stored.eigvals, stored.inputs)
    if not all(np.all(np.isfinite(np.asarray(a))) for a in arrays):
        return "holds non-finite values (NaN or infinity) in its points"
    return None


__all__ = ["Analysis", "REPORT", "analyze_run", "load_analysis_inputs"]
