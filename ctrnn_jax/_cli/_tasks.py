"""The task options shared by the commands: `--task NAME` (choices: the registered tasks, plus
`neurogym:ENV_ID`, a user's task class as `module:QualName` and the tasks packages register in the entry-point
group `ctrnn_jax.tasks`) with its `--task-opt FIELD=VALUE`, and the task of a run folder or a bare
`ensemble.npz`."""

import argparse
import dataclasses
import math
import typing

from .._imports import is_import_string
from ..tasks._flipflop import FlipFlopConfig
from ..tasks._neurogym import NeurogymTask
from ..tasks._tasks import ENTRY_POINTS, TASKS
from ._options import format_value, invalid_value, parse_value

NEUROGYM = NeurogymTask.name  # `--task neurogym:ENV_ID`: a NeuroGym environment (the spelling, not an import string)


def task_names() -> tuple[str, ...]:
    """The registered task names, NeuroGym's as `neurogym:ENV_ID`."""
    return tuple(f"{NEUROGYM}:ENV_ID" if name == NEUROGYM else name for name in TASKS)


def entry_point_names() -> set[str]:
    """The task names packages register in the entry-point group `ctrnn_jax.tasks`."""
    from importlib.metadata import entry_points

    return {ep.name for ep in entry_points(group=ENTRY_POINTS)}


TASK_NAMES = task_names()  # those registered when the command line is imported


class TaskChoices(tuple):
    """The `choices=` of `--task`: the registered task names (what `--help` lists); `in` also accepts
    `neurogym:ENV_ID` for any environment id (NeuroGym checks it)."""

    def __new__(cls):
        return super().__new__(cls, task_names())

    def __contains__(self, name) -> bool:
        if not isinstance(name, str):
            return False
        if name.partition(":")[0] == NEUROGYM:
            return NEUROGYM in TASKS and bool(name.partition(":")[2])
        return name in TASKS or is_import_string(name) or name in entry_point_names()


def add_task_option(group, *, default, help_: str) -> None:
    """`--task NAME`, its choices listed by `--help`."""
    group.add_argument(
        "--task",
        default=default,
        choices=TaskChoices(),
        metavar="TASK",
        help=help_ + f"; one of {', '.join(task_names())}, or your own task class as module:QualName "
        "(importable: installed or on PYTHONPATH)",
    )


def add_bare_task_options(parser) -> None:
    """`--task`/`--task-opt` of a command that reads an ensemble: for a bare ensemble.npz only."""
    g = parser.add_argument_group("task of a bare ensemble.npz (a run folder's task is in its config.json)")
    add_task_option(
        g,
        default=None,
        help_="the task; flipflop takes n_bits = M = O (default: the 3-bit flip-flop when M = O = 3, "
        "otherwise no task: fixed points at --input)",
    )
    g.add_argument(
        "--task-opt",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a field of that task's config, e.g. --task-opt length=500 (repeatable)",
    )


