"""The registry of tasks by name (what `ctrnn-jax train --task NAME` and run folders use)."""

import dataclasses
from typing import Any

from ._decision import ContextDMConfig, PerceptualDMConfig
from ._flipflop import FlipFlopConfig
from ._memory import DelayedMatchConfig, ParametricWMConfig
from ._neurogym import NeurogymTask
from ._task import check_task

TASKS: dict[str, type] = {cls.name: cls for cls in (FlipFlopConfig, PerceptualDMConfig, ContextDMConfig,
                                                     DelayedMatchConfig, ParametricWMConfig, NeurogymTask)}


def task_class(name: object) -> type:
    """The task class registered as `name` (clear error listing the names otherwise)."""
    if name not in TASKS:
        raise ValueError(f"`task` must be one of {', '.join(TASKS)}; got {name!r}.")
    return TASKS[name]


def make_task(name: str, **fields: Any):
    """A task by name, with its fields (unknown fields raise a ValueError listing the allowed ones)."""
    cls = task_class(name)
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"unknown {name} task option(s) {unknown}; allowed: {sorted(allowed)}.")
    return cls(**fields)


def task_from_dict(name: str, d: dict[str, Any]):
    """Inverse of `task.to_dict()` for the task registered as `name`."""
    cls = task_class(name)
    return cls.from_dict(d) if hasattr(cls, "from_dict") else cls(**d)


def task_name(task: object) -> str:
    check_task(task)
    return task.name  # type: ignore[attr-defined]


def register_task(cls: type) -> type:
    """Register a task class under its `name` (so run folders and `--task NAME` find it); returns
    `cls`, so it can be used as a class decorator. Re-registering a name replaces the old class."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"a task class needs a class attribute `name` (a non-empty string); {cls!r} has {name!r}.")
    for attr in ("sample", "test_set", "score", "fixed_point_inputs", "to_dict"):
        if not callable(getattr(cls, attr, None)):
            raise TypeError(f"task class {cls.__name__} lacks the method `{attr}` of the task protocol.")
    TASKS[name] = cls
    return cls
