"""Run folders: train an ensemble into a directory, checkpoint it atomically, resume it, evaluate it.

A run folder holds:

- `config.json`: every setting (`ensemble`, `train`, `task`, `threshold`), package versions, device;
- `checkpoint.eqx`: the `TrainState` and loss history (written atomically at checkpoints and at the end);
- `metrics.csv`: `step,member,loss` for every step and member (none for a member after it met the criterion);
- `summary.csv`: one row per chunk: `step,median_loss,min_loss,max_loss,frozen,held,steps_per_s` (the
  statistics over every member, a member held at the criterion at its last loss);
- `eval.json`: per-member test metrics on the task's test set (the 8-memory-state set for the flip-flop) and
  the training record (`training`: steps, criterion and margin, wall time; per member `criterion_step`,
  `restarts`, `frozen`);
- `ensemble.npz`: the trained ensemble in the interchange format.
"""

import contextlib
import csv
import dataclasses
import datetime
import json
import os
import platform
import signal
import threading
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .._checks import check_positive
from .._files import atomic_write, write_json
from ..tasks._flipflop import FlipFlopConfig
from ..tasks._task import check_task, ranked
from ..tasks._tasks import task_from_dict, task_spec
from ..training._distributed import barrier, is_distributed, is_main_process, to_host
from ..training._ensemble import EnsembleConfig
from ..training._evaluate import ensemble_outputs
from ..training._train import EnsembleTrainer, TrainConfig, legacy_layouts, state_record
from ._outputs import CHECKPOINT, CONFIG, CUBE, ENSEMBLE, EVAL, METRICS, SUMMARY  # noqa: F401 (the run folder's names)
from ._serialisation import load_checkpoint, load_npz, save_checkpoint, save_npz


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run: the ensemble, the training, the task (any `AbstractTask`; the flip-flop by
    default), the success threshold on the task's metric (None: the task's own `success_threshold()`, e.g. test
    MSE < 0.02 for the flip-flop, `success_accuracy` for the decision tasks) and the steps between checkpoints."""

    ensemble: EnsembleConfig = EnsembleConfig()
    train: TrainConfig = TrainConfig()
    task: Any = FlipFlopConfig()
    threshold: float | None = None
    checkpoint_every: int = 500

    def __post_init__(self):
        check_task(self.task)
        if self.threshold is not None:
            check_positive("threshold", self.threshold)
        if (
            isinstance(self.checkpoint_every, bool)
            or not isinstance(self.checkpoint_every, int)
            or self.checkpoint_every < 1
        ):
            raise ValueError(f"`checkpoint_every` must be an integer >= 1, got {self.checkpoint_every!r}.")

    def success_threshold(self) -> float:
        """The threshold in effect: `threshold`, or the task's own `success_threshold()` when it is None."""
        return self.task.success_threshold() if self.threshold is None else self.threshold

    def to_dict(self) -> dict:
        """The JSON of `config.json`'s `config`: `task_name` is the registry name of the task's class, or its
        import string `module:QualName` for a task defined outside the package (so that every command finds it
        again)."""
        return {
            "ensemble": self.ensemble.to_dict(),
            "train": self.train.to_dict(),
            "task_name": task_spec(self.task),
            "task": self.task.to_dict(),
            "threshold": self.threshold,
            "threshold_on": "metric",
            "checkpoint_every": self.checkpoint_every,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        task = task_from_dict(d.get("task_name", "flipflop"), d["task"])
        threshold = d["threshold"]
        if "threshold_on" not in d and task.higher_is_better:  # before #29 it applied to tasks scored by MSE only
            threshold = None
        return cls(
            ensemble=EnsembleConfig.from_dict(d["ensemble"]),
            train=TrainConfig.from_dict(d["train"]),
            task=task,
            threshold=threshold,
            checkpoint_every=d["checkpoint_every"],
        )


def environment() -> dict:
    """Package versions and the device JAX runs on."""
    versions: dict[str, str | None] = {}
    for pkg in ("ctrnn-ensembles", "jax", "jaxlib", "optax", "equinox", "numpy"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    dev = jax.devices()[0]
    return {
        "versions": versions,
        "python": platform.python_version(),
        "device": {
            "platform": dev.platform,
            "kind": dev.device_kind,
            "count": jax.device_count(),
            "processes": jax.process_count(),
        },
    }


def read_config(run_dir: str | Path) -> RunConfig:
    """The `RunConfig` stored in a run folder."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; is {run_dir} a run folder?")
    try:
        return RunConfig.from_dict(json.loads(path.read_text())["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a valid run configuration ({e}).") from None


def _metric_rows(losses: np.ndarray, first_step: int = 1) -> str:
    """`step,member,loss` lines of `(S, K)` losses, steps counted from `first_step`; none for a NaN loss (a
    member not computed at that step: it had met the criterion)."""
    s, k = losses.shape
    steps = np.repeat(np.arange(first_step, first_step + s), k)
    members = np.tile(np.arange(k), s)
    return "".join(
        f"{a},{b},{c:.6g}\n" for a, b, c in zip(steps.tolist(), members.tolist(), losses.reshape(-1).tolist()) if c == c
    )


def write_metrics(path: Path, losses: np.ndarray) -> None:
    """`metrics.csv` with one row per step and member (steps counted from 1; none where the loss is NaN),
    atomically."""
    with atomic_write(path, "w") as f:
        f.write("step,member,loss\n" + _metric_rows(np.asarray(losses)))


def _append(path: Path, text: str) -> None:
    """Append `text` to `path`, flushed to disk (so that `tail -f` sees every chunk)."""
    with open(path, "a") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


SUMMARY_HEADER = "step,median_loss,min_loss,max_loss,frozen,held,steps_per_s\n"


class LiveMetrics:
    """`metrics.csv` (every step and member, long format) and `summary.csv` (one row per chunk: step,
    median/min/max loss over members, frozen members, held members, steps/s), appended after every compiled
    chunk, so that a running or killed run can be watched and read. The statistics cover every member that
    has a loss: a member held at the criterion (no longer computed) counts at its last loss, the one it was
    held at; a frozen member (a non-finite loss) is left out.

    At the start both files are written afresh, atomically, from the checkpoint's loss history (empty for a
    new run; a row of a killed run past its checkpoint is dropped), so a resumed run's files equal an
    uninterrupted run's. At K = 1024 members and 8000 steps `metrics.csv` has 8 M rows (about 150 MB);
    `summary.csv` stays one row per chunk. Read the long table with e.g.
    `pandas.read_csv(path).pivot(index="step", columns="member", values="loss")`, or `read_losses`.
    """

    def __init__(self, folder: Path, history: np.ndarray):
        self.metrics, self.summary = folder / METRICS, folder / SUMMARY
        self.steps = history.shape[0]
        write_metrics(self.metrics, history)
        rows = [SUMMARY_HEADER]
        if (folder / SUMMARY).is_file():  # keep the killed run's rows up to the checkpoint
            old = (folder / SUMMARY).read_text().splitlines()[1:]
            rows += [f"{r}\n" for r in old if r.split(",")[0].isdigit() and int(r.split(",")[0]) <= self.steps]
        with atomic_write(self.summary, "w") as f:
            f.write("".join(rows))
        self.clock, self.seen = time.perf_counter(), 0
        self.last = _last_finite(np.asarray(history, np.float64))  # (K,) each member's last loss

    def chunk(self, losses: np.ndarray, n_frozen: int, held=None) -> None:
        """Append the new rows: `losses` is `(S, K)`, every step trained since this object was made (the
        trainer's losses so far); the rows not yet written are its last ones. `held`: `(K,)` bool, the members
        held at the criterion (None: none)."""
        fresh = np.asarray(losses)[self.seen :]
        self.seen = losses.shape[0]
        if fresh.shape[0] == 0:
            return
        _append(self.metrics, _metric_rows(fresh, self.steps + 1))
        self.steps += fresh.shape[0]
        now = time.perf_counter()
        rate = fresh.shape[0] / max(now - self.clock, 1e-9)
        self.clock = now
        self.last = np.where(np.isfinite(fresh[-1]), fresh[-1], _last_finite(fresh, self.last))
        held = np.zeros(fresh.shape[1], bool) if held is None else np.asarray(held, bool)
        now_loss = np.where(held, self.last, fresh[-1])  # a held member at the loss it was held at
        last = now_loss[np.isfinite(now_loss)]
        stats = (np.median(last), last.min(), last.max()) if last.size else (np.nan,) * 3
        _append(
            self.summary,
            f"{self.steps},{stats[0]:.6g},{stats[1]:.6g},{stats[2]:.6g},{n_frozen},{int(held.sum())},{rate:.4g}\n",
        )


def _last_finite(losses: np.ndarray, before: np.ndarray | None = None) -> np.ndarray:
    """`(K,)` each column's last finite value of `(S, K)` losses (`before`, else NaN, where it has none)."""
    k = losses.shape[1]
    out = np.full(k, np.nan) if before is None else np.asarray(before, np.float64).copy()
    if losses.shape[0] == 0:
        return out
    finite = np.isfinite(losses)
    idx = losses.shape[0] - 1 - np.argmax(finite[::-1], axis=0)
    has = finite.any(axis=0)
    out[has] = losses[idx[has], np.arange(k)[has]]
    return out


def read_losses(path: Path, n_members: int) -> np.ndarray | None:
    """`(S, K)` losses from a `metrics.csv` (as `write_metrics` writes it), or None when there is none.

    Raises `ValueError` naming the file and the line for a file that is not such a table (a corrupt
    `metrics.csv`), so that a command stops before its heavy work."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                return None
            if header != ["step", "member", "loss"]:
                raise ValueError(
                    f"{path}: not a metrics table (first line {','.join(header)!r}; expected 'step,member,loss')."
                )
            table = [(int(r[0]), int(r[1]), float(r[2])) for r in reader if r]
    except (ValueError, IndexError, UnicodeDecodeError) as e:
        if str(e).startswith(str(path)):
            raise
        line = getattr(reader, "line_num", "?") if "reader" in locals() else "?"
        raise ValueError(
            f"{path}: corrupt metrics table at line {line} (expected step,member,loss with "
            f"integer step and member and a number loss: {e})."
        ) from None
    if not table:
        return None
    steps, members = np.array([r[0] for r in table]), np.array([r[1] for r in table])
    if steps.min() < 1 or members.min() < 0 or members.max() >= n_members:
        raise ValueError(
            f"{path}: steps must be >= 1 and members in [0, {n_members - 1}] (the ensemble has "
            f"{n_members} members); got steps {steps.min()}..{steps.max()}, members "
            f"{members.min()}..{members.max()}."
        )
    losses = np.full((int(steps.max()), n_members), np.nan)
    losses[steps - 1, members] = [r[2] for r in table]
    return losses


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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT), SIGTERM or SIGHUP during `train_run`: the run folder is left valid, and the message says
    how (a checkpoint at step N to resume from, or the folder as it was before the run). `signum`: the signal
    (the command line exits with 128 + `signum`)."""

    def __init__(self, message: str = "", signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_STOPPED = {
    signal.SIGINT: "interrupted",
    getattr(signal, "SIGTERM", -1): "terminated (SIGTERM)",
    getattr(signal, "SIGHUP", -2): "hung up (SIGHUP)",
}


def _check_new_run_folder(out: Path, overwrite: bool, log) -> list[Path]:
    """A new run may go into `out` when it is new or empty; when it holds only the `config.json` of a run
    stopped before its first checkpoint (restarted); or, with `overwrite`, when it holds a run or run-folder
    files (returned, to be removed once every check has passed). Otherwise `FileExistsError`."""
    from ._outputs import derived_files, is_run_folder

    if not out.is_dir():
        return []
    if is_run_folder(out) and not overwrite:
        raise FileExistsError(
            f"{out}: already holds a run; resume it (`resume=True`, --resume {out}), choose "
            "another folder, or pass --overwrite (`overwrite=True`) to replace it."
        )
    stopped = (out / CONFIG).is_file() and not is_run_folder(out)  # a run stopped before its first checkpoint
    live = () if stopped else (METRICS, SUMMARY)  # (its live metrics are its own, and restart with it)
    ours = [out / name for name in (CHECKPOINT, *live, EVAL, ENSEMBLE) if (out / name).exists()]
    ours += derived_files(out) + [p for p in (out / "figures", out / "comparison.json") if p.exists()]
    if ours and not overwrite:
        raise FileExistsError(
            f"{out}: holds {', '.join(p.name for p in ours)}, which a new run would overwrite; "
            "choose another folder, or pass --overwrite (`overwrite=True`) to replace them."
        )
    if (out / CONFIG).is_file() and not ours:
        log(f"{out}: config.json without a checkpoint (a run stopped before its first checkpoint): starting again")
    return ours


def train_run(
    out_dir: str | Path,
    config: RunConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress=None,
    log=print,
) -> dict:
    """Train (or, with `resume=True`, continue) the run in `out_dir`; write every file; return `eval.json`.

    **Arguments:**

    - `out_dir`: the run folder.
    - `config`: the `RunConfig` (default `RunConfig()`); on resume it may only differ from the stored one
      in `train.steps` (train further; not below the steps already done).
    - `resume`: continue from `checkpoint.eqx` (a folder with `config.json` and no checkpoint, a run stopped
      before its first checkpoint, starts again from step 0).
    - `overwrite`: a new run may replace the run, or the run-folder files, already in `out_dir` (removed
      before training starts). Without it such a folder is refused: nothing on disk is overwritten by
      mistake.
    - `progress`, `log`: a progress meter, and a function of one string.

    Everything is checked before anything is written or compiled: the folder, the settings, the memory the
    run needs (`check_memory`). Ctrl-C, SIGTERM or SIGHUP saves a checkpoint of the last finished chunk (or, before the
    first checkpoint, leaves the folder as it was) and raises `Interrupted`. Writing the new `ensemble.npz`
    removes the derived files of the earlier weights (fixed points, analysis, report, figures), which a
    resumed run makes stale.

    The run folder's lock (`folder_lock`) is held throughout: another writer of the folder (a second `train`,
    an `analyze` into it, a notebook) is refused with `FolderBusy` naming this process, and this call is refused
    while another holds it.
    """
    from ._lock import folder_lock
    from ._outputs import check_writable_folder

    out = check_writable_folder(out_dir, "the run folder")
    if not is_main_process():  # a distributed run: process 0 writes, and holds the lock
        return _train_run(out, config, resume=resume, overwrite=overwrite, progress=progress, log=log)
    with folder_lock(out, "train_run", log=log):
        return _train_run(out, config, resume=resume, overwrite=overwrite, progress=progress, log=log)


def _train_run(
    out_dir: str | Path,
    config: RunConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress=None,
    log=print,
) -> dict:
    """`train_run` inside the folder's lock."""
    from .._files import clean_temporaries
    from ..training._memory import check_memory
    from ._outputs import check_writable_folder, derived_files, describe, remove_results, stale_results
    from ._serialisation import fingerprint

    out = check_writable_folder(out_dir, "the run folder")
    replaced = []
    if resume:
        stored = read_config(out)
        derived_files(out)  # its analysis.json names only files of ours inside it, or it is refused now
        if config is None:
            config = stored
        elif dataclasses.replace(config, train=dataclasses.replace(config.train, steps=stored.train.steps)) != stored:
            raise ValueError(
                f"{out}: `resume=True` can only change `steps`; the other settings must match {out / CONFIG}."
            )
    else:
        config = RunConfig() if config is None else config
        replaced = _check_new_run_folder(out, overwrite, log)
    cpu = jax.devices()[0].platform == "cpu"
    check_memory(config.ensemble, config.train, config.task, devices=jax.process_count() if cpu else jax.device_count())
    restart = resume and not (out / CHECKPOINT).is_file()
    if restart and ((out / ENSEMBLE).is_file() or (out / EVAL).is_file()):
        raise FileNotFoundError(
            f"{out / CHECKPOINT}: no checkpoint to resume from, but the run has written "
            f"results; train it again with --out {out} --overwrite."
        )
    # A distributed run (`init_distributed`): every process trains its own members and reads the
    # checkpoint; process 0 alone writes, after every process has checked the folder.
    distributed, main = is_distributed(), is_main_process()
    barrier("ctrnn_jax.train_run.checked")
    trainer = EnsembleTrainer(config.ensemble, config.train, config.task)
    state = trainer.init()
    history = np.zeros((0, config.ensemble.members), np.float32)
    if resume and not restart:
        like = to_host(state) if distributed else state
        state, history = load_checkpoint(out / CHECKPOINT, like, older=legacy_layouts(like))
        if distributed:  # from the host copy, each process puts only its own members on its devices
            state = trainer.place(state)
        if history.shape != (int(state.step), config.ensemble.members):
            raise ValueError(f"{out / CHECKPOINT}: loss history {history.shape} does not match step {int(state.step)}.")
        if config.train.steps < int(state.step):
            raise ValueError(
                f"`steps` = {config.train.steps} is below the {int(state.step)} steps {out} has already "
                f"trained; give --steps >= {int(state.step)} (the run's steps so far)."
            )
        log(f"resuming {out} from step {int(state.step)} to {config.train.steps}")
    elif restart:
        log(f"{out}: no checkpoint yet (stopped before the first one): training from step 0")
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    record = {"config": config.to_dict(), "environment": environment(), "created": now}
    if resume and not restart:
        previous = json.loads((out / CONFIG).read_text())
        record["created"] = previous.get("created", now)
        record["resumed"] = [*previous.get("resumed", []), {"at": now, "from_step": int(state.step)}]
    # Ctrl-C from here on stops the run at the end of a chunk (the folder is being written: no window in
    # which it would interrupt at an arbitrary point)
    with _stop_on_ctrl_c() as stop:
        created = not out.exists()
        if main:
            out.mkdir(parents=True, exist_ok=True)
            clean_temporaries(out)
            if replaced:
                log(f"--overwrite: removing {describe(replaced)} from {out}")
                remove_results(replaced)
            write_json(out / CONFIG, record)
        last_ckpt, saved = [int(state.step)], [resume and not restart]  # `saved`: a checkpoint file exists
        latest = [None]  # the last finished chunk: (state, losses), checkpointed on Ctrl-C

        def checkpoint(s, losses):  # in a distributed run every process gathers (a collective), process 0 writes
            s = to_host(s) if distributed else s
            if main:
                save_checkpoint(out / CHECKPOINT, s, losses)
            saved[0] = True

        live = LiveMetrics(out, history) if main else None

        def on_chunk(s, losses):
            step = int(s.step)
            latest[0] = (s, losses)
            frozen_now, met_now = to_host((s.frozen, s.criterion_step))  # (a collective in a distributed run)
            n_frozen = int(np.sum(frozen_now))
            if live is not None:
                live.chunk(losses, n_frozen, held=np.asarray(met_now) >= 0)
            if step - last_ckpt[0] >= config.checkpoint_every or step >= config.train.steps:
                checkpoint(s, np.concatenate([history, losses]))
                last_ckpt[0] = step
            if stop.is_set():  # Ctrl-C: stop here, between chunks, where the state is whole
                raise KeyboardInterrupt

        clock = time.perf_counter()
        try:
            state, losses = trainer.train(state, until=config.train.steps, progress=progress, on_chunk=on_chunk)
        except KeyboardInterrupt:
            raise _interrupted(
                out, latest[0], history, last_ckpt, saved, checkpoint, created, main, stop.signum
            ) from None
    history = np.concatenate([history, losses])
    if last_ckpt[0] != int(state.step) or not saved[0]:
        checkpoint(state, history)
    wall = time.perf_counter() - clock
    result = evaluate_run(state.model, config, state)  # sharded like the training, gathered
    result["training"] = training_record(config, int(state.step), wall, out / EVAL if resume and not restart else None)
    model = to_host(state.model) if distributed else state.model
    network = fingerprint(model)
    result["network"] = network
    if main:
        # the results of the earlier weights go first, then the new weights, then their evaluation: a kill -9
        # at any point leaves no file that describes other weights than `ensemble.npz`'s
        stale = remove_results(stale_results(out, network))
        if (out / EVAL).is_file() and _recorded(out / EVAL) not in (None, network):
            (out / EVAL).unlink()
        if stale:
            log(f"removed the results of the earlier weights, stale now: {describe(stale)}")
        save_npz(model, out / ENSEMBLE)  # (metrics.csv: appended chunk by chunk, by `live`)
        write_json(out / EVAL, result)
    frozen = [i for i, f in enumerate(result.get("frozen", [])) if f]
    if frozen and main:
        log(
            f"members frozen after a non-finite loss or gradient: {frozen} "
            f"(at steps {[result['frozen_step'][i] for i in frozen]})"
        )
    barrier("ctrnn_jax.train_run.written")  # the files are on disk before any process reads them
    return result


class _Stop(threading.Event):
    """Set by the first stop signal; `signum` says which."""

    signum = signal.SIGINT


@contextlib.contextmanager
def _stop_on_ctrl_c():
    """An event set by Ctrl-C (SIGINT), SIGTERM (a scheduler's pre-emption) or SIGHUP (a closed terminal), for
    the training loop to stop at the end of the current chunk. A KeyboardInterrupt raised at an arbitrary point
    can be swallowed (e.g. inside a garbage-collection callback of JAX) or leave the state half-updated; a
    second signal raises at once. Outside the main thread (no signal handler can be set) the event is never
    set and the signals act as usual."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.is_set():
            raise Interrupted(_STOPPED.get(signum, "interrupted"), signum)
        stop.signum = signum
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)


def _recorded(path: Path):
    """The `network` an `eval.json` records (None: none, or unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data.get("network") if isinstance(data, dict) else None


def _interrupted(
    out, latest, history, last_ckpt, saved, checkpoint, created, main, signum=signal.SIGINT
) -> Interrupted:
    """Ctrl-C: checkpoint the last finished chunk, or (nothing saved yet) undo the folder; the message."""
    if latest is not None and int(latest[0].step) > last_ckpt[0]:
        checkpoint(latest[0], np.concatenate([history, latest[1]]))
        last_ckpt[0] = int(latest[0].step)
    if saved[0]:
        return Interrupted(
            f"{_STOPPED[signum]}: {out / CHECKPOINT} holds step {last_ckpt[0]}; continue with "
            f"`ctrnn-jax train --resume {out}`.",
            signum,
        )
    if main:
        for name in (CONFIG, METRICS, SUMMARY):
            (out / name).unlink(missing_ok=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
    return Interrupted(
        f"{_STOPPED[signum]} before the first checkpoint: {out} is left as it was before the run.", signum
    )


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
    - `task` a name or an import string: that task class's `for_sizes(M, O)` (the flip-flop gets `n_bits = M`).
    - `task` None: the 3-bit flip-flop when `M = O = 3` (the paper's case, as for every bare file
      before), else None: no task, and the commands analyse the network without one (fixed points at
      a given constant input, found from trajectories under random input).

    Raises `ValueError` naming the sizes when the task does not fit the ensemble.
    """
    m, o = ensemble.W_in.shape[-1], ensemble.W_out.shape[-2]
    if task is None:
        return FlipFlopConfig() if m == o == 3 else None
    if isinstance(task, str):  # a name or an import string: the task class's defaults for these sizes
        from ..tasks._tasks import task_class

        task = task_class(task).for_sizes(m, o)
    check_task(task)
    if (task.n_inputs, task.n_outputs) != (m, o):
        raise ValueError(
            f"the {task.name} task has {task.n_inputs} input(s) and {task.n_outputs} output(s); the "
            f"ensemble has M = {m} inputs and O = {o} outputs."
        )
    return task


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
                    cube_json, {"network": network, "per_member": _jsonable(per_member), "summary": _jsonable(summary)}
                )
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