def make_task(name: str, task_opts, given: dict | None = None, flags: dict | None = None, *, sizes=None):
    """The task `name` with its `--task-opt FIELD=VALUE` options, and (for the flip-flop) the fields
    `given` by its own options (`flags`: their option names, for messages). A field given both ways with
    different values is refused. `sizes`: `(M, O)` of an ensemble: the fields the task class's `for_sizes`
    sets (the flip-flop's `n_bits`) unless given."""
    from ..tasks._tasks import make_task as make
    from ..tasks._tasks import task_class

    given, flags = dict(given or {}), flags or {}
    if name.partition(":")[0] == NEUROGYM:  # neurogym:ENV_ID; --task-opt KEY=VALUE for the environment
        from ..tasks._neurogym import neurogym_task

        if given:
            raise ValueError(
                f"{', '.join(flags.get(k, k) for k in given)}: flip-flop options, but --task is {name}; "
                "use --task-opt KEY=VALUE"
            )
        return neurogym_task(name, list(task_opts))
    cls: typing.Any = task_class(name)  # a dataclass (checked below) with `for_sizes`
    if not issubclass(cls, FlipFlopConfig) and given:  # the flip-flop options are FlipFlopConfig's fields
        raise ValueError(
            f"{', '.join(flags.get(k, k) for k in given)}: flip-flop options, but --task is {name}; "
            "use --task-opt FIELD=VALUE"
        )
    if not dataclasses.is_dataclass(cls) and task_opts:
        raise ValueError(f"--task-opt: the {name} task is not a dataclass; it takes no FIELD=VALUE options")
    hints = typing.get_type_hints(cls)
    fields = dict(given)
    if sizes is not None:  # what the sizes set, e.g. the flip-flop's n_bits = M
        base, default = cls.for_sizes(*sizes), cls()
        fields = {
            f.name: getattr(base, f.name)
            for f in dataclasses.fields(cls)
            if getattr(base, f.name) != getattr(default, f.name)
        } | fields
    for opt in task_opts:
        field, sep, text = opt.partition("=")
        field = field.strip()
        if not sep or field not in hints or field not in {f.name for f in dataclasses.fields(cls)}:
            allowed = ", ".join(f.name for f in dataclasses.fields(cls))
            raise ValueError(f"--task-opt {opt!r}: expected FIELD=VALUE with FIELD one of {allowed}")
        try:
            value = parse_value(hints[field], text)
        except ValueError:
            raise ValueError(f"--task-opt {field}: {invalid_value(hints[field], text)}") from None
        if field in given and given[field] != value:
            raise ValueError(
                f"{flags.get(field, field)} {format_value(given[field])} and --task-opt {opt} disagree; give one"
            )
        fields[field] = value
    return make(name, **fields)


def task_for(args, ensemble, config):
    """The task of a run folder (its config.json), or of a bare ensemble.npz: `--task NAME` with its
    `--task-opt`s (the flip-flop's `n_bits` defaults to M), else what the sizes say (`task_for_ensemble`:
    the 3-bit flip-flop when M = O = 3, otherwise None: no task)."""
    from ..io._run import task_for_ensemble

    if config is not None:
        from ..tasks._tasks import task_spec

        if (args.task is not None and args.task not in (config.task.name, task_spec(config.task))) or args.task_opt:
            raise ValueError(
                f"--task/--task-opt are for a bare ensemble.npz; {args.path} is a run folder of the "
                f"{config.task.name} task (its config.json)"
            )
        return config.task
    if args.task is None:
        if args.task_opt:
            raise ValueError("--task-opt needs --task NAME")
        return task_for_ensemble(ensemble)
    sizes = (ensemble.W_in.shape[-1], ensemble.W_out.shape[-2])
    if args.task.partition(":")[0] == NEUROGYM:
        return task_for_ensemble(ensemble, make_task(args.task, list(args.task_opt)))
    return task_for_ensemble(ensemble, make_task(args.task, list(args.task_opt), sizes=sizes))


def fitting_tasks(m: int, o: int) -> str:
    """The registered tasks (with their defaults) whose sizes are M inputs and O outputs."""
    names = []
    for name, cls in TASKS.items():
        try:
            task = cls.for_sizes(m, o)
        except Exception:  # noqa: BLE001 - a task that needs arguments (e.g. neurogym's env id) is not listed
            continue
        if (task.n_inputs, task.n_outputs) == (m, o):
            changed = {k: v for k, v in task.to_dict().items() if cls().to_dict().get(k) != v}
            names.append(name + (f" ({', '.join(f'{k} = {v}' for k, v in changed.items())})" if changed else ""))
    return f"tasks of that size: {', '.join(names)}" if names else "no registered task has that size"


def constant_input(text: str) -> list[float]:
    """`--input X1,X2,...`: an argparse `type=` (comma-separated numbers)."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values
