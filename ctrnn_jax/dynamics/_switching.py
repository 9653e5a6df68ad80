"""At which input amplitude can a memory no longer be held? The continuation along each pulse direction,
checked against the network itself.

For a task with memory states (`memory_readouts`, e.g. the flip-flop's cube corners), every memory state (a
stable fixed point at the task's constant input whose readout is nearest a memory readout, within 0.5 on
every output) is followed along the path `u(c) = u₀ + c σ A_i e_i` for each input channel `i` and sign
`σ = ±1`, `c ∈ [0, max_scale]` in units of the channel's pulse amplitude `A_i` (the largest `|input|` on it
in the task's test set). Where the branch of the memory meets a saddle (a saddle-node with `stable_lost`), the
memory stops existing: a constant input above that amplitude `c*` must move the state away (it *switches*);
below it, the memory persists under the input, and no pulse of that amplitude, however long, switches it.

The check runs the network: from the memory state, the input `c σ A_i e_i` held for `hold` steps and then
switched off for `hold` steps, on the sweep `c = step, 2·step, …, max_scale`; the smallest `c` after which
the state has left the memory (its readout then differs by more than 0.5 on some output) is the simulated
threshold. For a constant input held long
enough the two agree: `c_sim − step < c* <= c_sim`.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from .._results import Result, text_table
from ._continuation import _readouts, follow_states
from ._fixed_point_set import FixedPoints
from ._fixed_points import _rows, as_ensemble

_CORNER = 0.5  # a readout within this of a memory readout, on every output, is that memory


@dataclasses.dataclass(frozen=True, eq=False)
class Switching(Result):
    """Switching amplitudes of every memory state along every pulse direction (module docstring); `R` rows,
    one per (memory state, channel, sign).

    **Fields:**

    - `member`, `point`: `(R,)` the member and the index of the memory state in the `FixedPoints`.
    - `memory`: `(R, O)` the memory readout (corner) the state holds.
    - `channel`, `sign`: `(R,)` the input channel `i` and the sign `σ` of the path.
    - `amplitude`: `(M,)` the pulse amplitude `A_i` of each channel (the unit of the scales).
    - `continuation`: `(R,)` `c*`, the scale at which the memory's stable point disappears (NaN: it exists
      along the whole path up to `max_scale`).
    - `simulated`: `(R,)` the smallest scale of the sweep at which the network, held at that input for
      `hold` steps, leaves the memory (NaN: never, up to `max_scale`; all NaN when the sweep was not run,
      `pulse_switching(..., simulate=False)`).
    - `step`, `max_scale`, `hold`: the sweep's step, its end, and the steps each input is held.
    """

    member: np.ndarray
    point: np.ndarray
    memory: np.ndarray
    channel: np.ndarray
    sign: np.ndarray
    amplitude: np.ndarray
    continuation: np.ndarray
    simulated: np.ndarray
    step: float
    max_scale: float
    hold: int

    def __len__(self) -> int:
        return int(self.member.shape[0])

    @property
    def switches(self) -> np.ndarray:
        """`(R,)` bool: the network switches (leaves the memory for good) at some scale of the sweep."""
        return np.isfinite(self.simulated)

    @property
    def agrees(self) -> np.ndarray:
        """`(R,)` bool, for the rows that switch: the continuation's `c*` and the simulated threshold agree
        within one step of the sweep (`c_sim − step < c* <= c_sim`); False elsewhere."""
        c, s = self.continuation, self.simulated
        tol = 1e-6 * self.step
        return self.switches & np.isfinite(c) & (c > s - self.step - tol) & (c <= s + tol)

    def per_channel(self) -> list[dict]:
        """Per member, channel and sign: the memories, how many the network switches (`switched`), the largest
        `c*` and simulated threshold among those (the scale that switches all of them), the share of them where
        the two agree, and `returns`: memories whose stable point disappears (`c*` found) yet the network falls
        back into the same memory once the input is off (it moved elsewhere under the input only)."""
        out = []
        for k in np.unique(self.member):
            for i in np.unique(self.channel):
                for sg in (1, -1):
                    rows = (self.member == k) & (self.channel == i) & (self.sign == sg)
                    if not rows.any():
                        continue
                    sw = rows & self.switches
                    c = self.continuation[sw]
                    out.append(
                        {
                            "member": int(k),
                            "channel": int(i),
                            "sign": int(sg),
                            "memories": int(rows.sum()),
                            "switched": int(sw.sum()),
                            "switch_all": float(np.nanmax(c)) if np.isfinite(c).any() else None,
                            "simulated_all": float(np.max(self.simulated[sw])) if sw.any() else None,
                            "agree": float(self.agrees[sw].mean()) if sw.any() else None,
                            "returns": int((rows & ~self.switches & np.isfinite(self.continuation)).sum()),
                        }
                    )
        return out

    def channel_summary(self, n_members: int | None = None) -> dict:
        """Per member and channel, over the member's memory states: each memory's switching amplitude on the
        channel is the smaller `c*` of its two signs (the weaker pulse of either sign that removes it; +inf where
        neither does up to `max_scale`). Returns `(K, M)` arrays: `min` and `median` of those amplitudes (+inf:
        above `max_scale`; NaN: the member has no memory state, or the channel no pulse), `memories` (int) and
        `lost` (int, the memories removed up to `max_scale`). `n_members`: `K` (default the largest member + 1)."""
        k_all = int(self.member.max()) + 1 if len(self) else 0
        k_all = k_all if n_members is None else int(n_members)
        m = self.amplitude.shape[0]
        low, mid = np.full((k_all, m), np.nan), np.full((k_all, m), np.nan)
        memories, lost = np.zeros((k_all, m), int), np.zeros((k_all, m), int)
        c = np.where(np.isfinite(self.continuation), self.continuation, np.inf)
        for k in range(k_all):
            for i in range(m):
                rows = (self.member == k) & (self.channel == i)
                if not rows.any():
                    continue
                per = np.array([np.min(c[rows & (self.point == p)]) for p in np.unique(self.point[rows])])
                low[k, i], mid[k, i] = np.min(per), np.median(per)
                memories[k, i], lost[k, i] = per.size, int(np.isfinite(per).sum())
        return {"min": low, "median": mid, "memories": memories, "lost": lost}

    @classmethod
    def from_dict(cls, data: dict) -> "Switching":
        """The `Switching` that `to_dict` wrote (e.g. in `analysis.json`)."""

        def num(v):
            return np.asarray([np.nan if x is None else x for x in v], np.float64)

        member = np.asarray(data["member"], int).reshape(-1)
        memory = np.asarray(data["memory"], np.float64)
        return cls(
            member=member,
            point=np.asarray(data["point"], int).reshape(-1),
            memory=memory.reshape(member.size, -1) if member.size else memory.reshape(0, 0),
            channel=np.asarray(data["channel"], int).reshape(-1),
            sign=np.asarray(data["sign"], int).reshape(-1),
            amplitude=np.asarray(data["amplitude"], np.float64).reshape(-1),
            continuation=num(data["continuation"]),
            simulated=num(data["simulated"]),
            step=float(data["step"]),
            max_scale=float(data["max_scale"]),
            hold=int(data["hold"]),
        )

    def _table(self):
        header = [
            "member",
            "channel",
            "sign",
            "memories",
            "switched",
            "c* (all switched)",
            "simulated",
            "agree",
            "lost, returns",
        ]

        def num(v, spec):
            return "–" if v is None else format(v, spec)

        body = [
            [
                str(r["member"]),
                str(r["channel"]),
                "+" if r["sign"] > 0 else "−",
                str(r["memories"]),
                str(r["switched"]),
                num(r["switch_all"], ".3f"),
                num(r["simulated_all"], ".2f"),
                num(r["agree"], ".2f"),
                str(r["returns"]),
            ]
            for r in self.per_channel()
        ]
        return header, body

    def __repr__(self) -> str:
        header, body = self._table()
        return text_table(
            f"Switching amplitude (× each channel's pulse amplitude; sweep step {self.step:g}, held {self.hold} steps)",
            header,
            body,
            max_rows=48,
        )

    def _repr_html_(self) -> str:
        from .._results import html_table

        header, body = self._table()
        return html_table("Switching amplitude", header, body)

    def to_dict(self) -> dict:
        def num(a):
            return [None if not np.isfinite(v) else float(v) for v in a]

        return {
            "amplitude": self.amplitude.tolist(),
            "step": self.step,
            "max_scale": self.max_scale,
            "hold": self.hold,
            "member": self.member.tolist(),
            "point": self.point.tolist(),
            "memory": self.memory.tolist(),
            "channel": self.channel.tolist(),
            "sign": self.sign.tolist(),
            "continuation": num(self.continuation),
            "simulated": num(self.simulated),
            "per_channel": self.per_channel(),
        }


def memory_points(ensemble, task, fixed_points: FixedPoints) -> tuple[np.ndarray, np.ndarray]:
    """`(rows, memory)`: the indices of the stable exact points that hold one of the task's memory readouts
    (nearest within 0.5 on every output) and that readout `(len(rows), O)`."""
    corners = np.asarray(task.memory_readouts(), np.float64)
    stable = np.flatnonzero(fixed_points.exact & (fixed_points.kind == "stable"))
    z = np.asarray(fixed_points.outputs, np.float64)[stable]
    dist = np.max(np.abs(z[:, None, :] - corners[None]), axis=-1)  # (P, C)
    nearest = np.argmin(dist, axis=1) if stable.size else np.zeros(0, int)
    ok = dist[np.arange(stable.size), nearest] < _CORNER if stable.size else np.zeros(0, bool)
    return stable[ok], corners[nearest[ok]]


@functools.partial(jax.jit, static_argnames=("hold",))
def _run(models, states, inputs, *, hold):
    """`(R, C, S)` the states after `hold` steps at the inputs `(R, C, M)` from `states (R, C, S)`, row `r`
    with network `r` of `models`."""

    def row(model, ss, us):
        return jax.vmap(lambda s, u: jax.lax.fori_loop(0, hold, lambda _, v: model.step(v, u), s))(ss, us)

    with jax.default_matmul_precision("highest"):
        return jax.vmap(row)(models, states, inputs)


def pulse_switching(
    ensemble,
    task,
    fixed_points: FixedPoints,
    *,
    max_scale: float = 1.5,
    step: float = 0.05,
    hold: int = 1000,
    simulate: bool = True,
    **continuation,
) -> Switching:
    """The switching amplitude of every memory state along every pulse direction, by continuation and by
    simulation (module docstring).

    **Arguments:**

    - `ensemble`: the stacked ensemble (any cell); `task`: its task (with `memory_readouts`).
    - `fixed_points`: its fixed points at the task's constant input.
    - `max_scale`: the path's end, in units of each channel's pulse amplitude (> 0).
    - `step`: the simulation sweep's step (0 < step <= max_scale).
    - `hold`: the steps each input of the sweep is held (>= 1).
    - `simulate`: also run the network at each amplitude of the sweep (the check of `c*`); with False only the
      continuation runs and `simulated` is all NaN (`switches` and `agrees` then all False).
    - `continuation`: further `follow_fixed_points` arguments (`max_steps`, `ds_max`, ...), and `refine` (how
      each fold is located again: `"fine"`, `"shared"` or `"none"`; see `follow_states`).

    **Returns:** a `Switching`.
    """
    ensemble = as_ensemble(ensemble)
    if task.memory_readouts() is None:
        raise ValueError(f"the {task.name} task has no memory states (`memory_readouts`): nothing to switch.")
    for name, v in (("max_scale", max_scale), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
            raise ValueError(f"`{name}` must be a positive finite number, got {v!r}.")
    if step > max_scale:
        raise ValueError(f"`step` must be at most `max_scale` ({max_scale}), got {step}.")
    if isinstance(hold, bool) or not isinstance(hold, int) or hold < 1:
        raise ValueError(f"`hold` must be an integer >= 1, got {hold!r}.")
    if not isinstance(simulate, bool):
        raise TypeError(f"`simulate` must be True or False, got {simulate!r}.")
    m = ensemble.n_inputs
    amplitude = np.max(np.abs(np.asarray(task.test_set()[0], np.float64)), axis=(0, 1))  # (M,)
    rows, memory = memory_points(ensemble, task, fixed_points)
    channels = np.flatnonzero(amplitude > 0)
    combos = [(r, mem, i, sg) for r, mem in zip(rows, memory) for i in channels for sg in (1.0, -1.0)]
    if not combos:
        empty = np.zeros(0)
        return Switching(
            member=empty.astype(int),
            point=empty.astype(int),
            memory=np.zeros((0, memory.shape[-1])),
            channel=empty.astype(int),
            sign=empty.astype(int),
            amplitude=amplitude,
            continuation=empty,
            simulated=empty,
            step=float(step),
            max_scale=float(max_scale),
            hold=hold,
        )
    point = np.array([c[0] for c in combos])
    mem = np.array([c[1] for c in combos])
    channel = np.array([c[2] for c in combos])
    sign = np.array([c[3] for c in combos])
    member = fixed_points.member[point].astype(int)
    u0 = np.asarray(fixed_points.inputs, np.float64)[member]
    direction = np.zeros((len(combos), m))
    direction[np.arange(len(combos)), channel] = sign * amplitude[channel]
    cont = follow_states(ensemble, member, fixed_points.points[point], u0, u0 + max_scale * direction, **continuation)
    lost = [cont.first_loss(b) for b in range(len(combos))]
    c_star = np.array([np.nan if c is None else c * max_scale for c in lost])
    if not simulate:
        return Switching(
            member=member,
            point=point,
            memory=mem,
            channel=channel,
            sign=sign.astype(int),
            amplitude=amplitude,
            continuation=c_star,
            simulated=np.full(len(combos), np.nan),
            step=float(step),
            max_scale=float(max_scale),
            hold=int(hold),
        )
    scales = np.arange(1, int(np.floor(max_scale / step + 1e-9)) + 1) * step
    inputs = u0[:, None, :] + scales[None, :, None] * direction[:, None, :]
    dtype = ensemble.W_rec.dtype
    starts = np.broadcast_to(fixed_points.points[point][:, None, :], (len(combos), scales.size, ensemble.state_size))
    per_row = _rows(ensemble, member.tolist())
    held = _run(per_row, jnp.asarray(starts, dtype), jnp.asarray(inputs, dtype), hold=int(hold))
    # then the input is switched off: where does the state settle?
    relaxed = np.asarray(
        _run(per_row, held, jnp.asarray(np.broadcast_to(u0[:, None, :], inputs.shape), dtype), hold=int(hold)),
        np.float64,
    )
    z = _readouts(ensemble, np.repeat(member, scales.size), relaxed.reshape(-1, ensemble.state_size)).reshape(
        len(combos), scales.size, -1
    )
    left = np.max(np.abs(z - mem[:, None, :]), axis=-1) > _CORNER  # (R, C)
    first = np.where(left.any(axis=1), scales[np.argmax(left, axis=1)], np.nan)
    return Switching(
        member=member,
        point=point,
        memory=mem,
        channel=channel,
        sign=sign.astype(int),
        amplitude=amplitude,
        continuation=c_star,
        simulated=first,
        step=float(step),
        max_scale=float(max_scale),
        hold=int(hold),
    )


__all__ = ["Switching", "memory_points", "pulse_switching"]
