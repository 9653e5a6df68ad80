"""NeuroGym environments as tasks: `NeurogymTask("PerceptualDecisionMaking-v0", dt=100)`.

NeuroGym (`pip install 'ctrnn-ensembles[neurogym]'`) is the field's shared collection of trial-based
cognitive tasks. Its environments build each trial on the host with NumPy: `env.new_trial()`
fills `env.ob` (`(L, M)` observations) and `env.gt` (`(L,)` ground-truth actions, the action the
agent should take at every step: `0` = fixate, then the choice) for a trial of `L` steps. Here:

- **Trials.** One trial per row, drawn with the environment's own generator (seeded from our key),
  padded at the end to a fixed length `T = length` (inputs 0, mask 0 on the padding). Padding at the
  end never changes what the network does within the trial. `length` defaults to the longest of
  1000 probe trials; a rarer, longer trial is drawn again.
- **Targets.** One-hot ground-truth actions: `O = env.action_space.n` outputs, output `a` is the
  network's vote for action `a` (output 0: fixate). This is what NeuroGym's own supervised examples
  train (a readout per action, the action is the argmax); here the loss is the masked MSE to the
  one-hot target.
- **Loss mask.** 1 on every step of the trial (NeuroGym's ground truth holds at every step: fixate
  before the response, then choose), 0 on the padding; `scored_periods` restricts it to the named
  periods of the environment (e.g. `("decision",)`).
- **Score.** NeuroGym's decision accuracy: a trial is correct when the argmax of the output at its
  last scored step (the end of the decision period) is the ground-truth action there.
- **Training.** Trials come from the host, so the trainer needs its data-set mode
  (`TrainConfig(dataset_size=...)`, which calls `dataset(key, n)` once, before compiling): `sample`
  inside `jit` raises a TypeError that says so. `ctrnn-jax train --task neurogym:ENV_ID` sets it.
- **Fixed-point inputs.** The environment's baseline input: the mean observation in its `fixation`
  period (the fixation cue alone, e.g. `[1, 0, 0]` for `PerceptualDecisionMaking-v0`), or, where the
  fixation period is empty (`GoNogo-v0`, `PerceptualDecisionMakingDelayResponse-v0`), in its `delay`
  period (for `GoNogo-v0` also `[1, 0, 0]`: the fixation cue between stimulus and response).

Envs whose ground truth is not a discrete action per step (`Bandit-v0`, `DawTwoStep-v0`,
`EconomicDecisionMaking-v0`, `Null-v0`: no ground truth; `ReachingDelayResponse-v0`,
`SpatialSuppressMotion-v0`: continuous actions; `Reaching1D*-v0`: a position, not an action) are
refused with a one-line error. neurogym is imported only when a `NeurogymTask` is made.
"""

import ast
import dataclasses
import inspect
import json
import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_float, check_int, check_key
from ._task import AbstractTask, masked_mse_np

INSTALL = "pip install 'ctrnn-ensembles[neurogym]'"
_PROBE_TRIALS = 1000  # trials drawn to find the default `length`
_BASELINE_TRIALS = 64  # trials averaged for the fixed-point input
_OWN = ("length", "test_trials", "test_seed", "success_accuracy", "scored_periods")


def import_neurogym():
    """The `neurogym` module, or an ImportError (one line) that says how to install it."""
    try:
        import neurogym
    except ImportError as e:
        raise ImportError(f"NeuroGym tasks need the `neurogym` package ({e}); install it with {INSTALL}") from None
    return neurogym


