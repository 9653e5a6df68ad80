"""The ensemble trainer: a pure training step (`make_train_step`), vmapped over members, and the host
loop around it (`EnsembleTrainer`), which scans the step over compiled chunks of steps.

Per step and member: forward by `lax.scan`, MSE loss, BPTT by `jax.grad`, then one `optax.chain`
update (`optimizer`): per-member global-norm clip, Adam, and the learning rate with inverse-time decay
`lr_t = lr / (1 + decay·t)` (Keras' `decay`) as a schedule of the member's update count. The
per-member learning rate and clip norm are traced arguments (the `(K,)` `Hyper` arrays), so changing
them never recompiles. A member whose loss or gradient is not finite is frozen: its parameters and
optimizer state stop changing and the others run on unaffected (members never interact: every
reduction is inside the vmapped member step).

Between chunks, on the device (no host round trip inside a step), the trainer can

- **train to criterion** (`TrainConfig.stop_mse`): evaluate every member on a fixed held-out set (the
  task's `validation_set()`, for the flip-flop the 8-state test's mirror image with other timings; else
  `stop_trials` trials drawn once from `seed`, never trained on), record the step at which each first
  meets `MSE < stop_mse · (1 − stop_margin)` (`TrainState.criterion_step`; `TrainConfig.criterion`), hold
  it there (its weights stay those that met the criterion: no drift back above it), and stop when every
  member has met it. The margin trains each member past the success threshold rather than to its edge
  (`DEFAULT_STOP_MARGIN`, the command line's default for a task that trains to criterion);
- **restart dead starts** (`TrainConfig.restart_after`): a member whose mean training loss over the
  chunk that takes it past `restart_after` steps since its start (at least two chunks) is still at
  least `restart_ratio` times its mean loss over its first chunk (it has not left the initial
  plateau), and that has not met the criterion, is re-initialized from a fresh key derived from its
  member index and restart count (`restart_key`), with a fresh optimizer state (so its learning-rate
  schedule starts again), at most `max_restarts` times (a program of its own, run when the chunk reports
  a dead start). `TrainState.restarts` and `start_step` record it;
- **stop computing the members that are done** (`TrainConfig.compact`): once the members still training
  fit in half the member slots per device, the chunks run on them alone (the done ones are held anyway).
"""

import contextlib
import dataclasses
import numbers
import operator
from collections.abc import Callable
from typing import TypeAlias

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from .._checks import check_int, check_seed
from ..models._base import AbstractRNN
from ..models._model import CTRNN
from ..models._scan import check_backprop, check_precision
from ..tasks._flipflop import FlipFlopConfig
from ..tasks._task import check_task, masked_mse
from ._constraints import Constraints, apply_constraints
from ._distributed import is_distributed, is_main_process, to_host
from ._ensemble import (
    EnsembleConfig,
    cell_class,
    ensemble_constraints,
    ensemble_size,
    fresh_members,
    make_ensemble,
    per_member,
)
from ._progress import NoProgress, TqdmProgress
from ._sharding import member_mesh, shard_members

# The `TrainConfig` fields that take one value per member (the `Hyper` arrays of the compiled step).
PER_MEMBER = ("learning_rate", "clip_norm", "noise_std", "weight_l1", "weight_l2")


