"""The fixed points of a network written to files: `write_fixed_points` (the fixed-point stage, its `.npz` files,
the `FixedPointConfig` beside them and the memory-state JSON), one writer at a time, never over an input."""

import dataclasses
from pathlib import Path

from .._files import jsonable, write_json
from ..training._distributed import barrier, is_main_process

FIXED_POINTS = "fixed_points.npz"


def fixed_point_config_path(out_npz: str | Path) -> Path:
    """Where the `FixedPointConfig` of the fixed points in `out_npz` is saved: `<stem>_config.json` beside it."""
    out_npz = Path(out_npz)
    return out_npz.with_name(f"{out_npz.stem}_config.json")


def write_fixed_points(
    ensemble,
    out_npz: str | Path,
    *,
    task=None,
    inputs=None,
    config=None,
    cube_json: str | Path | None = None,
    log=None,
    sources=(),
    overwrite: bool = False,
) -> tuple[list, list | None, dict | None]:
    """The fixed-point stage (`fixed_point_stage`) of any network, written to files.

    **Arguments:**

    - `ensemble`, `task`, `inputs`, `config`, `log`: as in `fixed_point_stage` (any task or None, any cell;
      a `FixedPointConfig`).
    - `out_npz`: the `.npz` of the fixed points; with several constant inputs, `<stem>_<i>.npz` for input `i`.
      The `FixedPointConfig` goes to `<stem>_config.json` beside it (`fixed_point_config_path`).
    - `cube_json`: also write the memory-state analysis (`cube_analysis`, at the first constant input) as
      JSON here; only for a task with memory states (`memory_readouts`, e.g. the flip-flop).
    - `sources`: the input files or run folder the ensemble came from: never written over.
    - `overwrite`: replace an existing output file of another kind or another network (see
      `check_output_file`); the outputs are checked before the search either way.

    The points record the ensemble's `fingerprint` (`FixedPoints.network`), and so does the cube JSON.

    **Returns:** `(found, per_member, summary)`: the list of `FixedPoints` (one per constant input), and the
    memory-state analysis per member and its summary (None for a task without memory states).

    In a distributed run every process searches its own members, the results are gathered, and process 0
    writes the files.
    """
    from ._lock import lock_outputs

    with lock_outputs(files=[out_npz, cube_json], what="write_fixed_points", log=log):
        return _write_fixed_points(
            ensemble,
            out_npz,
            task=task,
            inputs=inputs,
            config=config,
            cube_json=cube_json,
            log=log,
            sources=sources,
            overwrite=overwrite,
        )


def _write_fixed_points(ensemble, out_npz, *, task, inputs, config, cube_json, log, sources, overwrite):
    from ..dynamics._config import FixedPointConfig
    from ..dynamics._cube import has_memory_states, memory_state_analysis
    from ..dynamics._stage import fixed_point_stage
    from ._lock import writing

    if cube_json is not None and not has_memory_states(task):
        what = "network without a task" if task is None else f"{task.name} task"
        raise ValueError(
            f"`cube_json`: the {what} has no memory states "
            "(only a task with `memory_readouts`, e.g. the flip-flop, has a cube analysis)."
        )
    from ..dynamics._stage import constant_inputs
    from ._outputs import check_output_file
    from ._serialisation import fingerprint

    network = fingerprint(ensemble)
    out_npz = Path(out_npz)
    n_inputs = len(constant_inputs(ensemble, task, inputs))
    paths = (
        [out_npz]
        if n_inputs == 1
        else [out_npz.with_name(f"{out_npz.stem}_{i}{out_npz.suffix}") for i in range(n_inputs)]
    )
    for path in paths:
        check_output_file(
            path, "fixed points", option="`out_npz`", sources=sources, network=network, overwrite=overwrite
        )
    check_output_file(
        fixed_point_config_path(out_npz),
        "fixed-point configuration",
        option="`out_npz`'s config",
        sources=sources,
        overwrite=overwrite,
    )
    if cube_json is not None:
        check_output_file(
            cube_json, "cube analysis", option="`cube_json`", sources=sources, network=network, overwrite=overwrite
        )
    found = [
        dataclasses.replace(fp, network=network)
        for fp in fixed_point_stage(ensemble, task, inputs=inputs, config=config, log=log)
    ]
    per_member, summary = memory_state_analysis(ensemble, task, found[0]) if has_memory_states(task) else (None, None)
    if is_main_process():  # one set: a marker lists the files while they are replaced (a killed writer's
        # half-replaced set is removed by the folder's next writer and never reused by a reader)
        names = [p.name for p in paths] + [fixed_point_config_path(out_npz).name]
        names += [Path(cube_json).name] if cube_json is not None and Path(cube_json).parent == out_npz.parent else []
        with writing(out_npz.parent, files=names):
            for path, fp in zip(paths, found):
                fp.to_npz(path)
            write_json(fixed_point_config_path(out_npz), (config or FixedPointConfig()).to_dict())
            if cube_json is not None:
                write_json(
                    cube_json, {"network": network, "per_member": jsonable(per_member), "summary": jsonable(summary)}
                )
    barrier("ctrnn_jax.write_fixed_points.written")
    return found, per_member, summary
