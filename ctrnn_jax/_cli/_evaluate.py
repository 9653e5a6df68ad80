"""`ctrnn-jax evaluate`: a run folder or ensemble.npz on its task's test set."""

import dataclasses
from pathlib import Path

from ._options import finite_float
from ._tasks import add_bare_task_options, fitting_tasks, task_for


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a run folder or ensemble.npz on its task's test set",
        description="Evaluate a run folder or ensemble.npz on its task's test set (the flip-flop's: "
        "the 8 memory states).",
    )
    p.add_argument("path", type=Path, help="a run folder or an ensemble.npz file")
    p.add_argument(
        "--threshold",
        type=finite_float,
        metavar="X",
        default=None,
        help="success threshold on the task's metric (default: the task's own: test MSE < 0.02 for the "
        "flip-flop, accuracy >= success_accuracy for the decision, memory and neurogym tasks)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the metrics to this JSON file")
    p.add_argument(
        "--overwrite", action="store_true", help="let --json replace a file that is not an evaluation (never the input)"
    )
    add_bare_task_options(p)
    p.set_defaults(func=run, prog=p.prog)


def run(args) -> int:
    from ..io._lock import lock_outputs
    from ..io._outputs import check_writable_file

    if args.json is not None:
        check_writable_file(args.json, "--json")
    with lock_outputs(files=[args.json], what=args.prog):
        return _run(args)


def _run(args) -> int:
    from .._files import write_json
    from ..io._eval import evaluate_run, format_table
    from ..io._outputs import check_output_file
    from ..io._run import load_run_ensemble
    from ..io._run_config import RunConfig
    from ..io._serialisation import fingerprint
    from ..training._distributed import is_main_process

    ensemble, config = load_run_ensemble(args.path)
    if args.json is not None:
        check_output_file(
            args.json,
            "evaluation",
            option="--json",
            sources=[args.path],
            network=fingerprint(ensemble),
            overwrite=args.overwrite,
        )
    task = task_for(args, ensemble, config)
    if task is None:
        m, o = ensemble.W_in.shape[-1], ensemble.W_out.shape[-2]
        raise ValueError(
            f"{args.path}: no run folder, so no task to evaluate on (M = {m} inputs, O = {o} "
            f"outputs is not the 3-bit flip-flop): give --task NAME ({fitting_tasks(m, o)})"
        )
    config = config or RunConfig(task=task)
    if args.threshold is not None:
        config = dataclasses.replace(config, threshold=args.threshold)
    result = {**evaluate_run(ensemble, config), "network": fingerprint(ensemble)}
    print(format_table(result))
    if args.json is not None and is_main_process():
        write_json(args.json, result)
    return 0