# The largest `TrainConfig.unroll`: XLA compiles the unrolled loop body this many times over (the compile time
# grows with it; `--unroll 1000000000` compiled for ever), and beyond a few steps unrolling gains no speed.
MAX_UNROLL = 128


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train (frozen, JSON-serialisable).

    **Fields:**

    - `steps`: total number of training steps (>= 0).
    - `batch_size`: trials per step and member (>= 1).
    - `learning_rate`: Adam learning rate (>= 0; 0 holds a member at its initial weights), a number or
      one per member.
    - `lr_decay`: inverse-time decay `lr_t = lr / (1 + lr_decay·t)` (Keras 2 `decay`; 0 = constant).
    - `clip_norm`: per-member gradient global-norm clip: a number, one per member, or None for no clipping.
    - `noise_std`: std of the recurrent noise added to `h` at each step (>= 0), a number or one per member.
    - `shared_batch`: all members see the same batch (True) or each its own (False).
    - `dataset_size`: None draws fresh trials every step; an integer trains on a fixed data set of
      that many series, shuffled every epoch (the paper used 30050).
    - `steps_per_call`: training steps per compiled call (progress and checkpoints happen between calls).
    - `train_bias`: train the recurrent bias `b` (False keeps it at 0, as Keras' paper set-up; for
      gated cells their biases `b` and `b_n`).
    - `unroll`: `lax.scan` unroll of the time loop, in [1, 128] (`MAX_UNROLL`: the compile time grows with
      it, and beyond a few steps it gains no speed).
    - `backprop`: gradient through the time loop: `"custom"` (hand-written VJP storing only the
      states: least memory, the fastest measured), `"checkpoint"` or `"autodiff"` (see `ctrnn_jax.models._scan`).
    - `precision`: matmul precision, `"default"` (TF32 on NVIDIA GPUs, float32 on CPUs) or
      `"highest"` (full float32 on every device).
    - `rate_l2`: weight of the L2 penalty on firing rates, `rate_l2 · mean(h²)` (0 = none).
    - `weight_l1`: weight of the L1 penalty `Σ_W mean(|W|)` over the trained weight matrices (`W_rec`,
      `W_in`, `W_out`; every trained matrix of a gated cell; never a bias), >= 0, a number or one per member.
    - `weight_l2`: weight of the L2 penalty `Σ_W mean(W²)` over the same matrices (a loss term, as the
      L2 penalty of Maheswaranathan et al. 2019; its gradient is `2·weight_l2·W / W.size`), >= 0, a
      number or one per member.
    - `fixed`: names of weight groups kept at their initial values (e.g. `("W_rec", "W_in", "b")`
      trains only the readout, the reservoir-computing case); bit-for-bit unchanged by training.
    - `adam_b1`: Adam's beta1 (Keras default).
    - `adam_b2`: Adam's beta2 (Keras default).
    - `adam_eps`: Adam's epsilon (Keras default).
    - `seed`: seeds the members' initialization, the data and the noise.
    - `stop_mse`: train to criterion: a member whose MSE on a fixed held-out set is below this
      (checked on the device after every compiled chunk) stops training, its weights those that met
      it, and the run stops once every member has; None trains all `steps`. With `stop_margin` the
      criterion is `stop_mse · (1 − stop_margin)` (`criterion`).
    - `stop_margin`: the margin below `stop_mse` a member must reach, a fraction in [0, 1): `0.25` with
      `stop_mse = 0.02` trains each member to held-out MSE < 0.015, a quarter below the success threshold
      (0: to the threshold's edge, the meaning of every config written before the margin).
    - `stop_trials`: trials in the held-out set of the criterion (>= 1), drawn once from `seed` apart
      from the training trials, for a task without a `validation_set` (the flip-flop has one).
    - `restart_after`: restart dead starts: steps after a member's start at which it is checked (>= 1;
      at least 2 · `steps_per_call`, a chunk after its first); None never restarts.
    - `restart_ratio`: a member is a dead start when its mean loss over the chunk that takes it past
      `restart_after` is at least this fraction of its mean loss over its first chunk, in (0, inf).
    - `max_restarts`: restarts per member at most (>= 0).
    - `compact`: stop computing the members that are done (met the criterion, or frozen): once the
      members still training fit in half the member slots per device, the chunks are compiled for them
      alone (padded with done members to the same devices), and so on. Like another device layout, this
      changes the rounding of the members still training (in the last digit, amplified by training:
      compare runs only with the same setting); a run is as deterministic either way, and resumes
      exactly. The losses of done members are NaN either way. Never in a distributed run.

    With a user's optimizer (`EnsembleTrainer(..., optimizer=...)`) the optimizer fields have no effect
    and are refused at values other than their defaults (`OPTIMIZER_FIELDS`): `lr_decay`, `adam_b1`,
    `adam_b2`, `adam_eps`, and, for one `optax.GradientTransformation` for all members, also
    `learning_rate` and `clip_norm` (a per-member factory receives those two in its `Hyper`).
    """

    steps: int = 8000
    batch_size: int = 32
    learning_rate: float | tuple[float, ...] = 1e-2
    lr_decay: float = 1e-3
    clip_norm: float | tuple[float, ...] | None = 1.0
    noise_std: float | tuple[float, ...] = 0.0
    shared_batch: bool = False
    dataset_size: int | None = None
    steps_per_call: int = 100
    train_bias: bool = True
    unroll: int = 1
    backprop: str = "custom"
    precision: str = "default"
    rate_l2: float = 0.0
    weight_l1: float | tuple[float, ...] = 0.0
    weight_l2: float | tuple[float, ...] = 0.0
    fixed: tuple[str, ...] = ()
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    adam_eps: float = 1e-7
    seed: int = 0
    stop_mse: float | None = None
    stop_margin: float = 0.0
    stop_trials: int = 256
    restart_after: int | None = None
    restart_ratio: float = 0.8
    max_restarts: int = 3
    compact: bool = True

    def __post_init__(self):
        check_int("steps", self.steps, 0)
        check_int("batch_size", self.batch_size, 1)
        check_int("steps_per_call", self.steps_per_call, 1)
        check_int("unroll", self.unroll, 1, MAX_UNROLL)
        check_seed("seed", self.seed)
        check_int("stop_trials", self.stop_trials, 1)
        check_int("max_restarts", self.max_restarts, 0)
        if self.stop_mse is not None and (
            isinstance(self.stop_mse, bool)
            or not isinstance(self.stop_mse, numbers.Real)
            or not 0 < self.stop_mse < np.inf
        ):
            raise ValueError(f"`stop_mse` must be a number in (0, inf) or None, got {self.stop_mse!r}.")
        if (
            isinstance(self.stop_margin, bool)
            or not isinstance(self.stop_margin, numbers.Real)
            or not 0 <= self.stop_margin < 1
        ):
            raise ValueError(f"`stop_margin` must be a number in [0, 1), got {self.stop_margin!r}.")
        if self.restart_after is not None:
            check_int("restart_after", self.restart_after, 1)
        if (
            isinstance(self.restart_ratio, bool)
            or not isinstance(self.restart_ratio, numbers.Real)
            or not 0 < self.restart_ratio < np.inf
        ):
            raise ValueError(f"`restart_ratio` must be a number in (0, inf), got {self.restart_ratio!r}.")
        check_backprop(self.backprop)
        check_precision(self.precision)
        if self.dataset_size is not None:
            check_int("dataset_size", self.dataset_size, self.batch_size)
        for name in PER_MEMBER:
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
            value = getattr(self, name)
            if not (name == "clip_norm" and value is None):  # the range here; the length against K in `hyper`
                per_member(
                    name, value, len(value) if isinstance(value, tuple) else 1, low=0.0, low_open=name == "clip_norm"
                )
        for name in ("shared_batch", "train_bias", "compact"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"`{name}` must be True or False, got {getattr(self, name)!r}.")
        if isinstance(self.fixed, (list, str)):
            object.__setattr__(self, "fixed", tuple([self.fixed] if isinstance(self.fixed, str) else self.fixed))
        if not isinstance(self.fixed, tuple) or not all(isinstance(n, str) for n in self.fixed):
            raise TypeError(f"`fixed` must be a tuple of weight names, got {self.fixed!r}.")
        for name, low, high in (
            ("lr_decay", 0.0, np.inf),
            ("adam_b1", 0.0, 1.0),
            ("adam_b2", 0.0, 1.0),
            ("adam_eps", 0.0, np.inf),
            ("rate_l2", 0.0, np.inf),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value < high:
                raise ValueError(f"`{name}` must be a number in [{low}, {high}), got {value!r}.")

    @property
    def criterion(self) -> float | None:
        """The held-out MSE a member must get below, `stop_mse · (1 − stop_margin)`, or None (no criterion)."""
        return None if self.stop_mse is None else float(self.stop_mse) * (1.0 - float(self.stop_margin))

    def hyper(self, n_members: int) -> "Hyper":
        """The per-member hyper-parameters as `(K,)` arrays (validated)."""
        lr = per_member("learning_rate", self.learning_rate, n_members, low=0.0, low_open=False)
        clip = (
            np.full(n_members, np.inf)
            if self.clip_norm is None
            else per_member("clip_norm", self.clip_norm, n_members, low=0.0)
        )

        def f32(a):
            return jnp.asarray(a, dtype=jnp.float32)

        zero_ok = {
            name: f32(per_member(name, getattr(self, name), n_members, low=0.0, low_open=False))
            for name in ("noise_std", "weight_l1", "weight_l2")
        }
        return Hyper(learning_rate=f32(lr), clip_norm=f32(clip), **zero_ok)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        if "fixed" in d:
            d["fixed"] = tuple(d["fixed"])
        return cls(**d)


# The command line's margin below the success threshold for a task that trains to criterion (the flip-flop:
# held-out MSE < 0.02 · (1 − 0.25) = 0.015), chosen from benchmarks/margin_sweep.py (benchmarks/RESULTS.md, #31).
DEFAULT_STOP_MARGIN = 0.25


class Hyper(eqx.Module):
    """Per-member hyper-parameters, each `(K,)`; arguments of the compiled step (no recompiles).
    Whether the recurrent noise and each weight penalty are in the step at all is decided once (any
    member's value > 0), so a run where all are 0 compiles the step without them.

    A per-member optimizer factory (`EnsembleTrainer(..., optimizer=factory)`) is called with one
    member's `Hyper`: every field then a traced scalar `()` float32 (`clip_norm` inf where
    `TrainConfig.clip_norm` is None).

    **Fields:** `learning_rate`, `clip_norm`, `noise_std`, `weight_l1`, `weight_l2` (see `TrainConfig`).
    """

    learning_rate: jax.Array
    clip_norm: jax.Array
    noise_std: jax.Array
    weight_l1: jax.Array
    weight_l2: jax.Array


class TrainState(eqx.Module):
    """Everything that changes during training (what a checkpoint holds).

    - `model`: the stacked ensemble, arrays `(K, ...)`.
    - `opt_state`: the `optimizer` chain's state `(clip, Adam, schedule)`, stacked over members.
    - `step`: number of steps taken (scalar int32).
    - `frozen`: `(K,)` bool, members stopped after a non-finite loss or gradient.
    - `frozen_step`: `(K,)` int32, the step at which each member froze (-1 if not).
    - `member_id`: `(K,)` int32, which member of the original ensemble each row is (keys derive from it).
    - `key_data`: raw data of the training key (data and noise keys are folded from it by step).
    - `restarts`: `(K,)` int32, how often each member was restarted as a dead start.
    - `start_step`: `(K,)` int32, the step at which each member's current start began (0 if never restarted).
    - `start_loss`: `(K,)` float32, mean loss over the first chunk after that start (inf until known).
    - `criterion_step`: `(K,)` int32, the step at which each member first met `stop_mse` (-1 if not, or
      no criterion).
    """

    model: CTRNN
    opt_state: optax.OptState
    step: jax.Array
    frozen: jax.Array
    frozen_step: jax.Array
    member_id: jax.Array
    key_data: jax.Array
    restarts: jax.Array
    start_step: jax.Array
    start_loss: jax.Array
    criterion_step: jax.Array


# The per-member fields of `TrainState` besides the model and optimizer state.
MEMBER_FIELDS = ("frozen", "frozen_step", "member_id", "restarts", "start_step", "start_loss", "criterion_step")


def _member_parts(state: TrainState) -> tuple:
    """The parts of a state with a member axis: the model, the optimizer state and `MEMBER_FIELDS`."""
    return (state.model, state.opt_state, *(getattr(state, n) for n in MEMBER_FIELDS))


def select_members(state: TrainState, index) -> TrainState:
    """A state holding only the members at `index` (an int array or slice along the member axis)."""
    return eqx.tree_at(_member_parts, state, jax.tree_util.tree_map(lambda x: x[index], _member_parts(state)))


def state_record(state: TrainState) -> dict:
    """The per-member record of a training state as JSON-able lists (for `eval.json`): `frozen`,
    `frozen_step`, `restarts`, `start_step`, `criterion_step` (gathered in a distributed run)."""
    names = ("frozen", "frozen_step", "restarts", "start_step", "criterion_step")
    return {n: v.tolist() for n, v in zip(names, to_host(tuple(getattr(state, n) for n in names)))}


def optimizer(config: "TrainConfig", learning_rate=1.0, clip_norm=np.inf) -> optax.GradientTransformation:
    """One member's update: `optax.chain` of the global-norm clip at `clip_norm`, Adam (`adam_b1`,
    `adam_b2`, `adam_eps`) and the learning rate `learning_rate / (1 + lr_decay · t)`, `t` the member's
    update count (the schedule's state). `learning_rate` and `clip_norm` may be traced scalars (the
    trainer vmaps this over members with their `Hyper` values); the state does not depend on them."""
    decay = config.lr_decay
    return optax.chain(
        optax.clip_by_global_norm(clip_norm),
        optax.scale_by_adam(b1=config.adam_b1, b2=config.adam_b2, eps=config.adam_eps),
        optax.scale_by_learning_rate(lambda t: learning_rate / (1.0 + decay * t.astype(jnp.float32))),
    )


# What `optimizer=` takes: None (the built-in chain), one transformation for every member, or a factory
# called per member with its `Hyper`.
Optimizer: TypeAlias = optax.GradientTransformation | Callable[[Hyper], optax.GradientTransformation] | None
# The `TrainConfig` fields of the built-in optimizer: no effect with a user's one (refused at other values
# than their defaults); a per-member factory still receives `learning_rate` and `clip_norm` in its `Hyper`.
OPTIMIZER_FIELDS = ("learning_rate", "clip_norm", "lr_decay", "adam_b1", "adam_b2", "adam_eps")
FACTORY_FIELDS = ("learning_rate", "clip_norm")


def check_optimizer(opt: Optimizer, config: "TrainConfig") -> Optimizer:
    """`opt` if it is None, an `optax.GradientTransformation` or a callable (a per-member factory);
    raises `ValueError` naming the fields of `config` set to other values than their defaults that
    would have no effect with it (`OPTIMIZER_FIELDS`)."""
    if opt is None:
        return None
    if not isinstance(opt, optax.GradientTransformation) and not callable(opt):
        raise TypeError(
            "`optimizer` must be None (clip, Adam and decay from the TrainConfig), an "
            "optax.GradientTransformation, or a callable `hyper -> optax.GradientTransformation` "
            f"(per member), got {type(opt).__name__}."
        )
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    passed = FACTORY_FIELDS if not isinstance(opt, optax.GradientTransformation) else ()
    unused = [
        f"`{n}`={getattr(config, n)!r}"
        for n in OPTIMIZER_FIELDS
        if n not in passed and getattr(config, n) != defaults[n]
    ]
    if unused:
        kind = "a per-member optimizer factory" if passed else "an optax.GradientTransformation"
        raise ValueError(
            f"with {kind} as `optimizer`, the TrainConfig's {', '.join(unused)} would have no "
            "effect (the optimizer is the whole update): leave "
            f"{'them' if len(unused) > 1 else 'it'} at the default, or build "
            f"{'them' if len(unused) > 1 else 'it'} into the optimizer."
        )
    return opt


def _origin(obj) -> str:
    """`module.qualname` of a function (up to its `<locals>`), else its repr (a functools.partial, ...)."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return repr(obj)
    return f"{module.split('._')[0]}.{qualname.split('.<locals>')[0]}"


