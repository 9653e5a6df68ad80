"""`config.json`, a run folder's settings: `RunConfig` (everything that defines a run), the environment recorded
beside it (package versions, device), and `read_config`."""

import dataclasses
import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jax

from .._checks import check_positive
from ..tasks._flipflop import FlipFlopConfig
from ..tasks._task import check_task
from ..tasks._tasks import task_from_dict, task_spec
from ..training._ensemble import EnsembleConfig
from ..training._train import TrainConfig
from ._outputs import CONFIG


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
