"""The multitask: any tasks composed into one, with one-hot rule inputs (Yang et al. 2019), and its preset close to
Yang's task family (`MultitaskConfig.yang19`).

A trial is one component task's trial, written into a shared layout:

- **inputs** `(T, M)`: `[fixation cue (with `fixation`), S shared stimulus channels, one rule channel per
  component]`; component `i`'s input `j` goes to shared stimulus channel `channels[j]` of its `TaskSlot`, its rule
  channel is 1 for the component's steps;
- **targets and mask** `(T, O)`, `O` the largest component output count: component output `j` is shared output `j`;
- **padding**: a trial shorter than the longest component (`T`) is padded at the end, and a component with fewer
  outputs on the right, with zero inputs (rule and fixation included), zero targets and zero mask.

`sample` draws each trial's component from the mixture (`weights`; uniform by default) and takes that trial from
the component's own `sample`, inside the compiled step: every component samples a whole batch from its own key
(`jax.random.split(key, n + 1)[i + 1]`) and each trial keeps the row of its component, so that trial `b` of
component `i` is row `b` of `task_i.sample(key_i, B)` (what the tests check). A NeuroGym component (its trials are
made on the host) is drawn from a bank of `bank_size` trials made once (`dataset`) and held by the compiled step.
"""

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, ClassVar, cast

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_float, check_int, check_key, config_from_dict
from ._decision import ContextDMConfig, PerceptualDMConfig
from ._memory import DelayedMatchConfig
from ._neurogym import NeurogymTask
from ._task import AbstractTask, check_task, masked_mse_np
from ._tasks import register_task, task_from_dict, task_spec
from ._yang import DelayedNonMatchConfig, GoConfig

Trials = tuple[jax.Array, jax.Array, jax.Array]


def _check_label(name: str, value: object) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise TypeError(f"`{name}` must be a non-empty string without '/', got {value!r}.")
    return value


@dataclasses.dataclass(frozen=True)
class TaskSlot:
    """One component of a `MultitaskConfig`: a task, its name in the scores, and where its inputs go.

    **Fields:**

    - `task`: the component task (an `AbstractTask`).
    - `label`: its name in the multitask's scores (`LABEL/accuracy`, ...) and trial groups; default the task's
      `label` attribute if it has one (`GoConfig`: `go`, `anti`, `delay_go`, `delay_anti`), else its `name`.
    - `channels`: for each of the task's inputs, the shared stimulus channel it goes to (distinct integers >= 0);
      default `0, 1, ..., M - 1` (tasks share their first channels).
    """

    task: AbstractTask
    label: str | None = None
    channels: tuple[int, ...] | None = None

    def __post_init__(self):
        check_task(self.task)
        label = getattr(self.task, "label", self.task.name) if self.label is None else self.label
        object.__setattr__(self, "label", _check_label("label", label))
        m = int(self.task.n_inputs)
        channels = tuple(range(m)) if self.channels is None else self.channels
        if isinstance(channels, (str, bytes)) or not isinstance(channels, (tuple, list)):
            raise TypeError(f"`channels` of {label!r} must be a tuple of integers, got {channels!r}.")
        channels = tuple(check_int(f"channels[{j}]", c, 0) for j, c in enumerate(channels))
        if len(channels) != m:
            raise ValueError(f"`channels` of {label!r} must name one shared channel per input ({m}), got {channels}.")
        if len(set(channels)) != m:
            raise ValueError(f"`channels` of {label!r} must be distinct, got {channels}.")
        object.__setattr__(self, "channels", channels)

    @property
    def sizes(self) -> tuple[int, int, int]:
        """The task's `(n_inputs, n_outputs, length)`."""
        task: Any = self.task  # every task has them (check_task)
        return int(task.n_inputs), int(task.n_outputs), int(task.length)

    @property
    def columns(self) -> tuple[int, ...]:
        """`channels`, filled in."""
        return cast(tuple[int, ...], self.channels)