def _make_env(env_id: str, env_kwargs: Mapping[str, Any], seed: int):
    """The unwrapped environment `env_id`, seeded (validated: a clear ValueError otherwise)."""
    import_neurogym()
    from neurogym.envs.registration import all_envs, make

    known = all_envs(collections=True)
    if env_id not in known:
        raise ValueError(f"`env_id` must be a NeuroGym environment ({', '.join(known)}); got {env_id!r}.")
    import gymnasium

    entry_point = cast(str, gymnasium.spec(env_id).entry_point)  # neurogym registers its envs by import string
    creator = gymnasium.envs.registration.load_env_creator(entry_point)
    params = inspect.signature(creator).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        allowed = sorted(set(params) | set(_OWN))
        unknown = sorted(set(env_kwargs) - set(params))
        if unknown:
            raise ValueError(f"unknown {env_id} option(s) {unknown}; allowed: {allowed}.")
    for name, value in env_kwargs.items():  # a number where the environment's default is one
        default = params[name].default if name in params else inspect.Parameter.empty
        if isinstance(default, numbers.Real) and not isinstance(default, bool):
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
                or (name == "dt" and value <= 0)
            ):
                accepted = "a number > 0" if name == "dt" else "a finite number"
                raise ValueError(
                    f"{env_id} option `{name}` must be {accepted} (its default is {default}); got {value!r}."
                )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*render_modes")  # gymnasium's note on NeuroGym's metadata
        try:
            env = make(env_id, **env_kwargs).unwrapped
        except Exception as e:  # noqa: BLE001 - the env's own check of its options, any exception type
            why = " ".join(str(e).split())  # one line
            raise ValueError(f"{env_id} rejects the options {dict(env_kwargs)}: {type(e).__name__}: {why}") from None
    if not hasattr(env, "new_trial") or not hasattr(env.action_space, "n"):
        raise ValueError(
            f"{env_id} is not a trial-based NeuroGym environment with a discrete action space "
            f"(action space {env.action_space}), so it has no one-hot targets."
        )
    env.seed(int(seed))
    return env


def _trial(env, env_id: str) -> tuple[np.ndarray, np.ndarray]:
    """`(ob (L, M), gt (L,))` of a new trial, checked."""
    env.new_trial()
    ob, gt = getattr(env, "ob", None), getattr(env, "gt", None)
    if ob is None or gt is None:
        raise ValueError(f"{env_id} defines no ground truth (env.ob/env.gt), so it cannot be trained supervised.")
    ob, gt = np.asarray(ob), np.asarray(gt)
    n = env.action_space.n
    if (
        ob.ndim != 2
        or gt.shape != ob.shape[:1]
        or not np.issubdtype(gt.dtype, np.integer)
        or gt.min() < 0
        or gt.max() >= n
    ):
        raise ValueError(
            f"{env_id}'s ground truth is not one action in 0..{n - 1} per step "
            f"(observations {ob.shape}, ground truth {gt.shape}, values {np.unique(gt)[:8].tolist()})."
        )
    return ob, gt


def _seed(key: jax.Array) -> int:
    """A NumPy seed (< 2**32) from a typed JAX key."""
    data = np.asarray(jax.random.key_data(key)).astype(np.uint32).ravel().tolist()
    return int(np.random.SeedSequence(data).generate_state(1)[0])


