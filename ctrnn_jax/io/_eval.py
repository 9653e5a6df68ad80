"""`eval.json`, a run folder's test record: the per-member metrics on the task's test set (`evaluate_run`), how
training ended (`training_record`), and what a reader needs of it (`higher_is_better`, `ranking_score`, the
printed table `format_table`)."""

import json
from pathlib import Path

import numpy as np

from ..tasks._task import ranked
from ..training._distributed import to_host
from ..training._evaluate import ensemble_outputs
from ..training._train import state_record
from ._run_config import RunConfig


def training_record(config: RunConfig, steps: int, wall_s: float, previous: Path | None = None) -> dict:
    """`eval.json`'s `training`: how training ended. `steps` trained (of the `max_steps` asked for), the
    criterion (`stop_mse`, `stop_margin`, `criterion` = `stop_mse · (1 − stop_margin)`, None without one), the
    success `threshold` in effect, and `wall_s` the seconds spent training (the compiled chunks, compiles
    included; a resumed run adds the earlier `eval.json`'s, and `sessions` counts the calls). The per-member
    record (`criterion_step`, `restarts`, `frozen`, ...) is `eval.json`'s top level (`state_record`)."""
    t = config.train
    before, sessions = 0.0, 1
    if previous is not None and previous.is_file():
        try:
            old = json.loads(previous.read_text()).get("training") or {}
            before, sessions = float(old.get("wall_s", 0.0)), int(old.get("sessions", 1)) + 1
        except (OSError, ValueError, TypeError, AttributeError):
            pass
    return {
        "steps": int(steps),
        "max_steps": int(t.steps),
        "steps_per_call": int(t.steps_per_call),
        "stop_mse": t.stop_mse,
        "stop_margin": float(t.stop_margin),
        "criterion": t.criterion,
        "threshold": float(config.success_threshold()),
        "restart_after": t.restart_after,
        "compact": bool(t.compact),
        "wall_s": round(before + float(wall_s), 2),
        "sessions": sessions,
    }


def evaluate_run(ensemble, config: RunConfig, state=None) -> dict:
    """Per-member metrics on the test set of the run's task, as a JSON-able dict.

    Every task the same way: its `score` on its `test_set()` (`metric`, the task's `metric_name`, and `mse`, plus
    any other per-member number it returns, e.g. the flip-flop's `norm`), and `success`: `metric` reaching the
    run's `threshold` (the task's `success_threshold()` when None) in the task's direction (`higher_is_better`,
    recorded too, so that the best member is the highest or the lowest as the task says)."""
    task = config.task
    inputs, targets, mask = task.test_set()
    metrics = task.score(to_host(ensemble_outputs(ensemble, inputs)), targets, mask)
    threshold = config.success_threshold()
    success = task.passes(metrics["metric"], threshold)
    out = {
        "task": task.name,
        "test_set": task.test_set_name(),
        "metric_name": task.metric_name,
        "higher_is_better": task.higher_is_better,
        "threshold": threshold,
    }
    extra = {
        name: np.asarray(v, np.float64).reshape(-1).tolist()
        for name, v in metrics.items()
        if name not in ("success", "mse") and np.ndim(v) == 1 and np.issubdtype(np.asarray(v).dtype, np.number)
    }
    out.update(extra)
    metrics = {"success": success, "mse": np.asarray(metrics["mse"], np.float64)}
    out.update(
        {
            "n_success": int(metrics["success"].sum()),
            "n_members": int(len(metrics["mse"])),
            "mse": metrics["mse"].tolist(),
            "success": metrics["success"].tolist(),
        }
    )
    if state is not None:  # frozen, frozen_step, restarts, start_step, criterion_step
        out.update(state_record(state))
    return out


def higher_is_better(result: dict) -> bool:
    """The direction of an `eval.json` dict's `metric`: its `higher_is_better` (recorded since #29); older files
    scored by MSE (`metric_name` "mse", the flip-flop) are lower-is-better, the others (accuracies) higher."""
    if "higher_is_better" in result:
        return bool(result["higher_is_better"])
    return result.get("metric_name", "mse") != "mse"


def ranking_score(result: dict) -> np.ndarray:
    """`(K,)` float64 of an `eval.json` dict, higher is better whatever the metric's direction (non-finite last):
    the best member is its argmax."""
    return ranked(result["metric"] if "metric" in result else result["mse"], higher_is_better(result))


def format_table(result: dict) -> str:
    """A plain-text per-member table of an `eval.json` dict: the metric (when it is not the test MSE), the test
    MSE, the norm of the error where the task gives one, success."""
    frozen = result.get("frozen", [False] * result["n_members"])
    name = result.get("metric_name", "mse")
    if name == "mse":
        head, rows = f"{'test MSE':>10}", [f"{m:>10.5f}" for m in result["mse"]]
        if "norm" in result:
            head, rows = head + f"  {'norm':>9}", [f"{r}  {n:>9.3f}" for r, n in zip(rows, result["norm"])]
    else:
        head = f"{name:>10}  {'test MSE':>9}"
        rows = [f"{a:>10.4f}  {m:>9.4f}" for a, m in zip(result["metric"], result["mse"])]
    lines = [f"{'member':>6}  {head}  {'success':>7}"]
    criterion = (
        f"{'test MSE' if name == 'mse' else name} {'>=' if higher_is_better(result) else '<'} {result['threshold']}"
    )
    for i, (row, s) in enumerate(zip(rows, result["success"])):
        lines.append(f"{i:>6}  {row}  {'yes' if s else 'no':>7}" + ("  (frozen)" if frozen[i] else ""))
    lines.append(
        f"{result['n_success']} of {result['n_members']} members solve the "
        f"{result.get('task', 'flipflop')} task ({criterion})."
    )
    return "\n".join(lines)
