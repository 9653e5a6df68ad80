"""`TensorBoardProgress`: a progress meter that logs the ensemble's training to TensorBoard event files.

Needs the optional extra `pip install 'ctrnn-ensembles[tensorboard]'` (tensorboardX, a small writer-only package;
TensorFlow is not needed to write, only `tensorboard` to look: `tensorboard --logdir RUN/tensorboard`).
"""

import time
from pathlib import Path
from typing import Any

import numpy as np

from ._progress import NoProgress

INSTALL = "pip install 'ctrnn-ensembles[tensorboard]' (or pip install tensorboardX)"


class TensorBoardProgress(NoProgress):
    """Log every update (one per compiled chunk) to TensorBoard event files in `logdir`.

    **Arguments:**

    - `logdir`: the folder of the event files (made if needed).
    - `per_member`: also log one loss curve per member (`loss/member_<k>`) when the ensemble has at most
      this many members (default 16); larger ensembles get only the summary and the histogram.
    - `display`: another progress meter to forward every call to (e.g. `TqdmProgress()`), or None.

    Logged at each update's step: `loss/median`, `loss/min`, `loss/max` (over members, at the chunk's last
    step), `members/frozen`, `speed/steps_per_s`, and the histogram `loss/members` of every member's loss.
    """

    def __init__(self, logdir, *, per_member: int = 16, display=None):
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise ImportError(f"TensorBoardProgress needs tensorboardX: {INSTALL}.") from None
        if isinstance(per_member, bool) or not isinstance(per_member, int) or per_member < 0:
            raise ValueError(f"`per_member` must be an integer >= 0, got {per_member!r}.")
        self.logdir, self.per_member, self.display = Path(logdir), per_member, display or NoProgress()
        self.writer: Any = None  # a tensorboardX SummaryWriter from `start`

    def start(self, total: int, initial: int = 0) -> None:
        from tensorboardX import SummaryWriter

        self.logdir.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(logdir=str(self.logdir), flush_secs=10)
        self.last, self.clock = initial, time.perf_counter()
        self.display.start(total, initial)

    def update(self, step: int, losses: np.ndarray, n_frozen: int) -> None:
        losses = np.asarray(losses, np.float64)
        finite = losses[np.isfinite(losses)]
        w = self.writer
        if finite.size:
            w.add_scalar("loss/median", float(np.median(finite)), step)
            w.add_scalar("loss/min", float(finite.min()), step)
            w.add_scalar("loss/max", float(finite.max()), step)
            w.add_histogram("loss/members", finite, step)
        w.add_scalar("members/frozen", int(n_frozen), step)
        now = time.perf_counter()
        w.add_scalar("speed/steps_per_s", (step - self.last) / max(now - self.clock, 1e-9), step)
        self.last, self.clock = step, now
        if losses.size <= self.per_member:
            for k, value in enumerate(losses.tolist()):
                if value == value:  # a member held at the criterion has no loss (NaN): no point
                    w.add_scalar(f"loss/member_{k}", value, step)
        w.flush()
        self.display.update(step, losses, n_frozen)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.display.close()


__all__ = ["INSTALL", "TensorBoardProgress"]
