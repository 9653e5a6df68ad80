"""Pluggable progress meters, updated from the host between compiled chunks of training steps.

`TqdmProgress` (default) shows a bar; `TextProgress` prints lines; `NoProgress` is silent.
"""

import sys

import numpy as np


def _summary(losses: np.ndarray) -> dict[str, str]:
    finite = losses[np.isfinite(losses)]
    if finite.size == 0:
        return {"median": "nan", "min": "nan", "max": "nan"}
    return {"median": f"{np.median(finite):.4g}", "min": f"{finite.min():.4g}", "max": f"{finite.max():.4g}"}


class NoProgress:
    """Report nothing."""

    def start(self, total: int, initial: int = 0) -> None:
        pass

    def update(self, step: int, losses: np.ndarray, n_frozen: int) -> None:
        pass

    def close(self) -> None:
        pass


class TextProgress(NoProgress):
    """Print one line per update: step, median/min/max loss over members, frozen count."""

    def __init__(self, file=None):
        self.file = file if file is not None else sys.stderr

    def start(self, total: int, initial: int = 0) -> None:
        self.total = total

    def update(self, step: int, losses: np.ndarray, n_frozen: int) -> None:
        s = _summary(losses)
        print(
            f"step {step}/{self.total}  loss median {s['median']}  min {s['min']}  max {s['max']}  frozen {n_frozen}",
            file=self.file,
            flush=True,
        )


class TqdmProgress(NoProgress):
    """A tqdm bar whose postfix shows the ensemble's median/min/max loss."""

    def __init__(self, **tqdm_kwargs):
        try:
            import tqdm  # noqa: F401
        except ImportError as e:  # pragma: no cover
            raise ImportError("TqdmProgress needs tqdm: `pip install tqdm`, or use TextProgress().") from e
        self.kwargs = tqdm_kwargs
        self.bar = None

    def start(self, total: int, initial: int = 0) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, unit="step", **self.kwargs)
        self.last = initial

    def update(self, step: int, losses: np.ndarray, n_frozen: int) -> None:
        postfix = _summary(losses)
        if n_frozen:
            postfix["frozen"] = str(n_frozen)
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(step - self.last)
        self.last = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