def _kwargs_json(env_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The env options as JSON values (tuples become lists); a TypeError for what JSON cannot hold."""
    try:
        return json.loads(json.dumps(dict(env_kwargs), sort_keys=True))
    except TypeError as e:
        raise TypeError(f"NeuroGym env options must be JSON values (numbers, strings, lists, dicts): {e}") from None


@dataclasses.dataclass(frozen=True, init=False)
class NeurogymTask(AbstractTask):
    """A NeuroGym environment as a task (see the module docstring for the conventions).

    `NeurogymTask(env_id, **env_kwargs)`, e.g. `NeurogymTask("GoNogo-v0", dt=50)`: `env_kwargs` go
    to the environment's constructor (`dt` in ms, `timing`, `sigma`, ...; also accepted as one dict,
    `env_kwargs={...}`); `M` = the observation size, `O` = the number of actions.

    **Fields:**

    - `env_id`: a registered NeuroGym environment (`neurogym.envs.registration.all_envs()`).
    - `env_kwargs`: the environment's options (JSON values), a dict.
    - `length`: `T`, trial length in steps after padding; default: the longest of 1000 probe trials.
    - `test_trials`: number of test trials, >= 1 (default 512).
    - `test_seed`: seed of the test trials, >= 0.
    - `success_accuracy`: test-set accuracy at which a network counts as trained, in (0, 1]
      (default 0.8: NeuroGym's perceptual envs include zero-coherence trials that no one can get
      right more than half of the time).
    - `scored_periods`: names of the periods whose steps the loss counts; `()` (default) = all.

    **Example:** `cj.NeurogymTask("PerceptualDecisionMaking-v0").dataset(jax.random.key(0), 256)`
    gives `(inputs (256, 22, 3), targets (256, 22, 3), mask (256, 22, 3))`.
    """

    name: ClassVar[str] = "neurogym"
    metric_name: ClassVar[str] = "accuracy"
    higher_is_better: ClassVar[bool] = True

    env_id: str
    env_kwargs: Mapping[str, Any]
    length: int
    test_trials: int
    test_seed: int
    success_accuracy: float
    scored_periods: tuple[str, ...]
    if TYPE_CHECKING:  # set in __init__ from the environment; not dataclass fields
        _n_inputs: int
        _n_outputs: int

    def __init__(
        self,
        env_id: str,
        *,
        env_kwargs: Mapping[str, Any] | None = None,
        length: int | None = None,
        test_trials: int = 512,
        test_seed: int = 0,
        success_accuracy: float = 0.8,
        scored_periods: tuple[str, ...] = (),
        **kwargs: Any,
    ):
        if not isinstance(env_id, str):
            raise TypeError(f"`env_id` must be a string, got {env_id!r}.")
        if env_kwargs is not None and not isinstance(env_kwargs, Mapping):
            raise TypeError(f"`env_kwargs` must be a dict of the environment's options, got {env_kwargs!r}.")

        def set_(n, v):  # a frozen dataclass
            object.__setattr__(self, n, v)

        set_("env_id", env_id)
        set_("env_kwargs", _kwargs_json({**(env_kwargs or {}), **kwargs}))
        set_("test_trials", check_int("test_trials", test_trials, 1))
        set_("test_seed", check_int("test_seed", test_seed, 0))
        accuracy = check_float("success_accuracy", success_accuracy)
        if not 0 < accuracy <= 1:
            raise ValueError(f"`success_accuracy` must be in (0, 1], got {accuracy}.")
        set_("success_accuracy", accuracy)
        if isinstance(scored_periods, str) or not all(isinstance(p, str) for p in scored_periods):
            raise TypeError(f"`scored_periods` must be a tuple of period names, got {scored_periods!r}.")
        set_("scored_periods", tuple(scored_periods))
        env = _make_env(env_id, self.env_kwargs, 0)  # checks the id and the options
        ob, _ = _trial(env, env_id)
        set_("_n_inputs", int(ob.shape[1]))
        set_("_n_outputs", int(env.action_space.n))
        periods = set(env.start_ind)
        unknown = sorted(set(self.scored_periods) - periods)
        if unknown:
            raise ValueError(f"`scored_periods`: {env_id} has no period(s) {unknown}; its periods: {sorted(periods)}.")
        if length is None:
            length = max([ob.shape[0]] + [_trial(env, env_id)[0].shape[0] for _ in range(_PROBE_TRIALS - 1)])
        set_("length", check_int("length", length, 1))

    def __hash__(self) -> int:  # the env options are a dict
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @property
    def n_inputs(self) -> int:
        """`M`: the size of the environment's observation."""
        return self._n_inputs

    @property
    def n_outputs(self) -> int:
        """`O`: the number of the environment's actions (output 0: fixate)."""
        return self._n_outputs

    def dataset(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`n` trials drawn on the host by the environment, seeded from `key` (the same key gives the
        same trials).

        **Returns:** float32 `(inputs (n, T, M), targets (n, T, O), mask (n, T, O))`, `T = length`:
        observations, one-hot ground-truth actions, and 1 on the scored steps (0 on the padding).
        """
        check_key(key)
        n = check_int("n", n, 1)
        inputs, targets, mask = (jnp.asarray(a) for a in self._trials(_seed(key), n))
        return inputs, targets, mask

    def sample(self, key: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`dataset(key, batch_size)` on the host; inside `jit` a TypeError (train in data-set mode)."""
        if isinstance(key, jax.core.Tracer):
            raise TypeError(
                f"NeuroGym trials ({self.env_id}) are made on the host, not inside jit: train in data-set "
                "mode, TrainConfig(dataset_size=...) (ctrnn-jax train --dataset-size N)."
            )
        return self.dataset(key, batch_size)

    def test_set(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`test_trials` trials from `test_seed` (a stream apart from the training keys')."""
        seed = int(np.random.SeedSequence([self.test_seed, 0x7E57]).generate_state(1)[0])
        inputs, targets, mask = (jnp.asarray(a) for a in self._trials(seed, self.test_trials))
        return inputs, targets, mask

    def _trials(self, seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        env = _make_env(self.env_id, self.env_kwargs, seed)
        t, m, o = self.length, self.n_inputs, self.n_outputs
        inputs = np.zeros((n, t, m), np.float32)
        targets = np.zeros((n, t, o), np.float32)
        mask = np.zeros((n, t, o), np.float32)
        i = redrawn = 0
        while i < n:
            ob, gt = _trial(env, self.env_id)
            steps = ob.shape[0]
            if steps > t:  # longer than `length`: drawn again
                redrawn += 1
                if redrawn > 10 * n + 100:
                    raise ValueError(f"{self.env_id}: almost every trial is longer than `length`={t}; raise it.")
                continue
            inputs[i, :steps] = ob
            targets[i, np.arange(steps), gt] = 1.0
            if self.scored_periods:
                for p in self.scored_periods:
                    mask[i, env.start_ind[p] : min(env.end_ind[p], steps)] = 1.0
            else:
                mask[i, :steps] = 1.0
            i += 1
        return inputs, targets, mask

    def score(self, outputs, targets, mask) -> dict[str, np.ndarray]:
        """NeuroGym's decision accuracy: the argmax of the output at each trial's last scored step
        against the ground-truth action there.

        **Arguments:** `outputs (K, B, T, O)`; `targets`, `mask`: `(B, T, O)`.

        **Returns:** dict of `(K,)` arrays: `accuracy` (= `metric`), `success`
        (`accuracy >= success_accuracy`), `mse` (masked).
        """
        outputs = np.asarray(outputs, np.float64)
        targets = np.asarray(targets, np.float64)
        scored = np.asarray(mask).max(axis=-1) > 0  # (B, T)
        valid = scored.any(axis=1)
        last = scored.shape[1] - 1 - np.argmax(scored[:, ::-1], axis=1)  # (B,)
        rows = np.arange(scored.shape[0])
        choice = np.argmax(outputs[:, rows, last], axis=-1)  # (K, B)
        answer = np.argmax(targets[rows, last], axis=-1)  # (B,)
        correct = (choice == answer[None]) & valid[None]
        accuracy = correct.sum(axis=1) / max(int(valid.sum()), 1)
        return {
            "metric": accuracy,
            "accuracy": accuracy,
            "success": accuracy >= self.success_accuracy,
            "mse": masked_mse_np(outputs, targets, mask),
        }

    def success_threshold(self) -> float:
        """`success_accuracy`."""
        return self.success_accuracy

    def trial_groups(self, targets, mask) -> tuple[np.ndarray, tuple[str, ...]]:
        """The trials by their ground-truth action at the last scored step."""
        scored = np.asarray(mask).max(axis=-1) > 0  # (B, T)
        last = scored.shape[1] - 1 - np.argmax(scored[:, ::-1], axis=1)
        actions = np.argmax(np.asarray(targets)[np.arange(scored.shape[0]), last], axis=-1)
        values = sorted(set(actions.tolist()))
        return np.searchsorted(np.asarray(values), actions).astype(int), tuple(f"action {a}" for a in values)

    def train_defaults(self) -> dict[str, Any]:
        """NeuroGym trials are made on the host, so they train in data-set mode: 8192 trials (1-2 s to make)."""
        return {"dataset_size": 8192}

    @classmethod
    def for_sizes(cls, n_inputs: int, n_outputs: int):
        raise TypeError("a neurogym task needs an environment id (neurogym:ENV_ID).")

    def fixed_point_inputs(self) -> np.ndarray:
        """`(1, M)`: the environment's baseline input, the mean observation of its `fixation`
        period, or of its `delay` period where the fixation period is empty, over 64 trials (zeros if
        it has neither)."""
        env = _make_env(self.env_id, self.env_kwargs, 0)
        rows: dict[str, list[np.ndarray]] = {"fixation": [], "delay": []}
        for _ in range(_BASELINE_TRIALS):
            ob, _ = _trial(env, self.env_id)
            for p, r in rows.items():
                if p in env.start_ind:
                    r.append(ob[env.start_ind[p] : env.end_ind[p]])
        for r in rows.values():
            steps = np.concatenate(r) if r else np.zeros((0, self.n_inputs))
            if steps.shape[0]:
                return steps.mean(axis=0, keepdims=True).astype(np.float32)
        return np.zeros((1, self.n_inputs), np.float32)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict (`length` resolved)."""
        return {
            "env_id": self.env_id,
            "env_kwargs": dict(self.env_kwargs),
            "length": self.length,
            "test_trials": self.test_trials,
            "test_seed": self.test_seed,
            "success_accuracy": self.success_accuracy,
            "scored_periods": list(self.scored_periods),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NeurogymTask":
        """Inverse of `to_dict`; unknown keys raise `ValueError`."""
        unknown = sorted(set(d) - {"env_id", "env_kwargs", *_OWN})
        if unknown or "env_id" not in d:
            raise ValueError(
                f"a neurogym task needs `env_id` and takes {sorted({'env_kwargs', *_OWN})}; got {sorted(d)}."
            )
        own: dict[str, Any] = {k: (tuple(v) if k == "scored_periods" else v) for k, v in d.items() if k in _OWN}
        return cls(d["env_id"], env_kwargs=d.get("env_kwargs", {}), **own)


def _option_value(text: str):
    """A `--task-opt` value: a Python/JSON literal (`20`, `0.5`, `[6.4, 12.8]`, `{'stimulus': 500}`,
    `True`), else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        try:
            return json.loads(text)
        except ValueError:
            return text


def neurogym_task(spec: str, options: Sequence[str] = ()) -> NeurogymTask:
    """The task of `ctrnn-jax train --task neurogym:ENV_ID --task-opt KEY=VALUE ...`: `KEY` is an option
    of the environment (`dt=50`, `timing={'stimulus': 500}`) or a field of `NeurogymTask` (`length`,
    `test_trials`, `test_seed`, `success_accuracy`, `scored_periods=decision,delay`); one-line
    ValueErrors for a bad id or option, an ImportError when neurogym is missing."""
    prefix, _, env_id = spec.partition(":")
    if prefix != "neurogym" or not env_id:
        raise ValueError(f"--task {spec!r}: a NeuroGym task is neurogym:ENV_ID, e.g. neurogym:GoNogo-v0")
    fields: dict[str, Any] = {}
    for opt in options:
        key, sep, text = opt.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"--task-opt {opt!r}: expected KEY=VALUE (an option of {env_id} or one of {list(_OWN)})")
        if key == "scored_periods":
            fields[key] = tuple(p.strip() for p in text.split(",") if p.strip())
        else:
            fields[key] = _option_value(text)
            if not _finite(fields[key]):
                raise ValueError(f"--task-opt {opt!r}: `{key}` must hold finite numbers only (no nan or inf)")
    return NeurogymTask(env_id, **fields)


def _finite(value) -> bool:
    """Whether no number in `value` (a `--task-opt` value: a number, text, or lists and dicts of them) is
    nan or infinite; text that spells one (`nan`, `inf`) counts as one."""
    if isinstance(value, str):
        try:
            return math.isfinite(float(value))
        except ValueError:
            return True
    if isinstance(value, numbers.Real):
        return math.isfinite(value)
    if isinstance(value, Mapping):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple, set)):
        return all(_finite(v) for v in value)
    return True
