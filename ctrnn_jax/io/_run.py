"""Run folders, the workflow: train an ensemble into a directory (`train_run`), checkpoint it atomically, resume
it, stop it cleanly on a signal (`Interrupted`), and read its ensemble back (`load_run_ensemble`, and
`task_for_ensemble` for a bare `ensemble.npz`). The files have modules of their own: `config.json`
(`_run_config.py`), `metrics.csv` and `summary.csv` (`_metrics.py`), `eval.json` (`_eval.py`).

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
import dataclasses
import datetime
import json
import signal
import threading
import time
from pathlib import Path

import jax
import numpy as np

from .._files import write_json
from ..tasks._flipflop import FlipFlopConfig
from ..tasks._task import check_task
from ..training._distributed import barrier, is_distributed, is_main_process, to_host
from ..training._train import EnsembleTrainer, legacy_layouts
from ._eval import evaluate_run, training_record
from ._metrics import LiveMetrics
from ._outputs import CHECKPOINT, CONFIG, ENSEMBLE, EVAL, METRICS, SUMMARY
from ._run_config import RunConfig, environment, read_config
from ._serialisation import load_checkpoint, load_npz, save_checkpoint, save_npz


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
