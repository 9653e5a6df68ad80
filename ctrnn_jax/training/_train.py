"""The ensemble trainer: one jit-compiled training step, vmapped over members, scanned over steps.

Per step and member: forward by `lax.scan`, MSE loss, BPTT by `jax.grad`, optional per-member
gradient-norm clip, Adam (`optax.scale_by_adam`) with a per-member learning rate and optional
inverse-time decay `lr_t = lr / (1 + decay·t)` (Keras' `decay`). A member whose loss or gradient is
not finite is frozen: its parameters and optimizer state stop changing and the others run on
unaffected (members never interact: every reduction is inside the vmapped member step).
"""

import contextlib
import dataclasses
import numbers
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from .._checks import check_int, check_seed
from ..models._model import CTRNN
from ..models._scan import check_backprop, check_precision
from ..tasks._flipflop import FlipFlopConfig
from ..tasks._task import check_task, masked_mse
from ._constraints import Constraints, apply_constraints
from ._distributed import is_distributed, is_main_process, to_host
from ._ensemble import EnsembleConfig, ensemble_constraints, ensemble_size, make_ensemble, per_member
from ._progress import NoProgress, TqdmProgress
from ._sharding import member_mesh, shard_members


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train (frozen, JSON-serialisable).

    **Fields:**

    - `steps`: total number of training steps (>= 0).
    - `batch_size`: trials per step and member (>= 1).
    - `learning_rate`: Adam learning rate (> 0), a number or one per member.
    - `lr_decay`: inverse-time decay `lr_t = lr / (1 + lr_decay·t)` (Keras 2 `decay`; 0 = constant).
    - `clip_norm`: per-member gradient global-norm clip: a number, one per member, or None for no clipping.
    - `noise_std`: std of the recurrent noise added to `h` at each step (>= 0), a number or one per member.
    - `shared_batch`: all members see the same batch (True) or each its own (False).
    - `dataset_size`: None draws fresh trials every step; an integer trains on a fixed data set of
      that many series, shuffled every epoch (the paper used 30050).
    - `steps_per_call`: training steps per compiled call (progress and checkpoints happen between calls).
    - `train_bias`: train the recurrent bias `b` (False keeps it at 0, as Keras' paper set-up; for
      gated cells their biases `b` and `b_n`).
    - `unroll`: `lax.scan` unroll of the time loop (>= 1).
    - `backprop`: gradient through the time loop: `"custom"` (hand-written VJP storing only the
      states: least memory, the fastest measured), `"checkpoint"` or `"autodiff"` (see `ctrnn_jax.models._scan`).
    - `precision`: matmul precision, `"default"` (TF32 on NVIDIA GPUs, float32 on CPUs) or
      `"highest"` (full float32 on every device).
    - `rate_l2`: weight of the L2 penalty on firing rates, `rate_l2 · mean(h²)` (0 = none).
    - `weight_l1`: weight of the L1 penalty `Σ_W mean(|W|)` over the trained weight matrices (`W_rec`,
      `W_in`, `W_out`; every trained matrix of a gated cell).
    - `weight_l2`: weight of the L2 penalty `Σ_W mean(W²)` over the same matrices.
    - `fixed`: names of weight groups kept at their initial values (e.g. `("W_rec", "W_in", "b")`
      trains only the readout, the reservoir-computing case); bit-for-bit unchanged by training.
    - `adam_b1`: Adam's beta1 (Keras default).
    - `adam_b2`: Adam's beta2 (Keras default).
    - `adam_eps`: Adam's epsilon (Keras default).
    - `seed`: seeds the members' initialization, the data and the noise.
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
    weight_l1: float = 0.0
    weight_l2: float = 0.0
    fixed: tuple[str, ...] = ()
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    adam_eps: float = 1e-7
    seed: int = 0

    def __post_init__(self):
        check_int("steps", self.steps, 0)
        check_int("batch_size", self.batch_size, 1)
        check_int("steps_per_call", self.steps_per_call, 1)
        check_int("unroll", self.unroll, 1)
        check_seed("seed", self.seed)
        check_backprop(self.backprop)
        check_precision(self.precision)
        if self.dataset_size is not None:
            check_int("dataset_size", self.dataset_size, self.batch_size)
        for name in ("learning_rate", "clip_norm", "noise_std"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
            value = getattr(self, name)
            if not (name == "clip_norm" and value is None):  # the range here; the length against K in `hyper`
                per_member(name, value, len(value) if isinstance(value, tuple) else 1, low=0.0,
                           low_open=name != "noise_std")
        for name in ("shared_batch", "train_bias"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"`{name}` must be True or False, got {getattr(self, name)!r}.")
        if isinstance(self.fixed, (list, str)):
            object.__setattr__(self, "fixed", tuple([self.fixed] if isinstance(self.fixed, str) else self.fixed))
        if not isinstance(self.fixed, tuple) or not all(isinstance(n, str) for n in self.fixed):
            raise TypeError(f"`fixed` must be a tuple of weight names, got {self.fixed!r}.")
        for name, low, high in (("lr_decay", 0.0, np.inf), ("adam_b1", 0.0, 1.0), ("adam_b2", 0.0, 1.0),
                                ("adam_eps", 0.0, np.inf), ("rate_l2", 0.0, np.inf), ("weight_l1", 0.0, np.inf),
                                ("weight_l2", 0.0, np.inf)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value < high:
                raise ValueError(f"`{name}` must be a number in [{low}, {high}), got {value!r}.")

    def hyper(self, n_members: int) -> "Hyper":
        """The per-member hyper-parameters as `(K,)` arrays (validated)."""
        lr = per_member("learning_rate", self.learning_rate, n_members, low=0.0)
        clip = (np.full(n_members, np.inf) if self.clip_norm is None
                else per_member("clip_norm", self.clip_norm, n_members, low=0.0))
        noise = per_member("noise_std", self.noise_std, n_members, low=0.0, low_open=False)
        f32 = lambda a: jnp.asarray(a, dtype=jnp.float32)  # noqa: E731
        return Hyper(learning_rate=f32(lr), clip_norm=f32(clip), noise_std=f32(noise))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        if "fixed" in d:
            d["fixed"] = tuple(d["fixed"])
        return cls(**d)


class Hyper(eqx.Module):
    """Per-member hyper-parameters, each `(K,)`; arguments of the compiled step (no recompiles)."""

    learning_rate: jax.Array
    clip_norm: jax.Array
    noise_std: jax.Array


class TrainState(eqx.Module):
    """Everything that changes during training (what a checkpoint holds).

    - `model`: the stacked ensemble, arrays `(K, ...)`.
    - `opt_state`: Adam's state, stacked over members.
    - `step`: number of steps taken (scalar int32).
    - `frozen`: `(K,)` bool, members stopped after a non-finite loss or gradient.
    - `frozen_step`: `(K,)` int32, the step at which each member froze (-1 if not).
    - `member_id`: `(K,)` int32, which member of the original ensemble each row is (keys derive from it).
    - `key_data`: raw data of the training key (data and noise keys are folded from it by step).
    """

    model: CTRNN
    opt_state: optax.OptState
    step: jax.Array
    frozen: jax.Array
    frozen_step: jax.Array
    member_id: jax.Array
    key_data: jax.Array


def select_members(state: TrainState, index) -> TrainState:
    """A state holding only the members at `index` (an int array or slice along the member axis)."""
    return eqx.tree_at(
        lambda s: (s.model, s.opt_state, s.frozen, s.frozen_step, s.member_id),
        state,
        jax.tree_util.tree_map(lambda x: x[index],
                               (state.model, state.opt_state, state.frozen, state.frozen_step, state.member_id)),
    )


def weight_names(model) -> tuple[str, ...]:
    """The names of a model's array fields (what `TrainConfig.fixed` may name)."""
    return tuple(f.name for f in dataclasses.fields(model)
                 if isinstance(getattr(model, f.name), (jax.Array, np.ndarray)))


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
        raise ValueError(f"`fixed` ({', '.join(fixed)}) leaves no weight to train (this model has "
                         f"{', '.join(names)}{'; the biases are off with train_bias=False' if not train_bias else ''}); "
                         "leave at least one out.")
    spec = jax.tree_util.tree_map(lambda _: True, model)
    for name in off:
        spec = eqx.tree_at(lambda m, n=name: getattr(m, n), spec, replace=False)
    return spec


def weight_penalty(params, l1: float, l2: float) -> jax.Array:
    """`l1 · Σ mean|W| + l2 · Σ mean(W²)` over the trained arrays with at least 2 dimensions."""
    mats = [w for w in jax.tree_util.tree_leaves(params) if w.ndim >= 2]
    total = jnp.zeros(())
    if l1:
        total = total + l1 * sum(jnp.mean(jnp.abs(w)) for w in mats)
    if l2:
        total = total + l2 * sum(jnp.mean(w**2) for w in mats)
    return total


class EnsembleTrainer:
    """Trains an ensemble of CTRNNs on a task, all members in one compiled, vmapped step.

    **Arguments:**

    - `ensemble`: an `EnsembleConfig` (sizes, alpha, activation, initialization).
    - `train`: a `TrainConfig`.
    - `task`: any task that follows the task protocol (`ctrnn_jax.tasks._task`; default the flip-flop).
      Its trials are generated on the device inside the step; the loss is its masked MSE.
    - `devices`: devices to spread the members over (default: all local devices; members are split
      over the largest number of them that divides K). Results do not depend on it. In a distributed
      run (`init_distributed`) the default is every process's devices: each process then makes and
      trains only its own members, and the losses are gathered between compiled chunks.
    - `constraints`: stacked `Constraints` (arrays `(K, ...)`, e.g. user-supplied masks from
      `constraints_from_arrays`, stacked) to enforce instead of those the ensemble config draws from
      `seed`. Every member is projected onto its constraints at `init` and after every step.

    Usage: `state = trainer.init(); state, losses = trainer.train(state)`; `losses` is `(steps, K)`.
    """

    def __init__(self, ensemble: EnsembleConfig, train: TrainConfig, task=None, *, devices=None,
                 constraints: Constraints | None = None):
        task = FlipFlopConfig() if task is None else task
        if not isinstance(ensemble, EnsembleConfig):
            raise TypeError(f"`ensemble` must be an EnsembleConfig, got {type(ensemble).__name__}.")
        if not isinstance(train, TrainConfig):
            raise TypeError(f"`train` must be a TrainConfig, got {type(train).__name__}.")
        check_task(task)
        if task.n_inputs != ensemble.inputs or task.n_outputs != ensemble.outputs:
            raise ValueError(f"the {task.name} task has {task.n_inputs} inputs and {task.n_outputs} outputs but the "
                             f"ensemble has `inputs`={ensemble.inputs}, `outputs`={ensemble.outputs}.")
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
            raise TypeError(f"`constraints` must be a Constraints (stacked over members), got {type(constraints).__name__}.")
        self._host_constraints = constraints if is_distributed() else None  # whole, for `init` in a distributed run
        self.constraints = None if constraints is None else self.place(constraints)
        self._use_noise = bool(np.any(to_host(self.hyper.noise_std) > 0))
        self._adam = optax.scale_by_adam(b1=train.adam_b1, b2=train.adam_b2, eps=train.adam_eps)
        self._data = None
        self._chunks: dict[int, Callable] = {}
        self.trace_count = 0  # how many times a chunk function was traced (compiles)

    # -- state --------------------------------------------------------------------------------
    def init(self) -> TrainState:
        """Fresh members (from `seed`) and Adam states. In a distributed run every process makes them
        on its host's CPU, exactly as one process does, and puts only its own members on its devices."""
        if is_distributed():  # made on this host's CPU as in one process, then each process puts
            with self._host():  # only its own members on its devices
                state = self._initial_state(make_ensemble(self.ensemble_config, key=self._model_key),
                                            jax.random.key_data(self._train_key), self._host_constraints)
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

    def init_from(self, model: CTRNN, *, key_data: jax.Array | None = None) -> TrainState:
        """A fresh training state for a given stacked ensemble (e.g. loaded from `ensemble.npz`)."""
        k = ensemble_size(model)
        if k != self.ensemble_config.members:
            raise ValueError(f"the model has {k} members but the config says `members`={self.ensemble_config.members}.")
        if key_data is None:
            key_data = jax.random.key_data(self._train_key)
        return self.place(self._initial_state(model, key_data, self.constraints))

    def _initial_state(self, model, key_data, constraints) -> TrainState:
        k = ensemble_size(model)
        if constraints is not None:  # a no-op on a model that satisfies them
            model = eqx.filter_vmap(apply_constraints)(model, constraints)
        params, _ = eqx.partition(model, self._spec(model))
        opt_state = eqx.filter_vmap(self._adam.init)(params)
        return TrainState(model=model, opt_state=opt_state, step=jnp.asarray(0, jnp.int32),
                          frozen=jnp.zeros(k, bool), frozen_step=jnp.full(k, -1, jnp.int32),
                          member_id=jnp.arange(k, dtype=jnp.int32), key_data=key_data)

    def place(self, tree):
        """Put a state (or any pytree with a leading member axis) on this trainer's devices."""
        return shard_members(tree, self.mesh, self.ensemble_config.members)

    def _spec(self, model):
        return trainable_filter(model, self.config.train_bias, self.config.fixed)

    def data(self) -> tuple[jax.Array, jax.Array, jax.Array] | None:
        """The fixed data set `(S, T, M)`, `(S, T, O)`, mask `(S, T, O)` in data-set mode (made once
        from `seed`), else None."""
        if self.config.dataset_size is not None and self._data is None:
            key = jax.random.fold_in(jax.random.key(self.config.seed), 1_000_003)
            make = getattr(self.task, "dataset", self.task.sample)
            self._data = shard_members(make(key, self.config.dataset_size), self.mesh, -1)
        return self._data

    # -- the compiled step ----------------------------------------------------------------------
    def _batch(self, key, step, member_id, data):
        """One batch `(B, T, M)`, `(B, T, O)`, mask `(B, T, O)` for a member (or for all, if
        `member_id` is None).

        Fresh trials come from the step's `key`; in data-set mode `key` is the run's key, and the
        batch is slice `step % per_epoch` of a permutation drawn once per epoch.
        """
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

    def _member_update(self, model, opt_state, frozen, frozen_step, hyper, batch, noise_key, step, cons):
        spec = self._spec(model)
        params, static = eqx.partition(model, spec)
        c = self.config
        run = dict(unroll=c.unroll, backprop=c.backprop, precision=c.precision)
        if self._use_noise:
            run.update(key=noise_key, noise_std=hyper.noise_std)

        inputs, targets, mask = batch

        def loss_fn(p):
            m = eqx.combine(p, static)
            if c.rate_l2:  # the states are needed: states, then the readout
                hs = m.states(inputs, **run)
                loss = masked_mse(m.readout(hs), targets, mask) + c.rate_l2 * jnp.mean(hs**2)
            else:
                loss = masked_mse(m(inputs, **run), targets, mask)  # the whole batch at once
            if c.weight_l1 or c.weight_l2:
                loss = loss + weight_penalty(p, c.weight_l1, c.weight_l2)
            return loss

        loss, grads = jax.value_and_grad(loss_fn)(params)
        gnorm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree_util.tree_leaves(grads)))  # global norm
        scale = jnp.minimum(1.0, hyper.clip_norm / jnp.maximum(gnorm, 1e-30))
        grads = jax.tree_util.tree_map(lambda g: g * scale, grads)
        updates, new_opt = self._adam.update(grads, opt_state)
        lr = hyper.learning_rate / (1.0 + self.config.lr_decay * step.astype(jnp.float32))
        new_params = jax.tree_util.tree_map(lambda p, u: p - lr * u, params, updates)
        if cons is not None:  # projected gradient descent onto the member's constraints
            new_params = eqx.filter(apply_constraints(eqx.combine(new_params, static), cons), spec)
        finite = jnp.isfinite(loss) & jnp.isfinite(gnorm)
        for p in jax.tree_util.tree_leaves(new_params):
            finite = finite & jnp.all(jnp.isfinite(p))
        ok = finite & ~frozen
        keep = lambda new, old: jnp.where(ok, new, old)  # noqa: E731
        new_params = jax.tree_util.tree_map(keep, new_params, params)
        new_opt = jax.tree_util.tree_map(keep, new_opt, opt_state)
        newly = ~frozen & ~finite
        frozen_step = jnp.where(newly, step, frozen_step)
        return eqx.combine(new_params, static), new_opt, frozen | ~finite, frozen_step, loss

    def _one_step(self, state: TrainState, hyper: Hyper, data, cons):
        key = jax.random.wrap_key_data(state.key_data)
        step_key = jax.random.fold_in(key, state.step)
        batch_key = key if data is not None else step_key
        noise_base = jax.random.fold_in(step_key, 7)
        noise_keys = jax.vmap(lambda i: jax.random.fold_in(noise_base, i))(state.member_id)
        if self.config.shared_batch:
            batch = self._batch(batch_key, state.step, None, data)
        else:
            batch = jax.vmap(lambda i: self._batch(batch_key, state.step, i, data))(state.member_id)
        batch_axis = None if self.config.shared_batch else 0
        update = jax.vmap(self._member_update, in_axes=(0, 0, 0, 0, 0, batch_axis, 0, None, 0))
        model, opt_state, frozen, frozen_step, loss = update(
            state.model, state.opt_state, state.frozen, state.frozen_step, hyper, batch, noise_keys, state.step,
            cons)
        state = TrainState(model=model, opt_state=opt_state, step=state.step + 1, frozen=frozen,
                           frozen_step=frozen_step, member_id=state.member_id, key_data=state.key_data)
        return state, loss

    def _chunk(self, n_steps: int) -> Callable:
        if n_steps not in self._chunks:
            def run(state, hyper, data, cons):
                self.trace_count += 1
                return lax.scan(lambda s, _: self._one_step(s, hyper, data, cons), state, None, length=n_steps)

            self._chunks[n_steps] = jax.jit(run)
        return self._chunks[n_steps]

    def run_steps(self, state: TrainState, n_steps: int) -> tuple[TrainState, jax.Array]:
        """Take `n_steps` training steps in one compiled call; returns the state and losses `(n_steps, K)`."""
        check_int("n_steps", n_steps, 1)
        return self._chunk(n_steps)(self.place(state), self.hyper, self.data(), self.constraints)

    # -- the host loop ----------------------------------------------------------------------------
    def train(self, state: TrainState, *, until: int | None = None, progress=None,
              on_chunk: Callable[[TrainState, np.ndarray], None] | None = None) -> tuple[TrainState, np.ndarray]:
        """Train from `state.step` to step `until` (default `config.steps`), in compiled chunks of
        `steps_per_call` steps; between chunks update `progress` (default: a tqdm bar) and call
        `on_chunk(state, losses_so_far)` (e.g. to checkpoint).

        **Returns:** the final state and the losses of the steps taken, `(n, K)` float (NumPy).
        """
        until = self.config.steps if until is None else check_int("until", until, 0)
        start = int(state.step)
        if until < start:
            raise ValueError(f"`until` ({until}) is before the state's step ({start}).")
        progress = TqdmProgress() if progress is None else progress
        if not is_main_process():  # one progress display for a distributed run: process 0's
            progress = NoProgress()
        progress.start(until, initial=start)
        chunks = []
        try:
            while int(state.step) < until:
                n = min(self.config.steps_per_call, until - int(state.step))
                state, losses = self.run_steps(state, n)
                losses, frozen = to_host((losses, state.frozen))  # in a distributed run, one gather
                chunks.append(losses)
                progress.update(int(state.step), chunks[-1][-1], int(np.sum(frozen)))
                if on_chunk is not None:
                    on_chunk(state, np.concatenate(chunks))
        finally:
            progress.close()
        k = self.ensemble_config.members
        return state, (np.concatenate(chunks) if chunks else np.zeros((0, k), np.float32))


__all__ = ["EnsembleTrainer", "TrainConfig", "TrainState", "Hyper", "NoProgress", "select_members"]