# The preset's shared stimulus channels (after the fixation cue): see `MultitaskConfig.yang19`.
YANG19_CHANNELS = ("mod1", "mod2", "cue_mod1", "cue_mod2", "item_a", "item_b")


def yang19_slots() -> tuple[TaskSlot, ...]:
    """The components of `MultitaskConfig.yang19()` (documented there)."""
    go = GoConfig(fixation_input=False)
    return (
        TaskSlot(go, channels=(0,)),
        TaskSlot(dataclasses.replace(go, anti=True), channels=(0,)),
        TaskSlot(dataclasses.replace(go, memory=True), channels=(0,)),
        TaskSlot(dataclasses.replace(go, memory=True, anti=True), channels=(0,)),
        TaskSlot(PerceptualDMConfig(), label="dm1", channels=(0,)),
        TaskSlot(PerceptualDMConfig(), label="dm2", channels=(1,)),
        TaskSlot(ContextDMConfig(), label="ctx_dm", channels=(0, 1, 2, 3)),
        TaskSlot(DelayedMatchConfig(), channels=(4, 5)),
        TaskSlot(DelayedNonMatchConfig(), channels=(4, 5)),
    )


@functools.lru_cache(maxsize=16)
def _bank(task: AbstractTask, seed: int, size: int) -> tuple[np.ndarray, ...]:
    """`size` trials of a host-made task (NeuroGym), made once."""
    return tuple(np.asarray(a, np.float32) for a in task.dataset(jax.random.key(seed), size))


