"""`metrics.csv` and `summary.csv`, a run folder's training losses: written whole (`write_metrics`), appended
live after every compiled chunk (`LiveMetrics`), and read back (`read_losses`)."""

import csv
import os
import time
from pathlib import Path

import numpy as np

from .._files import atomic_write
from ._outputs import METRICS, SUMMARY


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