def describe_optimizer(opt: Optimizer, config: "TrainConfig") -> str:
    """One line saying what the update is (for the reprs of `TrainStep` and `EnsembleTrainer`)."""
    if opt is None:
        clip = "" if config.clip_norm is None else f"clip(‖g‖ ≤ {_values(config.clip_norm)}) → "
        return (
            f"{clip}Adam(b1={config.adam_b1}, b2={config.adam_b2}, eps={config.adam_eps}) → "
            f"lr/(1 + {config.lr_decay}·t), lr = {_values(config.learning_rate)}"
        )
    if isinstance(opt, optax.GradientTransformation):
        return f"user: {type(opt).__name__} from {_origin(opt.init)} (the same for every member)"
    return f"user: per-member factory {_origin(opt)}"


def _values(value) -> str:
    """A number, or a per-member tuple, short."""
    if isinstance(value, tuple):
        return "(" + ", ".join(f"{v:g}" for v in value) + ")"
    return f"{value:g}"


def step_key(state: TrainState) -> jax.Array:
    """The key of the step `state.step` of a run: its training key folded with the step (what
    `EnsembleTrainer` passes to the step)."""
    return jax.random.fold_in(jax.random.wrap_key_data(state.key_data), state.step)


class TrainStep:
    """The pure training step `step(state, key) -> (state, metrics)` (made by `make_train_step`).

    One step of every member: a batch per member (or one shared) from `key` (in data-set mode the
    epoch's shuffle comes from the state's key and the batch from `state.step`), the loss, its gradient
    and the optimizer's update (`optimizer`, see `make_train_step`); non-finite members freeze, and members
    that met the criterion (`state.criterion_step >= 0`) are held at the weights that met it. `metrics` holds
    `loss` and `grad_norm`, `(K,)`.
    Jit it, vmap it or call it from a loop; `EnsembleTrainer` scans it over chunks of steps with
    `key = step_key(state)`. The per-member hyper-parameters, the fixed data set and the constraints
    are attributes (`hyper`, `data`, `constraints`); `apply(state, key, hyper, data, constraints)` takes
    them as arguments instead (no constants in a compiled program; what the trainer does).
    `optimizer` is what `make_train_step` was given (None: the built-in chain); `opt_init(params, hyper)`
    makes the stacked optimizer states.
    """

    def __init__(self, config: "TrainConfig", task, hyper: Hyper, data, constraints, optimizer: Optimizer = None):
        self.config, self.task = config, task
        self.hyper, self.data, self.constraints = hyper, data, constraints
        self.optimizer = check_optimizer(optimizer, config)
        self.use_noise = bool(np.any(to_host(hyper.noise_std) > 0))
        self.use_l1 = bool(np.any(to_host(hyper.weight_l1) > 0))
        self.use_l2 = bool(np.any(to_host(hyper.weight_l2) > 0))

    def __call__(self, state: TrainState, key: jax.Array) -> tuple[TrainState, dict]:
        return self.apply(state, key, self.hyper, self.data, self.constraints)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"TrainStep({self.hyper.learning_rate.shape[0]} members, task {self.task.name}, batch {c.batch_size}"
            f"{' shared' if c.shared_batch else ''}, backprop {c.backprop!r}; "
            f"optimizer: {describe_optimizer(self.optimizer, c)})"
        )

    def member_optimizer(self, hyper: Hyper) -> optax.GradientTransformation:
        """One member's update, given its `Hyper` (traced scalars): the built-in chain (`optimizer`), the
        user's transformation, or the user's factory called with `hyper`."""
        if self.optimizer is None:
            return optimizer(self.config, hyper.learning_rate, hyper.clip_norm)
        if isinstance(self.optimizer, optax.GradientTransformation):
            return self.optimizer
        return self.optimizer(hyper)

    def opt_init(self, params, hyper: Hyper | None = None):
        """The stacked optimizer states of stacked `params` (the trained arrays of a model, `(K, ...)`), with
        the members' `hyper` (`(K,)`; default the `TrainConfig`'s; used by a per-member factory only)."""
        if self.optimizer is None:  # the state does not depend on the learning rate and clip
            return eqx.filter_vmap(optimizer(self.config).init)(params)
        if isinstance(self.optimizer, optax.GradientTransformation):
            return eqx.filter_vmap(self.optimizer.init)(params)
        if hyper is None:  # made here, uncommitted (e.g. on a host's CPU in a distributed run's `init`)
            hyper = self.config.hyper(jax.tree_util.tree_leaves(params)[0].shape[0])
        make = self.optimizer  # a function of the hyper-parameters here
        return eqx.filter_vmap(lambda p, h: make(h).init(p))(params, hyper)

    def spec(self, model):
        return trainable_filter(model, self.config.train_bias, self.config.fixed)

    def batch(self, key, step, member_id, data):
        """One batch `(B, T, M)`, `(B, T, O)`, mask `(B, T, O)` for a member (or for all, if
        `member_id` is None): fresh trials from `key`, or in data-set mode (`key` then the run's key)
        slice `step % per_epoch` of a permutation drawn once per epoch."""
        b = self.config.batch_size
        if data is None:
            k = key if member_id is None else jax.random.fold_in(key, member_id)
            return self.task.sample(k, b)
        n = data[0].shape[0]
        per_epoch = n // b
        k = jax.random.fold_in(key, step // per_epoch)
        if member_id is not None:
            k = jax.random.fold_in(k, member_id)
        perm = jax.random.permutation(k, n)
        idx = lax.dynamic_slice(perm, ((step % per_epoch) * b,), (b,))
        return tuple(a[idx] for a in data)

    def run_options(self) -> dict:
        c = self.config
        return dict(unroll=c.unroll, backprop=c.backprop, precision=c.precision)

    def member_update(self, model, opt_state, frozen, frozen_step, held, hyper, batch, noise_key, step, cons):
        spec = self.spec(model)
        params, static = eqx.partition(model, spec)
        c = self.config
        run = self.run_options()
        if self.use_noise:
            run.update(key=noise_key, noise_std=hyper.noise_std)
        inputs, targets, mask = batch

        def loss_fn(p):
            m = eqx.combine(p, static)
            if c.rate_l2:  # the states are needed: states, then the readout
                hs = m.states(inputs, **run)
                loss = masked_mse(m.readout(hs), targets, mask) + c.rate_l2 * jnp.mean(hs**2)
            else:
                loss = masked_mse(m(inputs, **run), targets, mask)  # the whole batch at once
            if self.use_l1 or self.use_l2:
                loss = loss + weight_penalty(
                    p, hyper.weight_l1 if self.use_l1 else None, hyper.weight_l2 if self.use_l2 else None
                )
            return loss

        loss, grads = jax.value_and_grad(loss_fn)(params)
        gnorm = optax.tree.norm(grads)
        updates, new_opt = self.member_optimizer(hyper).update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        if cons is not None:  # projected gradient descent onto the member's constraints
            new_params = eqx.filter(apply_constraints(eqx.combine(new_params, static), cons), spec)
        finite = jnp.isfinite(loss) & jnp.isfinite(gnorm)
        for p in jax.tree_util.tree_leaves(new_params):
            finite = finite & jnp.all(jnp.isfinite(p))
        ok = finite & ~frozen & ~held  # a member that met the criterion keeps the weights that met it

        def keep(new, old):
            return jnp.where(ok, new, old)

        new_params = jax.tree_util.tree_map(keep, new_params, params)
        new_opt = jax.tree_util.tree_map(keep, new_opt, opt_state)
        newly = ~frozen & ~finite
        frozen_step = jnp.where(newly, step, frozen_step)
        return eqx.combine(new_params, static), new_opt, frozen | ~finite, frozen_step, loss, gnorm

    def apply(self, state: TrainState, key: jax.Array, hyper: Hyper, data, constraints) -> tuple[TrainState, dict]:
        """The step with the hyper-parameters, data set and constraints as arguments."""
        batch_key = jax.random.wrap_key_data(state.key_data) if data is not None else key
        noise_base = jax.random.fold_in(key, 7)
        noise_keys = jax.vmap(lambda i: jax.random.fold_in(noise_base, i))(state.member_id)
        if self.config.shared_batch:
            batch = self.batch(batch_key, state.step, None, data)
        else:
            batch = jax.vmap(lambda i: self.batch(batch_key, state.step, i, data))(state.member_id)
        batch_axis = None if self.config.shared_batch else 0
        update = jax.vmap(self.member_update, in_axes=(0, 0, 0, 0, 0, 0, batch_axis, 0, None, 0))
        model, opt_state, frozen, frozen_step, loss, gnorm = update(
            state.model,
            state.opt_state,
            state.frozen,
            state.frozen_step,
            state.criterion_step >= 0,
            hyper,
            batch,
            noise_keys,
            state.step,
            constraints,
        )
        state = dataclasses.replace(
            state, model=model, opt_state=opt_state, step=state.step + 1, frozen=frozen, frozen_step=frozen_step
        )
        return state, {"loss": loss, "grad_norm": gnorm}


def make_train_step(
    ensemble_config: EnsembleConfig,
    train_config: "TrainConfig",
    task=None,
    *,
    constraints: Constraints | None = None,
    optimizer: Optimizer = None,
) -> TrainStep:
    """The pure training step of an ensemble: `step(state, key) -> (state, metrics)`.

    **Arguments:** the ensemble's `EnsembleConfig`, the `TrainConfig` and the task (default the
    flip-flop); `constraints` (stacked) replaces those the ensemble config draws from `seed`;
    `optimizer` is each member's update:

    - None (default): the built-in `optax.chain` of `optimizer(train_config, lr, clip)`: global-norm clip at
      the member's `clip_norm`, Adam (`adam_b1`, `adam_b2`, `adam_eps`), learning rate
      `learning_rate / (1 + lr_decay·t)`;
    - an `optax.GradientTransformation` (e.g. `optax.adamw(schedule)`): the same for every member, its
      state vmapped over them (`TrainState.opt_state`);
    - a callable `factory(hyper) -> optax.GradientTransformation`: called inside the vmapped update with one
      member's `Hyper` (traced scalars: `learning_rate`, `clip_norm`, ...) for per-member settings, e.g.
      `lambda h: optax.adamw(h.learning_rate)` or `optax.inject_hyperparams`. Its `init` is called with the
      same `Hyper`.

    A user's optimizer is the whole update: the `TrainConfig`'s `lr_decay` and `adam_*` (and, for one
    transformation, `learning_rate` and `clip_norm`) have no effect and are refused at other values than
    their defaults (`ValueError`).

    `state` is a `TrainState` (e.g. `EnsembleTrainer(...).init()`), `key` the step's key; `metrics` is
    `{"loss": (K,), "grad_norm": (K,)}`. A loop `state, m = jax.jit(step)(state, step_key(state))`
    takes exactly `EnsembleTrainer.train`'s steps (train-to-criterion and restarts, which act between
    compiled chunks, aside).
    """
    trainer = EnsembleTrainer(ensemble_config, train_config, task, constraints=constraints, optimizer=optimizer)
    trainer.data()  # in data-set mode, made once and held by the step
    return trainer.step


def weight_names(model) -> tuple[str, ...]:
    """The names of a model's array fields (what `TrainConfig.fixed` may name)."""
    return tuple(
        f.name for f in dataclasses.fields(model) if isinstance(getattr(model, f.name), (jax.Array, np.ndarray))
    )


def trainable_filter(model, train_bias: bool = True, fixed: tuple[str, ...] = ()):
    """A pytree of bools like `model`: True for trained arrays (never a CTRNN's `alpha`; its `b`
    only if `train_bias`; nothing named in `fixed`)."""
    names = weight_names(model)
    unknown = sorted(set(fixed) - set(names))
    if unknown:
        raise ValueError(f"`fixed` names unknown weights {unknown}; this model has {', '.join(names)}.")
    off = set(fixed) | set(model.untrained)
    if not train_bias:
        off.update({"b", "b_n"} & set(names))
    if not set(names) - off:
        raise ValueError(
            f"`fixed` ({', '.join(fixed)}) leaves no weight to train (this model has "
            f"{', '.join(names)}"
            f"{'; the biases are off with train_bias=False' if not train_bias else ''}); "
            "leave at least one out."
        )
    spec = jax.tree_util.tree_map(lambda _: True, model)
    for name in off:
        spec = eqx.tree_at(operator.attrgetter(name), spec, replace=False)
    return spec


def weight_penalty(params, l1=None, l2=None) -> jax.Array:
    """`l1 · Σ mean|W| + l2 · Σ mean(W²)` over the trained arrays with at least 2 dimensions (the weight
    matrices, never a bias). `l1`, `l2`: numbers or traced scalars; None (or a Python 0) leaves the term
    out of the computation."""
    mats = [w for w in jax.tree_util.tree_leaves(params) if w.ndim >= 2]
    total = jnp.zeros(())
    if l1 is not None and not (isinstance(l1, numbers.Real) and l1 == 0):
        total = total + l1 * sum(jnp.mean(jnp.abs(w)) for w in mats)
    if l2 is not None and not (isinstance(l2, numbers.Real) and l2 == 0):
        total = total + l2 * sum(jnp.mean(w**2) for w in mats)
    return total


def restart_key(seed: int, member_id, restarts) -> jax.Array:
    """The key a member `member_id` is drawn from at its `restarts`-th restart (>= 1): from the run's
    `seed`, apart from the keys of the initial ensemble, its constraints and the training."""
    base = jax.random.fold_in(jax.random.split(jax.random.key(seed))[0], 3)
    return jax.random.fold_in(jax.random.fold_in(base, member_id), restarts)


class _LegacyState(eqx.Module):
    """The `TrainState` layout of checkpoints written before `make_train_step` (Adam state alone, no
    restart or criterion fields); read and converted by `legacy_layouts`."""

    model: CTRNN
    opt_state: optax.ScaleByAdamState
    step: jax.Array
    frozen: jax.Array
    frozen_step: jax.Array
    member_id: jax.Array
    key_data: jax.Array


def _default_layout(opt_state) -> bool:
    """Whether an optimizer state has the built-in chain's layout: (clip's empty state, Adam's, the schedule's)."""
    return (
        isinstance(opt_state, tuple)
        and len(opt_state) == 3
        and isinstance(opt_state[0], optax.EmptyState)
        and isinstance(opt_state[1], optax.ScaleByAdamState)
        and isinstance(opt_state[2], optax.ScaleByScheduleState)
    )


def legacy_layouts(like: TrainState):
    """Older checkpoint layouts of a state like `like`: `[(old_like, convert)]`, `convert(old)` giving a
    `TrainState` (for `io.load_checkpoint`). The old Adam state becomes the chain's Adam state, the
    schedule's count Adam's count (the old decay counted steps), no restarts and no criterion yet.
    Only for the built-in optimizer (older versions had no other): `[]` for a state of a user's optimizer."""
    if not _default_layout(like.opt_state):
        return []
    clip, adam, sched = like.opt_state
    old_like = _LegacyState(like.model, adam, like.step, like.frozen, like.frozen_step, like.member_id, like.key_data)

    def convert(old: _LegacyState) -> TrainState:
        opt = (clip, old.opt_state, type(sched)(count=old.opt_state.count))
        return TrainState(
            model=old.model,
            opt_state=opt,
            step=old.step,
            frozen=old.frozen,
            frozen_step=old.frozen_step,
            member_id=old.member_id,
            key_data=old.key_data,
            restarts=jnp.zeros_like(like.restarts),
            start_step=jnp.zeros_like(like.start_step),
            start_loss=jnp.full_like(like.start_loss, jnp.inf),
            criterion_step=jnp.full_like(like.criterion_step, -1),
        )

    return [(old_like, convert)]


def check_model(config: EnsembleConfig, model) -> None:
    """Raises `ValueError` listing every way a stacked `model` contradicts `config`: its members (leading
    axis), units, inputs, outputs, cell (`config.cell`'s class, a built-in name or an import string, must be the
    model's class) and activation."""
    if not isinstance(model, AbstractRNN):
        raise TypeError(f"`model` must be a stacked ensemble of an AbstractRNN cell, got {type(model).__name__}.")
    k = ensemble_size(model)
    found = []
    for name, have, what in (
        ("members", k, f"{k} members (leading axis)"),
        ("units", model.n_units, f"N = {model.n_units} units"),
        ("inputs", model.n_inputs, f"M = {model.n_inputs} inputs"),
        ("outputs", model.n_outputs, f"O = {model.n_outputs} outputs"),
    ):
        if getattr(config, name) != have:
            found.append(f"`EnsembleConfig.{name}` = {getattr(config, name)} but the model has {what}")
    if cell_class(config.cell) is not type(model):  # exactly: restarts draw fresh members of that class
        cls = type(model)
        found.append(
            f"`EnsembleConfig.cell` = {config.cell!r} but the model is a {cls.__module__}.{cls.__qualname__} "
            f"(cell {getattr(cls, 'cell', None)!r})"
        )
    if model.activation != config.activation:
        found.append(f"`EnsembleConfig.activation` = {config.activation!r} but the model has {model.activation!r}")
    if found:
        raise ValueError(
            "the model contradicts the trainer's EnsembleConfig: "
            + "; ".join(found)
            + ". Give an EnsembleConfig that describes the model."
        )


class EnsembleTrainer:
    """Trains an ensemble of CTRNNs on a task: the host loop around the pure step (`self.step`, see
    `make_train_step`), scanned over compiled chunks of `steps_per_call` steps.

    **Arguments:**

    - `ensemble`: an `EnsembleConfig` (sizes, alpha, activation, initialization).
    - `train`: a `TrainConfig`.
    - `task`: any `AbstractTask` (default the flip-flop).
      Its trials are generated on the device inside the step; the loss is its masked MSE.
    - `devices`: devices to spread the members over (default: all local devices; members are split
      over the largest number of them that divides K). Results do not depend on it. In a distributed
      run (`init_distributed`) the default is every process's devices: each process then makes and
      trains only its own members, and the losses are gathered between compiled chunks.
    - `constraints`: stacked `Constraints` (arrays `(K, ...)`, e.g. user-supplied masks from
      `constraints_from_arrays`, stacked) to enforce instead of those the ensemble config draws from
      `seed`. Every member is projected onto its constraints at `init` and after every step.
    - `optimizer`: None (the built-in clip → Adam → decay of the `TrainConfig`), an
      `optax.GradientTransformation` for every member, or a per-member factory `hyper ->
      optax.GradientTransformation` (see `make_train_step`). Its state is `TrainState.opt_state`
      (checkpointed, restored by `load_checkpoint(path, like=trainer.init())`, re-initialized for a
      restarted member); train-to-criterion, restarts and compaction work with any.

    After every chunk, on the device: the criterion (`stop_mse`) and the dead-start check
    (`restart_after`), see the module's docstring; the host reads `criterion_step` and the dead starts
    with the losses, restarts those (a program of its own), and stops when every member has met the
    criterion.

    Usage: `state = trainer.init(); state, losses = trainer.train(state)`; `losses` is `(steps, K)`
    (fewer rows when the run stopped at the criterion).
    """

    def __init__(
        self,
        ensemble: EnsembleConfig,
        train: TrainConfig,
        task=None,
        *,
        devices=None,
        constraints: Constraints | None = None,
        optimizer: Optimizer = None,
    ):
        task = FlipFlopConfig() if task is None else task
        if not isinstance(ensemble, EnsembleConfig):
            raise TypeError(f"`ensemble` must be an EnsembleConfig, got {type(ensemble).__name__}.")
        if not isinstance(train, TrainConfig):
            raise TypeError(f"`train` must be a TrainConfig, got {type(train).__name__}.")
        check_optimizer(optimizer, train)
        check_task(task)
        if task.n_inputs != ensemble.inputs or task.n_outputs != ensemble.outputs:
            raise ValueError(
                f"the {task.name} task has {task.n_inputs} inputs and {task.n_outputs} outputs but the "
                f"ensemble has `inputs`={ensemble.inputs}, `outputs`={ensemble.outputs}."
            )
        self.ensemble_config = ensemble
        self.config = train
        self.task = task
        self.mesh = member_mesh(ensemble.members, devices)
        self.hyper = self.place(train.hyper(ensemble.members))
        self._model_key, self._train_key = jax.random.split(jax.random.key(train.seed))
        if constraints is None:
            with self._host():
                constraints = ensemble_constraints(ensemble, key=self._model_key)
        elif not isinstance(constraints, Constraints):
            raise TypeError(
                f"`constraints` must be a Constraints (stacked over members), got {type(constraints).__name__}."
            )
        self._host_constraints = constraints if is_distributed() else None  # whole, for `init` in a distributed run
        self.constraints = None if constraints is None else self.place(constraints)
        self._data = None
        self._held_out = None
        self.step = TrainStep(train, task, self.hyper, None, self.constraints, optimizer)
        self._chunks: dict[int, Callable] = {}
        self._restarts: Callable | None = None  # the restarts' program, made at the first dead start
        self.trace_count = 0  # how many times a chunk function was traced (compiles)

    def __repr__(self) -> str:
        e, c = self.ensemble_config, self.config
        criterion = (
            ""
            if c.stop_mse is None
            else f", to MSE < {c.criterion:g}"
            + (f" ({c.stop_mse:g} less a margin of {c.stop_margin:g})" if c.stop_margin else "")
        )
        restarts = "" if c.restart_after is None else f", dead starts restarted after {c.restart_after}"
        return (
            f"EnsembleTrainer: {e.members} members × {e.cell} ({e.units} units, {e.activation}) "
            f"on {self.task.name}, "
            f"{c.steps} steps of batch {c.batch_size} in chunks of {c.steps_per_call}{criterion}{restarts}\n"
            f"  optimizer: {describe_optimizer(self.step.optimizer, c)}"
        )

    # -- state --------------------------------------------------------------------------------
    def init(self) -> TrainState:
        """Fresh members (from `seed`) and optimizer states. In a distributed run every process makes
        them on its host's CPU, exactly as one process does, and puts only its own members on its devices."""
        if is_distributed():  # made on this host's CPU as in one process, then each process puts
            with self._host():  # only its own members on its devices
                state = self._initial_state(
                    make_ensemble(self.ensemble_config, key=self._model_key),
                    jax.random.key_data(self._train_key),
                    self._host_constraints,
                )
            return self.place(state)
        model = make_ensemble(self.ensemble_config, key=self._model_key)
        return self.init_from(model, key_data=jax.random.key_data(self._train_key))

    @staticmethod
    def _host():
        """In a distributed run, compute on this host's CPU (not on the devices, which hold only this
        process's members); otherwise nothing changes."""
        if not is_distributed():
            return contextlib.nullcontext()
        return jax.default_device(jax.local_devices(backend="cpu")[0])

    def init_from(self, model: AbstractRNN, *, key_data: jax.Array | None = None) -> TrainState:
        """A fresh training state for a given stacked ensemble (e.g. loaded from `ensemble.npz`, or of a
        cell of your own). Raises `ValueError` listing every way the model contradicts the trainer's
        `EnsembleConfig` (`members`, `units`, `inputs`, `outputs`, `cell`, `activation`): the config is
        what restarts draw fresh members from and what a run folder records."""
        check_model(self.ensemble_config, model)
        if key_data is None:
            key_data = jax.random.key_data(self._train_key)
        return self.place(self._initial_state(model, key_data, self.constraints))

    def _opt_init(self, model, hyper: Hyper | None = None):
        """The stacked optimizer states of `model` with the members' `hyper` (default the `TrainConfig`'s)."""
        params, _ = eqx.partition(model, self.step.spec(model))
        return self.step.opt_init(params, hyper)

    def _initial_state(self, model, key_data, constraints) -> TrainState:
        k = ensemble_size(model)
        if constraints is not None:  # a no-op on a model that satisfies them
            model = eqx.filter_vmap(apply_constraints)(model, constraints)
        return TrainState(
            model=model,
            opt_state=self._opt_init(model),
            step=jnp.asarray(0, jnp.int32),
            frozen=jnp.zeros(k, bool),
            frozen_step=jnp.full(k, -1, jnp.int32),
            member_id=jnp.arange(k, dtype=jnp.int32),
            key_data=key_data,
            restarts=jnp.zeros(k, jnp.int32),
            start_step=jnp.zeros(k, jnp.int32),
            start_loss=jnp.full(k, jnp.inf, jnp.float32),
            criterion_step=jnp.full(k, -1, jnp.int32),
        )

    def place(self, tree, n_members: int | None = None):
        """Put a state (or any pytree with a leading member axis of `n_members`, default `K`) on this
        trainer's devices. A state's `key_data` is the run's one key, replicated (its length, 2 for a
        threefry key, is not a member axis even when `K` is 2)."""
        placed = shard_members(tree, self.mesh, self.ensemble_config.members if n_members is None else n_members)
        if isinstance(tree, TrainState) and self.mesh is not None:
            placed = eqx.tree_at(lambda s: s.key_data, placed, shard_members(tree.key_data, self.mesh, -1))
        return placed

    def data(self) -> tuple[jax.Array, jax.Array, jax.Array] | None:
        """The fixed data set `(S, T, M)`, `(S, T, O)`, mask `(S, T, O)` in data-set mode (made once
        from `seed`), else None."""
        if self.config.dataset_size is not None and self._data is None:
            key = jax.random.fold_in(jax.random.key(self.config.seed), 1_000_003)
            self._data = shard_members(self.task.dataset(key, self.config.dataset_size), self.mesh, -1)
            self.step.data = self._data
        return self._data

    def held_out(self) -> tuple[jax.Array, jax.Array, jax.Array] | None:
        """The criterion's held-out trials `(S, T, M)`, `(S, T, O)`, mask, or None without a criterion:
        the task's `validation_set()` where it has one (the flip-flop: the 8-state test's mirror image,
        every pulse of the opposite sign, 10 steps earlier), else `stop_trials` trials drawn once from
        `seed` apart from every training key."""
        if self.config.stop_mse is not None and self._held_out is None:
            held = self.task.validation_set()  # a held-out set of the task's own making, or None
            if held is None:
                held = self.task.sample(
                    jax.random.fold_in(jax.random.key(self.config.seed), 2_000_003), self.config.stop_trials
                )
            self._held_out = shard_members(held, self.mesh, -1)
        return self._held_out

    # -- between steps, on the device ---------------------------------------------------------------
    def held_out_mse(self, model, held_out) -> jax.Array:
        """`(K,)` noise-free masked MSE of every member on the held-out trials."""
        inputs, targets, mask = held_out
        run = self.step.run_options()
        return jax.vmap(lambda m: masked_mse(m(inputs, **run), targets, mask))(model)

    def _after_chunk(
        self, state: TrainState, losses: jax.Array, n_steps: int, held_out
    ) -> tuple[TrainState, jax.Array]:
        """The criterion, and which members are dead starts (`(K,)` bool, restarted by `_restart`), after a
        chunk of `n_steps` steps with losses `(n, K)`."""
        c = self.config
        mean = jnp.mean(losses, axis=0)
        first = state.start_step == state.step - n_steps  # the chunk was the first after the start
        state = dataclasses.replace(state, start_loss=jnp.where(first, mean, state.start_loss))
        if held_out is not None:
            assert c.criterion is not None  # a held-out set only with a criterion (`held_out`)
            met = self.held_out_mse(state.model, held_out) < c.criterion
            state = dataclasses.replace(
                state, criterion_step=jnp.where((state.criterion_step < 0) & met, state.step, state.criterion_step)
            )
        if c.restart_after is None:
            return state, jnp.zeros_like(state.frozen)
        since = state.step - state.start_step
        after = max(c.restart_after, 2 * c.steps_per_call)  # a chunk after the first
        dead = (
            (since >= after)
            & (since - n_steps < after)
            & ~first
            & (mean >= c.restart_ratio * state.start_loss)
            & (state.criterion_step < 0)
            & ~state.frozen
            & (state.restarts < c.max_restarts)
        )
        return state, dead

    def _restart(self, state: TrainState, dead: jax.Array, constraints, hyper: Hyper) -> TrainState:
        """Re-initialize the members where `dead` (from `restart_key`), with fresh optimizer states
        (`constraints`, `hyper`: those of the state's members; constraints may be None). A program of its own
        (`_restarts`), compiled only in a run that has a dead start: the chunks stay small to compile."""
        restarts = state.restarts + dead.astype(jnp.int32)
        keys = jax.vmap(lambda i, r: restart_key(self.config.seed, i, r))(state.member_id, restarts)
        model = fresh_members(self.ensemble_config, keys, constraints, members=state.member_id)

        def pick(new, old):
            return jnp.where(dead.reshape((-1,) + (1,) * (old.ndim - 1)), new, old)

        model = jax.tree_util.tree_map(pick, model, state.model)
        opt_state = jax.tree_util.tree_map(pick, self._opt_init(model, hyper), state.opt_state)
        return dataclasses.replace(
            state,
            model=model,
            opt_state=opt_state,
            restarts=restarts,
            start_step=jnp.where(dead, state.step, state.start_step),
            start_loss=jnp.where(dead, jnp.inf, state.start_loss),
        )

    # -- the compiled chunk ---------------------------------------------------------------------------
    def _chunk(self, n_steps: int) -> Callable:
        if n_steps not in self._chunks:

            def run(state, hyper, data, cons, held_out):
                self.trace_count += 1
                done = state.criterion_step >= 0  # held at the weights that met the criterion: no loss
                state, metrics = lax.scan(
                    lambda s, _: self.step.apply(s, step_key(s), hyper, data, cons), state, None, length=n_steps
                )
                losses = metrics["loss"]
                state, dead = self._after_chunk(state, losses, n_steps, held_out)
                return state, jnp.where(done, jnp.nan, losses), dead

            self._chunks[n_steps] = jax.jit(run)
        return self._chunks[n_steps]

    def _run(self, state: TrainState, n_steps: int, hyper: Hyper, constraints) -> tuple[TrainState, jax.Array]:
        """A compiled chunk of the members of `state` (with their `hyper` and `constraints`), then the restarts
        of its dead starts, if any (one host read of `(K,)` bools)."""
        state, losses, dead = self._chunk(n_steps)(state, hyper, self.data(), constraints, self.held_out())
        if self.config.restart_after is not None and np.any(to_host(dead)):
            if self._restarts is None:
                self._restarts = jax.jit(self._restart)
            state = self._restarts(state, dead, constraints, hyper)
        return state, losses

    def run_steps(self, state: TrainState, n_steps: int) -> tuple[TrainState, jax.Array]:
        """Take `n_steps` training steps in one compiled call, then the criterion and restarts; returns
        the state and losses `(n_steps, K)`."""
        check_int("n_steps", n_steps, 1)
        return self._run(self.place(state), n_steps, self.hyper, self.constraints)

    # -- training only the members that are not done ---------------------------------------------------
    def _rows_layout(self, frozen: np.ndarray, met: np.ndarray, size: int) -> np.ndarray | None:
        """The rows to train next when the members still training (not frozen, criterion not met) fit in
        half the member slots per device of the current `size` rows: those members, padded with done
        ones to the same number on every device; else None (keep the current rows)."""
        busy = np.flatnonzero(~frozen & (met < 0))
        if not self.config.compact or is_distributed() or len(busy) == 0:
            return None
        d = 1 if self.mesh is None else self.mesh.devices.size
        per = -(-len(busy) // d)
        if 2 * per > size // d:
            return None
        pad = np.setdiff1d(np.arange(len(frozen)), busy)[: per * d - len(busy)]
        return np.concatenate([busy, pad])

    def _select(self, state: TrainState, rows: np.ndarray) -> tuple[TrainState, Hyper, Constraints | None]:
        """The state, hyper-parameters and constraints of the members at `rows`, placed on this
        trainer's devices (gathered on the host: a few small arrays, once per compaction)."""

        def pick(tree):
            return None if tree is None else jax.tree_util.tree_map(lambda x: np.asarray(x)[rows], jax.device_get(tree))

        sub = select_members(jax.device_get(state), rows)
        return (
            self.place(sub, len(rows)),
            self.place(pick(self.hyper), len(rows)),
            self.place(pick(self.constraints), len(rows)),
        )

    def _merge(self, state: TrainState, sub: TrainState, rows: np.ndarray, n_busy: int) -> TrainState:
        """`state` with its members `rows[:n_busy]` (and the step) taken from `sub`, the state of `rows`."""
        full, part = jax.device_get((state, sub))

        def put(whole, new):
            whole = np.array(whole)
            whole[rows[:n_busy]] = new[:n_busy]
            return whole

        merged = eqx.tree_at(_member_parts, full, jax.tree_util.tree_map(put, _member_parts(full), _member_parts(part)))
        return self.place(dataclasses.replace(merged, step=part.step))

    # -- the host loop ----------------------------------------------------------------------------
    def train(
        self,
        state: TrainState,
        *,
        until: int | None = None,
        progress=None,
        on_chunk: Callable[[TrainState, np.ndarray], None] | None = None,
    ) -> tuple[TrainState, np.ndarray]:
        """Train from `state.step` to step `until` (default `config.steps`), in compiled chunks of
        `steps_per_call` steps, or until every member has met the criterion (`stop_mse`); between
        chunks update `progress` (default: a tqdm bar) and call `on_chunk(state, losses_so_far)` (e.g.
        to checkpoint). With `compact` (the default), members that are done are no longer computed once
        the others fit in half the member slots per device (see `TrainConfig.compact`).

        **Returns:** the final state and the losses of the steps taken, `(n, K)` float (NumPy; NaN for a
        member held at the criterion).
        """
        until = self.config.steps if until is None else check_int("until", until, 0)
        start = int(state.step)
        if until < start:
            raise ValueError(f"`until` ({until}) is before the state's step ({start}).")
        progress = TqdmProgress() if progress is None else progress
        if not is_main_process():  # one progress display for a distributed run: process 0's
            progress = NoProgress()
        progress.start(until, initial=start)
        k = self.ensemble_config.members
        criterion = self.config.stop_mse is not None
        frozen, met = (np.array(a) for a in to_host((state.frozen, state.criterion_step)))
        done = criterion and bool(np.all(met >= 0))
        state = self.place(state)
        rows, n_busy = None, k  # the rows of the working state `work` (None: every member, in order)
        work, hyper, cons = state, self.hyper, self.constraints
        chunks = []
        losses: jax.Array | np.ndarray  # the chunk's, on the host
        try:
            while int(state.step) < until and not done:
                if (new := self._rows_layout(frozen, met, k if rows is None else len(rows))) is not None:
                    rows, n_busy = new, int(np.sum(~frozen[new] & (met[new] < 0)))
                    work, hyper, cons = self._select(state, rows)
                n = min(self.config.steps_per_call, until - int(state.step))
                work, losses = self._run(work, n, hyper, cons)
                # in a distributed run, one gather
                losses, w_frozen, w_met = to_host((losses, work.frozen, work.criterion_step))
                if rows is None:
                    state, frozen, met = work, np.array(w_frozen), np.array(w_met)
                else:  # back into the whole ensemble; the members not computed have no loss
                    state = self._merge(state, work, rows, n_busy)
                    frozen[rows[:n_busy]], met[rows[:n_busy]] = w_frozen[:n_busy], w_met[:n_busy]
                    whole = np.full((len(losses), k), np.nan, np.float32)
                    whole[:, rows[:n_busy]] = losses[:, :n_busy]
                    losses = whole
                chunks.append(losses)
                progress.update(int(state.step), chunks[-1][-1], int(np.sum(frozen)))
                done = criterion and bool(np.all(met >= 0))
                if on_chunk is not None:
                    on_chunk(state, np.concatenate(chunks))
        finally:
            progress.close()
        return state, (np.concatenate(chunks) if chunks else np.zeros((0, k), np.float32))


__all__ = [
    "EnsembleTrainer",
    "TrainConfig",
    "TrainState",
    "TrainStep",
    "Hyper",
    "NoProgress",
    "select_members",
    "make_train_step",
    "optimizer",
    "step_key",
    "restart_key",
    "state_record",
    "legacy_layouts",
    "check_model",
    "check_optimizer",
    "Optimizer",
]