@functools.lru_cache(maxsize=8)
def _test_set(task: "MultitaskConfig") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The multitask's test set on the host and each trial's component."""
    parts = [task._place(i, *slot.task.test_set()) for i, slot in enumerate(task._slots)]
    index = np.concatenate([np.full(p[0].shape[0], i) for i, p in enumerate(parts)])
    inputs, targets, mask = (np.concatenate([np.asarray(p[k]) for p in parts]) for k in range(3))
    return inputs, targets, mask, index


@functools.partial(jax.jit, static_argnums=(0, 2))
def _sample(task: "MultitaskConfig", key, batch_size):
    n = len(task.tasks)
    keys = jax.random.split(key, n + 1)
    p = None if task.weights is None else jnp.asarray(np.asarray(task.weights) / sum(task.weights), jnp.float32)
    index = jax.random.choice(keys[0], n, (batch_size,), p=p).astype(jnp.int32)
    parts = [task._place(i, *task._component_batch(i, keys[i + 1], batch_size)) for i in range(n)]
    rows = jnp.arange(batch_size)
    inputs, targets, mask = (jnp.stack([p[k] for p in parts])[index, rows] for k in range(3))
    return inputs, targets, mask, index


@register_task  # here, not in the registry's module: the multitask's `to_dict` uses the registry
@dataclasses.dataclass(frozen=True)
class MultitaskConfig(AbstractTask):
    """Many tasks in one network, told apart by one-hot rule inputs (Yang, Joglekar, Song, Newsome & Wang 2019,
    Nature Neuroscience 22:297). The default is the preset `yang19()`.

    Each trial is a trial of one component task in a shared layout (see the module docstring): inputs
    `[fixation cue, S stimulus channels, n rule channels]` (`M = fixation + S + n`), outputs the components'
    outputs (`O` the largest count), `T` the longest component trial; shorter trials and fewer outputs are padded
    with zero inputs, targets and mask. The fixation cue (`fixation=True`) is 1 from the start of the trial until
    its response onset, the first step at which any of the component's targets is non-zero, and 0 from there
    (Yang's go signal is its offset); it is meant for tasks whose targets are 0 until the response (every decision
    and memory task here); turn it off for others.

    **Fields:**

    - `tasks`: the components, `TaskSlot`s or plain tasks (a plain task is `TaskSlot(task)`: its name as label,
      its inputs on the first shared channels); at least one, labels distinct. Default: `yang19_slots()`.
    - `weights`: the mixture, one weight >= 0 per component (sum > 0), normalised; None (default): uniform.
    - `fixation`: add the fixation cue as input channel 0, default True.
    - `bank_size`, `bank_seed`: the bank of a NeuroGym component (trials made once on the host; component `i`'s
      from seed `bank_seed + i`), default 4096 and 0.

    **Scores** (`score`, on the test set; `score_tasks` on any trials with their components): each component's own
    `score` on its own trials (un-padded), as `LABEL/KEY` for each of its keys (`dm1/accuracy`, `dm1/mse`, ...),
    `metric` = `tasks_solved`, the fraction of components whose own metric passes their own threshold (in their
    own direction), `success` when all do (`success_threshold` 1), and `mse`, the masked MSE of all trials.

    The test set (`test_set`) is every component's test set in turn (not weighted), in the shared layout.
    """

    name: ClassVar[str] = "multitask"
    metric_name: ClassVar[str] = "tasks_solved"
    higher_is_better: ClassVar[bool] = True

    tasks: tuple[TaskSlot | AbstractTask, ...] = dataclasses.field(default_factory=yang19_slots)
    weights: tuple[float, ...] | None = None
    fixation: bool = True
    bank_size: int = 4096
    bank_seed: int = 0

    def __post_init__(self):
        tasks = self.tasks
        if isinstance(tasks, (AbstractTask, TaskSlot)) or not isinstance(tasks, (tuple, list)) or not tasks:
            raise TypeError(f"`tasks` must be a non-empty tuple of tasks or TaskSlots, got {tasks!r}.")
        slots = []
        for i, t in enumerate(tasks):
            if isinstance(t, AbstractTask):
                t = TaskSlot(t)
            if not isinstance(t, TaskSlot):
                raise TypeError(f"`tasks[{i}]` must be a task (an AbstractTask) or a TaskSlot, got {t!r}.")
            slots.append(t)
        object.__setattr__(self, "tasks", tuple(slots))
        labels = [s.label for s in slots]
        repeated = sorted({x for x in labels if labels.count(x) > 1})
        if repeated:
            raise ValueError(
                f"`tasks` must have distinct labels (give TaskSlot(task, label=...)); repeated: {repeated}."
            )
        used = {c for s in slots for c in s.columns}
        unused = sorted(set(range(max(used, default=-1) + 1)) - used)
        if unused:
            raise ValueError(f"`tasks`: the shared stimulus channels {unused} are used by no task's `channels`.")
        if self.weights is not None:
            w = self.weights
            if isinstance(w, (str, bytes)) or not isinstance(w, (tuple, list)):
                raise TypeError(f"`weights` must be None or a tuple of numbers, got {w!r}.")
            w = tuple(check_float(f"weights[{i}]", v) for i, v in enumerate(w))
            if len(w) != len(slots):
                raise ValueError(f"`weights` must hold one weight per task ({len(slots)}), got {len(w)}.")
            if any(v < 0 for v in w) or sum(w) <= 0:
                raise ValueError(f"`weights` must be >= 0 with a positive sum, got {w}.")
            object.__setattr__(self, "weights", w)
        if not isinstance(self.fixation, (bool, np.bool_)):
            raise TypeError(f"`fixation` must be True or False, got {self.fixation!r}.")
        object.__setattr__(self, "fixation", bool(self.fixation))
        object.__setattr__(self, "bank_size", check_int("bank_size", self.bank_size, 1))
        object.__setattr__(self, "bank_seed", check_int("bank_seed", self.bank_seed, 0))

    @classmethod
    def yang19(cls, weights: Sequence[float] | None = None) -> "MultitaskConfig":
        """The preset close to Yang et al. 2019's family, with the tasks here (the default `MultitaskConfig()`).

        Nine rules: `go`, `anti`, `delay_go`, `delay_anti` (`GoConfig` without its own fixation input), `dm1` and
        `dm2` (`PerceptualDMConfig` on modality 1 or 2), `ctx_dm` (`ContextDMConfig`: both modalities and its
        context cue), `dms` (`DelayedMatchConfig`) and `dnms` (`DelayedNonMatchConfig`). Inputs (M = 16): the
        fixation cue, the shared stimulus channels `mod1`, `mod2`, `cue_mod1`, `cue_mod2`, `item_a`, `item_b`
        (`YANG19_CHANNELS`), then the nine rule channels in that order; one output (the signed choice); T = 75.

        How it differs from Yang 2019 (20 rules, 85 inputs, 33 outputs): a stimulus is a signed scalar per
        modality, not a ring of 32 direction-tuned units, and there are two choices (left/right, `±1` on one
        output) instead of a direction read out on a ring plus a fixation output; the fixation output is not
        trained (the target is 0 until the response instead); the context DM is one rule with its own context cue
        (Yang: ctxDM1 and ctxDM2, two rules); DMS/DNMS compare two items on their own channels (Yang: ring
        directions); Yang's RT Go/Anti, MultiDM, the delayed DM tasks and the category-matching tasks
        (DMC/DNMC) are missing; epochs are fixed-length steps of 20 ms with a small jitter (Yang draws them from
        wide distributions, dt = 20 ms); noise is on the stimuli only, not on every input.
        """
        return cls(tasks=yang19_slots(), weights=None if weights is None else tuple(weights))

    # ------------------------------------------------------------------------------------------ sizes

    @property
    def n_stimulus(self) -> int:
        """`S`: the shared stimulus channels."""
        return 1 + max(c for s in self._slots for c in s.columns)

    @property
    def n_inputs(self) -> int:
        """`M = fixation + S + n`."""
        return int(self.fixation) + self.n_stimulus + len(self.tasks)

    @property
    def n_outputs(self) -> int:
        """`O`: the largest component output count."""
        return max(s.sizes[1] for s in self._slots)

    @property
    def length(self) -> int:
        """`T`: the longest component trial."""
        return max(s.sizes[2] for s in self._slots)

    @property
    def labels(self) -> tuple[str, ...]:
        """The components' labels, in order (the rule channels' order)."""
        return tuple(str(s.label) for s in self._slots)

    @property
    def _slots(self) -> tuple[TaskSlot, ...]:
        return cast(tuple[TaskSlot, ...], self.tasks)  # __post_init__ made every entry a TaskSlot

    def rule_channel(self, i: int) -> int:
        """The input channel of component `i`'s rule."""
        return int(self.fixation) + self.n_stimulus + i

    # ------------------------------------------------------------------------------------------ trials

    def _place(self, i: int, inputs, targets, mask) -> Trials:
        """Component `i`'s trials `(B, T_i, M_i)`, `(B, T_i, O_i)` in the shared layout `(B, T, M)`, `(B, T, O)`."""
        slot = self._slots[i]
        b, t_i, _ = inputs.shape
        o_i = targets.shape[2]
        cols = np.asarray(slot.columns) + int(self.fixation)
        x = jnp.zeros((b, self.length, self.n_inputs), jnp.float32)
        x = x.at[:, :t_i, cols].set(jnp.asarray(inputs, jnp.float32))
        x = x.at[:, :t_i, self.rule_channel(i)].set(1.0)
        if self.fixation:
            quiet = jnp.cumsum(jnp.any(jnp.asarray(targets) != 0, axis=2), axis=1) == 0  # before the response
            x = x.at[:, :t_i, 0].set(quiet.astype(jnp.float32))
        y = jnp.zeros((b, self.length, self.n_outputs), jnp.float32).at[:, :t_i, :o_i].set(targets)
        m = jnp.zeros((b, self.length, self.n_outputs), jnp.float32).at[:, :t_i, :o_i].set(mask)
        return x, y, m

    def _component_batch(self, i: int, key: jax.Array, batch_size: int) -> Trials:
        """`batch_size` trials of component `i` from `key`: its `sample`, or rows of its bank (NeuroGym)."""
        task = self._slots[i].task
        if isinstance(task, NeurogymTask):
            with jax.ensure_compile_time_eval():  # made on the host, once, even while tracing
                bank = _bank(task, self.bank_seed + i, self.bank_size)
            rows = jax.random.randint(key, (batch_size,), 0, self.bank_size)
            return tuple(jnp.asarray(a)[rows] for a in bank)  # type: ignore[return-value]
        return task.sample(key, batch_size)

    def component_keys(self, key: jax.Array) -> jax.Array:
        """`(n,)`: the key from which each component samples its batch in `sample(key, B)`."""
        return jax.random.split(key, len(self.tasks) + 1)[1:]

    def sample_with_tasks(self, key: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """`sample` and each trial's component: `(inputs, targets, mask, task_index (B,) int32)`."""
        batch_size = check_int("batch_size", batch_size, 1)
        check_key(key)
        return _sample(self, key, batch_size)

    def sample(self, key: jax.Array, batch_size: int) -> Trials:
        """A batch of trials `(inputs (B, T, M), targets (B, T, O), mask (B, T, O))`, float32, each of a component
        drawn from the mixture (see the module docstring); pure in `key`, jit-able."""
        return self.sample_with_tasks(key, batch_size)[:3]

    def test_set(self) -> Trials:
        """Every component's test set in turn, in the shared layout (`test_task_index` says whose)."""
        inputs, targets, mask, _ = _test_set(self)
        return jnp.asarray(inputs), jnp.asarray(targets), jnp.asarray(mask)

    def test_task_index(self) -> np.ndarray:
        """`(B,)` int: the component of each test trial."""
        return _test_set(self)[3].copy()

    # ------------------------------------------------------------------------------------------ scores

    def _index_of(self, targets, mask) -> np.ndarray | None:
        """The components of trials that are the test set's, else None."""
        _, t, m, index = _test_set(self)
        targets, mask = np.asarray(targets), np.asarray(mask)
        if targets.shape == t.shape and np.array_equal(targets, t) and np.array_equal(mask, m):
            return index
        return None

    def score_tasks(self, outputs, targets, mask, task_index) -> dict[str, np.ndarray]:
        """The scores (see the class docstring) of trials whose components are `task_index (B,)`: component `i`'s
        own `score` on its trials, un-padded (`outputs[:, sel, :T_i, :O_i]`, ...). A component without trials
        scores NaN (and is not solved)."""
        outputs = np.asarray(outputs)
        targets, mask, index = np.asarray(targets), np.asarray(mask), np.asarray(task_index)
        if index.shape != targets.shape[:1]:
            raise ValueError(f"`task_index` must have shape {targets.shape[:1]} (one per trial), got {index.shape}.")
        k = outputs.shape[0]
        out: dict[str, np.ndarray] = {}
        solved = np.zeros(k)
        for i, slot in enumerate(self._slots):
            sel = index == i
            if not sel.any():
                out[f"{slot.label}/metric"] = np.full(k, np.nan)
                continue
            _, o_i, t_i = slot.sizes
            scores = slot.task.score(outputs[:, sel, :t_i, :o_i], targets[sel, :t_i, :o_i], mask[sel, :t_i, :o_i])
            out.update({f"{slot.label}/{key}": np.asarray(v) for key, v in scores.items()})
            solved += slot.task.passes(scores["metric"])
        metric = solved / len(self.tasks)
        out.update({"metric": metric, "tasks_solved": metric, "success": metric >= 1.0})
        out["mse"] = masked_mse_np(outputs, targets, mask)
        return out

    def score(self, outputs, targets, mask) -> dict[str, np.ndarray]:
        """`score_tasks` on the test set (`outputs (K, B, T, O)` of `test_set()`'s inputs). Other trials do not say
        their components: score them with `score_tasks` (`sample_with_tasks` gives the components)."""
        index = self._index_of(targets, mask)
        if index is None:
            raise ValueError(
                "the multitask scores its own test set; for other trials call "
                "`score_tasks(outputs, targets, mask, task_index)` (`sample_with_tasks` gives `task_index`)."
            )
        return self.score_tasks(outputs, targets, mask, index)

    def success_threshold(self) -> float:
        """1: every component solved."""
        return 1.0

    def trial_groups(self, targets, mask) -> tuple[np.ndarray, tuple[str, ...]]:
        """The test trials by component (other trials: one group)."""
        index = self._index_of(targets, mask)
        if index is None:
            return super().trial_groups(targets, mask)
        return index.astype(int), self.labels

    # ------------------------------------------------------------------------------------------ other hooks

    def fixed_point_inputs(self) -> np.ndarray:
        """Each component's `fixed_point_inputs()` in the shared layout with its rule on (and the fixation cue on:
        the fixation and delay epochs), in turn."""
        rows = []
        for i, slot in enumerate(self._slots):
            p = np.asarray(slot.task.fixed_point_inputs(), np.float32)
            x = np.zeros((p.shape[0], self.n_inputs), np.float32)
            x[:, np.asarray(slot.columns) + int(self.fixation)] = p
            x[:, self.rule_channel(i)] = 1.0
            if self.fixation:
                x[:, 0] = 1.0
            rows.append(x)
        return np.concatenate(rows)

    def relevant_inputs(self) -> np.ndarray | None:
        """The components' relevant channels in the shared layout, row for row of `fixed_point_inputs`; None unless
        every component names them."""
        rows = []
        for slot in self._slots:
            r = slot.task.relevant_inputs()
            if r is None:
                return None
            rows.append(np.asarray(slot.columns)[np.asarray(r, int)] + int(self.fixation))
        return np.concatenate(rows)

    def hold_steps(self) -> int:
        """The longest of the components' holds."""
        return max(int(s.task.hold_steps()) for s in self._slots)

    def readout_tolerance(self) -> float:
        """The strictest of the components' tolerances."""
        return min(float(s.task.readout_tolerance()) for s in self._slots)

    def train_defaults(self) -> dict[str, Any]:
        """The `TrainConfig` overrides every component agrees on (the decision and memory tasks: lr 3e-3)."""
        per_task = [s.task.train_defaults() for s in self._slots]
        return {k: v for k, v in per_task[0].items() if all(k in d and d[k] == v for d in per_task[1:])}

    def to_dict(self) -> dict[str, Any]:
        """JSON: each component as `{"task": registry name or import string, "options": its to_dict(), "label",
        "channels"}`, and the other fields."""
        return {
            "tasks": [
                {"task": task_spec(s.task), "options": s.task.to_dict(), "label": s.label, "channels": list(s.columns)}
                for s in self._slots
            ],
            "weights": None if self.weights is None else list(self.weights),
            "fixation": self.fixation,
            "bank_size": self.bank_size,
            "bank_seed": self.bank_seed,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MultitaskConfig":
        """Inverse of `to_dict`; unknown keys raise `ValueError`."""
        if isinstance(d, dict) and isinstance(d.get("tasks"), list):
            slots = []
            for i, s in enumerate(d["tasks"]):
                if not isinstance(s, dict) or sorted(s) != ["channels", "label", "options", "task"]:
                    raise ValueError(
                        f"`tasks[{i}]` must be a dict with keys task, options, label, channels; got {s!r}."
                    )
                task = task_from_dict(s["task"], s["options"])
                slots.append(TaskSlot(task, label=s["label"], channels=tuple(s["channels"])))
            d = {**d, "tasks": tuple(slots)}
            if isinstance(d.get("weights"), list):
                d["weights"] = tuple(d["weights"])
        return config_from_dict(cls, d)
