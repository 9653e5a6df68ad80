"""The registry of tasks by name (what `ctrnn-jax train --task NAME` and run folders use), and a user's own
task by import string (`--task my_module:SineGen`) or by entry point (group `ctrnn_jax.tasks`)."""

import dataclasses
from importlib.metadata import entry_points
from typing import Any, cast

from .._imports import import_object, import_string, is_import_string
from ._decision import ContextDMConfig, PerceptualDMConfig
from ._flipflop import FlipFlopConfig
from ._memory import DelayedMatchConfig, ParametricWMConfig
from ._neurogym import NeurogymTask
from ._task import AbstractTask, check_task, check_task_class
from ._yang import DelayedNonMatchConfig, GoConfig

TASKS: dict[str, type[AbstractTask]] = {
    cls.name: cls
    for cls in (
        FlipFlopConfig,
        PerceptualDMConfig,
        ContextDMConfig,
        DelayedMatchConfig,
        ParametricWMConfig,
        NeurogymTask,
        GoConfig,
        DelayedNonMatchConfig,
    )
}
ENTRY_POINTS = "ctrnn_jax.tasks"  # the entry-point group a package registers its tasks in


def _entry_point(name: str) -> type | None:
    """The task class a package registers as `name` in the entry-point group `ctrnn_jax.tasks`, or None."""
    for ep in entry_points(group=ENTRY_POINTS):
        if ep.name == name:
            return import_object(ep.value, what="task", base=AbstractTask)
    return None


def task_class(name: object) -> type[AbstractTask]:
    """The task class named `name`: a registered name, an import string `module:QualName`, or an entry point of
    the group `ctrnn_jax.tasks`. Raises a one-line `ValueError` otherwise (listing the names)."""
    if is_import_string(name):
        return import_object(name, what="task", base=AbstractTask)
    if name in TASKS:
        return TASKS[name]
    found = _entry_point(name) if isinstance(name, str) and name else None
    if found is None:
        raise ValueError(f"`task` must be one of {', '.join(TASKS)}, or a task class as module:QualName; got {name!r}.")
    return found


def task_spec(task: object) -> str:
    """What finds `task`'s class again: its registry name when that names this class, else its import string."""
    check_task(task)
    cls = type(cast(AbstractTask, task))  # check_task: a task
    return cls.name if TASKS.get(cls.name) is cls else import_string(cls)


def make_task(name: str, **fields: Any):
    """A task by name (or import string), with its fields (unknown fields raise a ValueError listing the allowed
    ones, for a dataclass task)."""
    cls = task_class(name)
    if dataclasses.is_dataclass(cls):
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise ValueError(f"unknown {name} task option(s) {unknown}; allowed: {sorted(allowed)}.")
    return cls(**fields)


def task_from_dict(name: str, d: dict[str, Any]):
    """Inverse of `task.to_dict()` for the task class `name` (a registered name or an import string)."""
    return task_class(name).from_dict(d)


def task_name(task: object) -> str:
    check_task(task)
    return cast(AbstractTask, task).name


def register_task(cls: type) -> type:
    """Register a task class (a subclass of `AbstractTask`) under its `name`, so that run folders and
    `--task NAME` find it; returns `cls`, so it can be used as a class decorator. Re-registering a name replaces
    the old class."""
    if not (isinstance(cls, type) and issubclass(cls, AbstractTask)):
        raise TypeError(f"a task class must subclass ctrnn_jax.AbstractTask; got {cls!r}.")
    check_task_class(cls)
    if ":" in cls.name:
        raise TypeError(f"a task's `name` may not contain ':', got {cls.name!r}.")
    TASKS[cls.name] = cls
    return cls
