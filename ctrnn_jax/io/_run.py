"""Run folders: train an ensemble into a directory, checkpoint it atomically, resume it, evaluate it.

A run folder holds:

- `config.json`: every setting (`ensemble`, `train`, `task`, `threshold`), package versions, device;
- `checkpoint.eqx`: the `TrainState` and loss history (written atomically at checkpoints and at the end);
- `metrics.csv`: `step,member,loss` for every step and member;
- `eval.json`: per-member test metrics on the task's test set (the 8-memory-state set for the flip-flop);
- `ensemble.npz`: the trained ensemble in the interchange format.
"""

import csv
import dataclasses
import datetime
import io
import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .._files import atomic_write, write_json
from ..tasks._flipflop import FlipFlopConfig, flipflop_test_set
from ..tasks._task import check_task
from ..tasks._tasks import task_from_dict
from ..training._distributed import barrier, is_distributed, is_main_process, to_host
from ..training._ensemble import EnsembleConfig
from ..training._evaluate import ensemble_outputs, evaluate
from ..training._train import EnsembleTrainer, TrainConfig, legacy_layouts, state_record
from ._serialisation import load_checkpoint, load_npz, save_checkpoint, save_npz

CONFIG, CHECKPOINT, METRICS, EVAL, ENSEMBLE = "config.json", "checkpoint.eqx", "metrics.csv", "eval.json", "ensemble.npz"


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run: the ensemble, the training, the task (any registered task;
    the flip-flop by default) and the flip-flop's success threshold on test MSE (other tasks have
    their own success criterion, e.g. `success_accuracy`)."""

    ensemble: EnsembleConfig = EnsembleConfig()
    train: TrainConfig = TrainConfig()
    task: Any = FlipFlopConfig()
    threshold: float = 0.02
    checkpoint_every: int = 500

    def __post_init__(self):
        check_task(self.task)
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) or not self.threshold > 0:
            raise ValueError(f"`threshold` must be a number > 0, got {self.threshold!r}.")
        if isinstance(self.checkpoint_every, bool) or not isinstance(self.checkpoint_every, int) \
                or self.checkpoint_every < 1:
            raise ValueError(f"`checkpoint_every` must be an integer >= 1, got {self.checkpoint_every!r}.")

    def to_dict(self) -> dict:
        return {"ensemble": self.ensemble.to_dict(), "train": self.train.to_dict(), "task_name": self.task.name,
                "task": self.task.to_dict(), "threshold": self.threshold, "checkpoint_every": self.checkpoint_every}

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return cls(ensemble=EnsembleConfig.from_dict(d["ensemble"]), train=TrainConfig.from_dict(d["train"]),
                   task=task_from_dict(d.get("task_name", "flipflop"), d["task"]), threshold=d["threshold"],
                   checkpoint_every=d["checkpoint_every"])


def environment() -> dict:
    """Package versions and the device JAX runs on."""
    versions = {}
    for pkg in ("ctrnn_jax", "jax", "jaxlib", "optax", "equinox", "numpy"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    dev = jax.devices()[0]
    return {"versions": versions, "python": platform.python_version(),
            "device": {"platform": dev.platform, "kind": dev.device_kind, "count": jax.device_count(),
                       "processes": jax.process_count()}}


def read_config(run_dir: str | Path) -> RunConfig:
    """The `RunConfig` stored in a run folder."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; is {run_dir} a run folder?")
    try:
        return RunConfig.from_dict(json.loads(path.read_text())["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a valid run configuration ({e}).") from None


def write_metrics(path: Path, losses: np.ndarray) -> None:
    """`metrics.csv` with one row per step and member (steps counted from 1), atomically."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["step", "member", "loss"])
    s, k = losses.shape
    steps = np.repeat(np.arange(1, s + 1), k)
    members = np.tile(np.arange(k), s)
    for row in zip(steps.tolist(), members.tolist(), losses.reshape(-1).tolist()):
        w.writerow((row[0], row[1], f"{row[2]:.6g}"))
    with atomic_write(path, "w") as f:
        f.write(buf.getvalue())


def read_losses(path: Path, n_members: int) -> np.ndarray | None:
    """`(S, K)` losses from a `metrics.csv` (as `write_metrics` writes it), or None."""
    if not path.is_file():
        return None
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    steps = max(int(r["step"]) for r in rows)
    losses = np.full((steps, n_members), np.nan)
    for r in rows:
        losses[int(r["step"]) - 1, int(r["member"])] = float(r["loss"])
    return losses


def evaluate_run(ensemble, config: RunConfig, state=None) -> dict:
    """Per-member metrics on the test set of the run's task, as a JSON-able dict.

    The flip-flop: test MSE, norm and success (MSE < `threshold`) on the 8-memory-state test set.
    Other tasks: their `score` on their test set (`metric` is e.g. the accuracy), and the masked MSE."""
    task = config.task
    if isinstance(task, FlipFlopConfig):
        inputs, targets = flipflop_test_set(task)
        metrics = evaluate(ensemble, inputs, targets, threshold=config.threshold)
        out = {"task": task.name, "test_set": "8-memory-state flip-flop test set (paper Fig. 6)",
               "metric_name": "mse", "threshold": config.threshold, "norm": metrics["norm"].tolist()}
    else:
        inputs, targets, mask = task.test_set()
        metrics = task.score(to_host(ensemble_outputs(ensemble, inputs)), targets, mask)
        out = {"task": task.name, "test_set": f"{task.name} test set ({inputs.shape[0]} trials)",
               "metric_name": "accuracy" if "accuracy" in metrics else "metric",
               "threshold": getattr(task, "success_accuracy", None), "metric": metrics["metric"].tolist()}
    out.update({
        "n_success": int(metrics["success"].sum()),
        "n_members": int(len(metrics["mse"])),
        "mse": metrics["mse"].tolist(),
        "success": metrics["success"].tolist(),
    })
    if state is not None:  # frozen, frozen_step, restarts, start_step, criterion_step
        out.update(state_record(state))
    return out


def train_run(out_dir: str | Path, config: RunConfig | None = None, *, resume: bool = False,
              progress=None, log=print) -> dict:
    """Train (or, with `resume=True`, continue) the run in `out_dir`; write every file; return `eval.json`.

    A new run refuses a folder that already holds a run (nothing on disk is overwritten by mistake).
    On resume, `config` may only differ from the stored one in `train.steps` (train further).
    """
    out = Path(out_dir)
    if resume:
        stored = read_config(out)
        if config is None:
            config = stored
        elif dataclasses.replace(config, train=dataclasses.replace(config.train, steps=stored.train.steps)) != stored:
            raise ValueError(f"{out}: `resume=True` can only change `steps`; the other settings must match "
                             f"{out / CONFIG}.")
        if not (out / CHECKPOINT).is_file():
            raise FileNotFoundError(f"{out / CHECKPOINT}: no checkpoint to resume from.")
    else:
        config = RunConfig() if config is None else config
        if (out / CONFIG).exists() or (out / CHECKPOINT).exists():
            raise FileExistsError(f"{out}: already holds a run; resume it (`resume=True`) "
                                  "or choose another folder.")
    # A distributed run (`init_distributed`): every process trains its own members and reads the
    # checkpoint; process 0 alone writes, after every process has checked the folder.
    distributed, main = is_distributed(), is_main_process()
    barrier("ctrnn_jax.train_run.checked")
    trainer = EnsembleTrainer(config.ensemble, config.train, config.task)
    state = trainer.init()
    history = np.zeros((0, config.ensemble.members), np.float32)
    if resume:
        like = to_host(state) if distributed else state
        state, history = load_checkpoint(out / CHECKPOINT, like, older=legacy_layouts(like))
        if distributed:  # from the host copy, each process puts only its own members on its devices
            state = trainer.place(state)
        if history.shape != (int(state.step), config.ensemble.members):
            raise ValueError(f"{out / CHECKPOINT}: loss history {history.shape} does not match step {int(state.step)}.")
        log(f"resuming {out} from step {int(state.step)} to {config.train.steps}")
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    record = {"config": config.to_dict(), "environment": environment(), "created": now}
    if resume:
        previous = json.loads((out / CONFIG).read_text())
        record["created"] = previous.get("created", now)
        record["resumed"] = [*previous.get("resumed", []), {"at": now, "from_step": int(state.step)}]
    if main:
        write_json(out / CONFIG, record)
    last_ckpt, saved = [int(state.step)], [resume]  # `saved`: a checkpoint file exists (the same in every process)

    def checkpoint(s, losses):  # in a distributed run every process gathers (a collective), process 0 writes
        s = to_host(s) if distributed else s
        if main:
            save_checkpoint(out / CHECKPOINT, s, losses)
        saved[0] = True

    def on_chunk(s, losses):
        step = int(s.step)
        if step - last_ckpt[0] >= config.checkpoint_every or step >= config.train.steps:
            checkpoint(s, np.concatenate([history, losses]))
            last_ckpt[0] = step

    state, losses = trainer.train(state, until=config.train.steps, progress=progress, on_chunk=on_chunk)
    history = np.concatenate([history, losses])
    if last_ckpt[0] != int(state.step) or not saved[0]:
        checkpoint(state, history)
    result = evaluate_run(state.model, config, state)  # sharded like the training, gathered
    model = to_host(state.model) if distributed else state.model
    if main:
        write_metrics(out / METRICS, history)
        save_npz(model, out / ENSEMBLE)
        write_json(out / EVAL, result)
    frozen = [i for i, f in enumerate(result.get("frozen", [])) if f]
    if frozen and main:
        log(f"members frozen after a non-finite loss or gradient: {frozen} "
            f"(at steps {[result['frozen_step'][i] for i in frozen]})")
    barrier("ctrnn_jax.train_run.written")  # the files are on disk before any process reads them
    return result


def load_run_ensemble(path: str | Path):
    """The ensemble of a run folder (its `ensemble.npz`) or of an `.npz` file, and the run config if any."""
    path = Path(path)
    if path.is_dir():
        config = read_config(path) if (path / CONFIG).exists() else RunConfig()
        return load_npz(path / ENSEMBLE), config
    return load_npz(path), None


def task_for_ensemble(ensemble, task=None):
    """The task to evaluate or analyse an ensemble on when there is no run folder (a bare `ensemble.npz`).

    - `task` a task object: it, if its sizes are the ensemble's (`n_inputs = M`, `n_outputs = O`).
    - `task` a name: that registered task with its defaults; the flip-flop gets `n_bits = M` (= O).
    - `task` None: the 3-bit flip-flop when `M = O = 3` (the paper's case, as for every bare file
      before), else None: no task, and the commands analyse the network without one (fixed points at
      a given constant input, found from trajectories under random input).

    Raises `ValueError` naming the sizes when the task does not fit the ensemble.
    """
    m, o = ensemble.W_in.shape[-1], ensemble.W_out.shape[-2]
    if task is None:
        return FlipFlopConfig() if m == o == 3 else None
    if isinstance(task, str):
        from ..tasks._tasks import make_task
        task = make_task(task, n_bits=m) if task == "flipflop" and m == o else make_task(task)
    check_task(task)
    if (task.n_inputs, task.n_outputs) != (m, o):
        raise ValueError(f"the {task.name} task has {task.n_inputs} input(s) and {task.n_outputs} output(s); the "
                         f"ensemble has M = {m} inputs and O = {o} outputs.")
    return task


def format_table(result: dict) -> str:
    """A plain-text per-member table of an `eval.json` dict."""
    frozen = result.get("frozen", [False] * result["n_members"])
    if "norm" in result:  # the flip-flop
        lines = [f"{'member':>6}  {'test MSE':>10}  {'norm':>9}  {'success':>7}"]
        rows = [f"{m:>10.5f}  {n:>9.3f}" for m, n in zip(result["mse"], result["norm"])]
        criterion = f"test MSE < {result['threshold']}"
    else:
        name = result.get("metric_name", "metric")
        lines = [f"{'member':>6}  {name:>10}  {'test MSE':>9}  {'success':>7}"]
        rows = [f"{a:>10.4f}  {m:>9.4f}" for a, m in zip(result["metric"], result["mse"])]
        criterion = f"{name} >= {result['threshold']}"
    for i, (row, s) in enumerate(zip(rows, result["success"])):
        lines.append(f"{i:>6}  {row}  {'yes' if s else 'no':>7}" + ("  (frozen)" if frozen[i] else ""))
    lines.append(f"{result['n_success']} of {result['n_members']} members solve the "
                 f"{result.get('task', 'flipflop')} task ({criterion}).")
    return "\n".join(lines)


FIXED_POINTS, CUBE = "fixed_points.npz", "cube.json"


def fixed_point_config_path(out_npz: str | Path) -> Path:
    """Where the `FixedPointConfig` of the fixed points in `out_npz` is saved: `<stem>_config.json` beside it."""
    out_npz = Path(out_npz)
    return out_npz.with_name(f"{out_npz.stem}_config.json")


def write_fixed_points(ensemble, out_npz: str | Path, *, task=None, inputs=None, config=None,
                       cube_json: str | Path | None = None, log=None) -> tuple[list, list | None, dict | None]:
    """The fixed-point stage (`fixed_point_stage`) of any network, written to files.

    **Arguments:**

    - `ensemble`, `task`, `inputs`, `config`, `log`: as in `fixed_point_stage` (any task or None, any cell;
      a `FixedPointConfig`).
    - `out_npz`: the `.npz` of the fixed points; with several constant inputs, `<stem>_<i>.npz` for input `i`.
      The `FixedPointConfig` goes to `<stem>_config.json` beside it (`fixed_point_config_path`).
    - `cube_json`: also write the memory-state analysis (`cube_analysis`, at the first constant input) as
      JSON here; only for a task with memory states (`memory_readouts`, e.g. the flip-flop).

    **Returns:** `(found, per_member, summary)`: the list of `FixedPoints` (one per constant input), and the
    memory-state analysis per member and its summary (None for a task without memory states).

    In a distributed run every process searches its own members, the results are gathered, and process 0
    writes the files.
    """
    from ..dynamics._config import FixedPointConfig
    from ..dynamics._cube import has_memory_states, memory_state_analysis
    from ..dynamics._stage import fixed_point_stage
    if cube_json is not None and not has_memory_states(task):
        raise ValueError(f"`cube_json`: the {getattr(task, 'name', 'network without a task')} has no memory states "
                         "(only a task with `memory_readouts`, e.g. the flip-flop, has a cube analysis).")
    out_npz = Path(out_npz)
    found = fixed_point_stage(ensemble, task, inputs=inputs, config=config, log=log)
    per_member, summary = memory_state_analysis(ensemble, task, found[0]) if has_memory_states(task) else (None, None)
    if is_main_process():
        for i, fp in enumerate(found):
            fp.to_npz(out_npz if len(found) == 1 else out_npz.with_name(f"{out_npz.stem}_{i}{out_npz.suffix}"))
        write_json(fixed_point_config_path(out_npz), (config or FixedPointConfig()).to_dict())
        if cube_json is not None:
            write_json(cube_json, {"per_member": _jsonable(per_member), "summary": _jsonable(summary)})
    barrier("ctrnn_jax.write_fixed_points.written")
    return found, per_member, summary


def _jsonable(obj):
    """Plain JSON types from NumPy scalars/arrays and int dict keys."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
