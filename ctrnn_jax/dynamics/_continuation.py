"""Fixed points followed along an input path, with their bifurcations.

Along a straight path `u(p) = u₀ + p (u₁ − u₀)`, `p ∈ [0, 1]` (a segment between two constant inputs: a
pulse scaled from 0 to its amplitude, a context cue switched on, a stimulus strength swept), every fixed point
`s*` found at `u₀` is followed as `p` grows by **pseudo-arclength continuation**: the unknown is `y = (s, p)`,
the branch `G(y) = F(s, u(p)) − s = 0` is a curve in `(S + 1)` dimensions, and each step moves a length `ds`
along the curve's tangent `t` (the null vector of `∂G/∂y`), then corrects with Newton on `G(y) = 0`,
`t · (y − y_pred) = 0`. A fold (saddle-node), where the branch turns back in `p`, is passed like any other
point, so a branch that loses its stable point comes back as the saddle it met. The step length adapts: it
grows after a step that converged (up to `ds_max`), halves after one that did not (down to `ds_min`, where
the branch is given up and marked incomplete). A branch ends when `p` leaves `[0, 1]`.

Each accepted point gets the eigenvalues of its Jacobian, and the bifurcations are read off between
consecutive points:

- **saddle-node** (fold): `p` turns back (a real eigenvalue passes through 1); located at the vertex of the
  parabola through the three points around the turn. `stable_lost` says whether the side of the branch it
  came from was stable: a stable point disappears there (a memory can no longer be held);
- **Hopf** (Neimark–Sacker for the map): a complex pair passes through the unit circle; located by linear
  interpolation of its modulus;
- **flip**: a real eigenvalue passes through −1;
- **branch point**: a real eigenvalue passes through 1 without a turn (pitchfork, transcritical).

Members and branches are followed at once (`vmap`), compiled once per shape, for any cell.
"""

import dataclasses
import functools
import html

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int, check_positive
from .._files import jsonable
from .._results import Result, html_table
from ._fixed_point_set import FixedPoints
from ._fixed_points import as_ensemble
from ._linearization import _jacobians

_EVENTS = ("saddle-node", "hopf", "flip", "branch point")


@functools.partial(jax.jit, static_argnames=("max_steps", "newton_steps"))
def _follow(models, s0, u0, du, ds0, ds_min, ds_max, tol, *, max_steps, newton_steps):
    """Pseudo-arclength continuation of `B` branches: `models` (one network per branch), `s0` `(B, S)`, `u0`,
    `du` `(B, M)`. Returns every attempt's point `(B, max_steps, S + 1)`, whether it was accepted
    `(B, max_steps)`, the polished start `(B, S + 1)` and how each branch ended `(B,)` (0: ran out of steps,
    1: left [0, 1], 2: the step fell under `ds_min`)."""

    def branch(model, s_init, u0, du):
        n = s_init.shape[0]

        def g(y):
            return model.step(y[:n], u0 + y[n] * du) - y[:n]

        def g_y(y):
            x = u0 + y[n] * du
            _, jm = model.residual_and_jacobian(y[:n], x)
            return jnp.concatenate([jm, (model.input_jacobian(y[:n], x) @ du)[:, None]], 1)

        def bordered(y, t):
            return jnp.concatenate([g_y(y), t[None]], 0)

        def tangent(y, t_prev):
            t = jnp.linalg.solve(bordered(y, t_prev), jnp.zeros(n + 1, y.dtype).at[n].set(1.0))
            return t / jnp.linalg.norm(t)

        def polish(s, _):  # Newton at p = 0 on the start
            _, jm = model.residual_and_jacobian(s, u0)
            return s - jnp.linalg.solve(jm, g(jnp.concatenate([s, jnp.zeros(1, s.dtype)]))), None

        s_start = jax.lax.scan(polish, s_init, None, length=newton_steps)[0]
        s_start = jnp.where(jnp.all(jnp.isfinite(s_start)), s_start, s_init)
        y0 = jnp.concatenate([s_start, jnp.zeros(1, s_init.dtype)])
        t0 = tangent(y0, jnp.zeros(n + 1, y0.dtype).at[n].set(1.0))

        def attempt(carry, _):
            y, t, ds, end = carry
            y_pred = y + ds * t

            def newton(z, _):
                r = jnp.concatenate([g(z), (t @ (z - y_pred))[None]])
                return z - jnp.linalg.solve(bordered(z, t), r), None

            z = jax.lax.scan(newton, y_pred, None, length=newton_steps)[0]
            ok = (
                jnp.all(jnp.isfinite(z))
                & (jnp.linalg.norm(g(z)) < tol)
                & (jnp.linalg.norm(z - y_pred) < ds)
                & (end == 0)
            )
            t_new = tangent(z, t)
            ok = ok & jnp.all(jnp.isfinite(t_new)) & (t_new @ t > 0.5)  # no sudden turn: no jump between branches
            y2, t2 = jnp.where(ok, z, y), jnp.where(ok, t_new, t)
            ds2 = jnp.where(ok, jnp.minimum(ds * 1.5, ds_max), ds * 0.5)
            left = ok & ((z[n] > 1.0) | (z[n] < 0.0))
            end2 = jnp.where(end != 0, end, jnp.where(left, 1, jnp.where(ds2 < ds_min, 2, 0)))
            return (y2, t2, ds2, end2), (z, ok)

        carry = (y0, t0, jnp.asarray(ds0, y0.dtype), jnp.asarray(0, jnp.int32))
        (_, _, _, end), (zs, oks) = jax.lax.scan(attempt, carry, None, length=max_steps)
        return zs, oks, y0, end

    with jax.default_matmul_precision("highest"):
        return jax.vmap(branch)(models, s0, u0, du)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Continuation(Result):
    """Fixed points followed along the path `u(p) = start + p (end − start)` (module docstring); `B` branches.

    **Fields:**

    - `member`: `(B,)` the member of each branch.
    - `start`, `end`: `(B, M)` the path's ends for each branch (its member's).
    - `param`: list of `B` arrays `(n_b,)`, the path parameter `p` at each point of the branch.
    - `states`: list of `B` arrays `(n_b, S)`, the fixed point at each `p`.
    - `outputs`: list of `B` arrays `(n_b, O)`, its readout.
    - `eigvals`: list of `B` arrays `(n_b, S)` complex, the eigenvalues of `∂F/∂s` (decreasing `|λ|`).
    - `n_unstable`: list of `B` arrays `(n_b,)`, the number of `|λ| > 1`: 0 where the point is stable.
    - `ended`: `(B,)` str, how the branch ended: "left the path" (`p` left `[0, 1]`: followed to the end, or
      back to the start after a fold), "step too small" (given up: a singular point the corrector could not
      pass), or "out of steps" (`max_steps` attempts).
    - `events`: list of dicts, one per bifurcation: `member`, `branch`, `kind` (one of "saddle-node",
      "hopf", "flip", "branch point"), `param` (where along the path), `input` `(M,)`, `state` `(S,)`,
      `output` `(O,)`, `stable_lost` (a stable point disappears there, coming along the branch).
    - `label`: what `p` means, for tables and figures (e.g. "pulse amplitude (× the task's)").
    """

    member: np.ndarray
    start: np.ndarray
    end: np.ndarray
    param: list
    states: list
    outputs: list
    eigvals: list
    n_unstable: list
    ended: np.ndarray
    events: list
    label: str = "p"

    def __len__(self) -> int:
        return int(self.member.shape[0])

    def events_of(self, kind: str | None = None, member: int | None = None) -> list[dict]:
        """The events of one `kind` (or all) of one `member` (or all), in order of `param`."""
        if kind is not None and kind not in _EVENTS:
            raise ValueError(f"`kind` must be one of {', '.join(_EVENTS)} or None, got {kind!r}.")
        out = [
            e for e in self.events if (kind is None or e["kind"] == kind) and (member is None or e["member"] == member)
        ]
        return sorted(out, key=lambda e: e["param"])

    def first_loss(self, branch: int) -> float | None:
        """The `param` of the first saddle-node on `branch` where its stable point disappears, or None (the
        stable point exists along the whole path)."""
        for e in sorted((e for e in self.events if e["branch"] == branch), key=lambda e: e["param"]):
            if e["kind"] == "saddle-node" and e["stable_lost"]:
                return float(e["param"])
        return None

    def _table(self) -> tuple[str, list[str], list[list[str]]]:
        header = ["member", "branches", "followed to the end", "saddle-nodes at p", "stable lost at p", "Hopf at p"]
        body = []
        for k in np.unique(self.member):
            mine = np.flatnonzero(self.member == k)
            ev = self.events_of(member=int(k))

            def at(kind, lost=None):
                vals = [
                    f"{e['param']:.4g}" for e in ev if e["kind"] == kind and (lost is None or e["stable_lost"] == lost)
                ]
                return ", ".join(vals) or "–"

            body.append(
                [
                    str(int(k)),
                    str(mine.size),
                    str(int(np.sum(self.ended[mine] == "left the path"))),
                    at("saddle-node"),
                    at("saddle-node", True),
                    at("hopf"),
                ]
            )
        return f"Continuation along {self.label}: {len(self)} branches, {len(self.events)} bifurcations", header, body

    def _repr_html_(self) -> str:
        _, header, body = self._table()  # a shorter title than `repr`'s
        return html_table(html.escape(f"Continuation along {self.label}"), header, body)

    def to_dict(self) -> dict:
        """The branches' ends and events (JSON-able; the points stay in the object)."""

        def event(e):
            return {
                **e,
                "input": np.asarray(e["input"]).tolist(),
                "state": np.asarray(e["state"]).tolist(),
                "output": np.asarray(e["output"]).tolist(),
            }

        return jsonable(
            {
                "label": self.label,
                "member": self.member.tolist(),
                "ended": self.ended.tolist(),
                "points": [int(p.size) for p in self.param],
                "events": [event(e) for e in self.events],
            }
        )


def _check_path_end(name: str, value, k: int, m: int) -> np.ndarray:
    arr = np.asarray(value, np.float64)
    if arr.shape == (m,):
        arr = np.broadcast_to(arr, (k, m))
    if arr.shape != (k, m) or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"`{name}` must be a finite input of shape ({m},) or ({k}, {m}) (one per member), got shape {arr.shape}."
        )
    return arr


def follow_fixed_points(
    ensemble,
    fixed_points: FixedPoints,
    end,
    *,
    start=None,
    points=None,
    label: str = "p",
    max_steps: int = 400,
    ds: float = 0.02,
    ds_min: float = 1e-6,
    ds_max: float = 0.05,
    newton_steps: int = 6,
    tol: float | None = None,
) -> Continuation:
    """Follow fixed points along the straight input path from `start` to `end` (module docstring).

    **Arguments:**

    - `ensemble`: the stacked ensemble (any cell).
    - `fixed_points`: its `FixedPoints`; each point starts a branch (at `p = 0`).
    - `end`: the input at `p = 1`, `(M,)` or `(K, M)` per member.
    - `start`: the input at `p = 0` (default: the input each member's points were found at,
      `fixed_points.inputs`), `(M,)` or `(K, M)`. The points should be fixed points at it.
    - `points`: which points start branches (a mask or indices; default all the exact ones).
    - `label`: what `p` means (tables, figures).
    - `max_steps`: continuation attempts per branch (>= 1); `ds`, `ds_min`, `ds_max`: the first, least and
      largest step length along the branch, in the units of `(s, p)` (0 < ds_min <= ds <= ds_max).
    - `newton_steps`: corrector iterations per step (>= 1).
    - `tol`: the residual `‖F(s, u(p)) − s‖` a point must reach (default `1e-5 √S` in float32, `1e-10 √S` in
      float64).

    **Returns:** a `Continuation`.
    """
    ensemble = as_ensemble(ensemble)
    if not isinstance(fixed_points, FixedPoints):
        raise TypeError(f"`fixed_points` must be a FixedPoints, got {type(fixed_points).__name__}.")
    k, m, n = ensemble.W_out.shape[0], ensemble.n_inputs, ensemble.state_size
    if fixed_points.n_members != k or fixed_points.points.shape[-1] != n:
        raise ValueError(
            f"`fixed_points` has {fixed_points.n_members} members of state size "
            f"{fixed_points.points.shape[-1]}; the ensemble has {k} of {n}."
        )
    end = _check_path_end("end", end, k, m)
    start = np.asarray(fixed_points.inputs, np.float64) if start is None else _check_path_end("start", start, k, m)
    rows = np.flatnonzero(fixed_points.exact) if points is None else np.arange(len(fixed_points))[np.asarray(points)]
    member = fixed_points.member[rows].astype(int)
    return follow_states(
        ensemble,
        member,
        fixed_points.points[rows],
        start[member],
        end[member],
        label=label,
        max_steps=max_steps,
        ds=ds,
        ds_min=ds_min,
        ds_max=ds_max,
        newton_steps=newton_steps,
        tol=tol,
    )


def follow_states(
    ensemble,
    member,
    states,
    start,
    end,
    *,
    label: str = "p",
    max_steps: int = 400,
    ds: float = 0.02,
    ds_min: float = 1e-6,
    ds_max: float = 0.05,
    newton_steps: int = 6,
    tol: float | None = None,
    refine: str = "fine",
) -> Continuation:
    """`follow_fixed_points` from arrays, one branch per row: `member` `(B,)`, the fixed points `states`
    `(B, S)` at the inputs `start` `(B, M)`, each followed to its own `end` `(B, M)`; the other arguments as
    there. `refine`: how every saddle-node is located again: `"fine"` (default) by a fine pass of 64 steps of a
    fiftieth of the arclength around the turn (a second compiled continuation); `"shared"` by a fine pass that
    reuses the first pass's compiled continuation (`max_steps` steps of `1/(max_steps − 5)` of that arclength, at
    least a fiftieth; the folds' batch padded to the branches': cheaper where the compile dominates, slightly
    less accurate); `"none"`: the coarse estimate only, the vertex of the parabola through the three points
    around the turn (its error grows with the step length)."""
    if refine not in ("fine", "shared", "none"):
        raise ValueError(f"`refine` must be 'fine', 'shared' or 'none', got {refine!r}.")
    ensemble = as_ensemble(ensemble)
    n = ensemble.state_size
    check_int("max_steps", max_steps, 1)
    check_int("newton_steps", newton_steps, 1)
    for name, v in (("ds", ds), ("ds_min", ds_min), ("ds_max", ds_max)):
        check_positive(name, v)
    if not ds_min <= ds <= ds_max:
        raise ValueError(f"the step lengths must satisfy ds_min <= ds <= ds_max, got {ds_min}, {ds}, {ds_max}.")
    member = np.asarray(member, int).reshape(-1)
    states = np.asarray(states, np.float64).reshape(member.size, n)
    start = np.asarray(start, np.float64).reshape(member.size, ensemble.n_inputs)
    end = np.asarray(end, np.float64).reshape(member.size, ensemble.n_inputs)
    dtype = ensemble.W_rec.dtype
    if tol is None:
        tol = (1e-10 if dtype == jnp.float64 else 1e-5) * float(np.sqrt(n))
    if member.size == 0:
        return Continuation(
            member=member,
            start=start,
            end=end,
            param=[],
            states=[],
            outputs=[],
            eigvals=[],
            n_unstable=[],
            ended=np.zeros(0, "<U16"),
            events=[],
            label=label,
        )
    du = end - start
    zs, oks, y0, ended = _follow(
        _host_rows(ensemble, member),
        jnp.asarray(states, dtype),
        jnp.asarray(start, dtype),
        jnp.asarray(du, dtype),
        ds,
        ds_min,
        ds_max,
        tol,
        max_steps=int(max_steps),
        newton_steps=int(newton_steps),
    )
    zs, oks, y0 = np.asarray(zs, np.float64), np.asarray(oks), np.asarray(y0, np.float64)
    branches = [np.concatenate([y0[b][None], zs[b][oks[b]]], 0) for b in range(member.size)]
    sizes = [br.shape[0] for br in branches]
    flat = np.concatenate(branches, 0)
    which = np.repeat(np.arange(member.size), sizes)
    eigvals = _eigvals(ensemble, member[which], flat[:, :n], start[which] + flat[:, n:] * du[which])
    cuts = np.cumsum(sizes)[:-1]
    param = np.split(flat[:, n], cuts)
    states = np.split(flat[:, :n], cuts)
    eig = np.split(eigvals, cuts)
    unstable = [np.sum(np.abs(e) > 1.0, axis=-1) for e in eig]
    outputs = np.split(_readouts(ensemble, member[which], flat[:, :n]), cuts)
    events = []
    for b in range(member.size):
        events += _events(b, int(member[b]), param[b], states[b], eig[b], outputs[b], start[b], du[b])
    if refine == "fine":
        _refine_folds(ensemble, member, events, param, states, start, du, dtype, tol, newton_steps)
    elif refine == "shared":
        _refine_folds(
            ensemble,
            member,
            events,
            param,
            states,
            start,
            du,
            dtype,
            tol,
            newton_steps,
            steps=int(max_steps),
            fraction=min(50.0, max(int(max_steps) - 5, 2)),
            pad_to=member.size,
        )
    names = np.array(["out of steps", "left the path", "step too small"])
    return Continuation(
        member=member,
        start=start,
        end=end,
        param=param,
        states=states,
        outputs=outputs,
        eigvals=eig,
        n_unstable=unstable,
        ended=names[np.asarray(ended)],
        events=events,
        label=label,
    )


_FINE_STEPS = 64  # attempts of the fine pass over a fold


def _refine_folds(
    ensemble,
    member,
    events,
    param,
    states,
    starts,
    du,
    dtype,
    tol,
    newton_steps,
    *,
    steps: int = _FINE_STEPS,
    fraction: float = 50.0,
    pad_to: int | None = None,
) -> None:
    """Locate every saddle-node again from a fine continuation (`steps` steps of a `fraction`-th of the
    arclength around the turn) started at the point before it, all folds at once; the event's `param`,
    `input`, `state` and `output` are replaced by the vertex of the parabola through the fine points around
    the turn (error of order the fine step squared). `pad_to`: the batch the folds are padded to (repeating the
    first), so that a first pass of that batch and `steps` shares its compiled continuation."""
    folds = [e for e in events if e["kind"] == "saddle-node"]
    if not folds:
        return
    rows, s0, u0, dus, spans, signs = [], [], [], [], [], []
    for e in folds:
        b, p, st = e["branch"], param[e["branch"]], states[e["branch"]]
        i = int(np.argmin(np.abs(p - e["param"]) + np.linalg.norm(st - e["state"], axis=1)))
        i = min(max(i, 1), p.size - 2)
        sign = 1.0 if p[i] >= p[i - 1] else -1.0  # the fine pass starts moving p the way the branch came
        y = np.concatenate([st, p[:, None]], 1)
        spans.append(np.linalg.norm(y[i + 1] - y[i]) + np.linalg.norm(y[i] - y[i - 1]))
        rows.append(b)
        s0.append(st[i - 1])
        u0.append(starts[b] + p[i - 1] * du[b])
        dus.append(sign * du[b])
        signs.append((p[i - 1], sign))
    if pad_to is not None and len(rows) < pad_to:  # the first pass's shapes: its compiled continuation reused
        extra = pad_to - len(rows)
        rows, s0, u0, dus = rows + rows[:1] * extra, s0 + s0[:1] * extra, u0 + u0[:1] * extra, dus + dus[:1] * extra
    branch_rows = np.asarray(rows)
    fine_ds = np.asarray(spans) / fraction
    zs, oks, y0, _ = _follow(
        _host_rows(ensemble, member[branch_rows]),
        jnp.asarray(np.asarray(s0), dtype),
        jnp.asarray(np.asarray(u0), dtype),
        jnp.asarray(np.asarray(dus), dtype),
        float(np.min(fine_ds)),
        float(np.min(fine_ds)) * 1e-3,
        float(np.max(fine_ds)),
        tol,
        max_steps=int(steps),
        newton_steps=int(newton_steps),
    )
    zs, oks, y0 = np.asarray(zs, np.float64), np.asarray(oks), np.asarray(y0, np.float64)
    n = states[0].shape[1]
    for j, e in enumerate(folds):
        y = np.concatenate([y0[j][None], zs[j][oks[j]]], 0)
        p = y[:, n]
        turn = [i for i in range(1, p.size - 1) if (p[i] - p[i - 1]) * (p[i + 1] - p[i]) < 0]
        if not turn:
            continue  # the fine pass did not reach the turn: keep the coarse estimate
        i = turn[0]
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(y[i - 1 : i + 2], axis=0), axis=1))])
        x = _vertex(arc, p[i - 1 : i + 2]) - arc[1]
        w = np.polyfit(arc - arc[1], y[i - 1 : i + 2], 2)
        at = w[0] * x * x + w[1] * x + w[2]
        p0, sign = signs[j]
        par = p0 + sign * at[n]
        b = e["branch"]
        e.update(
            param=float(par),
            input=starts[b] + par * du[b],
            state=at[:n],
            output=_readouts(ensemble, np.asarray([member[b]]), at[None, :n])[0],
        )


def _host_rows(ensemble, member: np.ndarray):
    """The `member` rows of a stacked ensemble, gathered on the host (`_rows` without an eager JAX gather, which
    compiles once per leaf and number of rows)."""
    member = np.asarray(member, int)
    if member.tolist() == list(range(ensemble.W_out.shape[0])):
        return ensemble
    return jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)[member]), ensemble)


def _eigvals(ensemble, member: np.ndarray, states: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """`(P, S)` the eigenvalues of `∂F/∂s` at each state with its member's network and input, sorted by decreasing
    `|λ|` (float64 on the host; no eigenvectors: the events need only the eigenvalues)."""
    a, _, _ = _jacobians(
        _host_rows(ensemble, member),
        jnp.asarray(states, ensemble.W_rec.dtype),
        jnp.asarray(inputs, ensemble.W_rec.dtype),
    )
    lam = np.linalg.eigvals(np.asarray(a, np.float64))
    return np.take_along_axis(lam, np.argsort(-np.abs(lam), axis=-1, kind="stable"), -1)


def _readouts(ensemble, member: np.ndarray, states: np.ndarray) -> np.ndarray:
    """`(P, O)` the readout of each state with its member's weights."""
    w = np.asarray(ensemble.W_out, np.float64)[member]
    b = np.asarray(ensemble.b_out, np.float64).reshape(ensemble.W_out.shape[0], -1)[member]
    h = states[:, : ensemble.n_units]
    return np.einsum("poi,pi->po", w, h) + b


def _vertex(x: np.ndarray, y: np.ndarray) -> float:
    """The `x` of the vertex of the parabola through three points `(x, y)` (the middle one if degenerate)."""
    a = np.polyfit(x - x[1], y, 2)
    return float(x[1] - a[1] / (2 * a[0])) if a[0] != 0 else float(x[1])


def _events(b, member, p, s, eig, out, u0, du) -> list[dict]:
    """The bifurcations along one branch (module docstring)."""
    if p.size < 3:
        return []
    y = np.concatenate([s, p[:, None]], 1)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(y, axis=0), axis=1))])
    unstable = np.sum(np.abs(eig) > 1.0, axis=-1)
    real = np.abs(eig.imag) <= 1e-9 * np.maximum(1.0, np.abs(eig))
    above_one = np.sum(real & (eig.real > 1.0), axis=-1)
    below_minus = np.sum(real & (eig.real < -1.0), axis=-1)
    cplx_out = np.sum(~real & (np.abs(eig) > 1.0), axis=-1)
    dp = np.diff(p)
    found = []

    def event(kind, i, at_arc, stable_lost):
        j = min(max(i, 1), p.size - 2)  # three points around i, for the interpolation of the state
        w = (
            np.polyfit(
                arc[j - 1 : j + 2] - arc[j],
                np.concatenate([p[j - 1 : j + 2, None], s[j - 1 : j + 2], out[j - 1 : j + 2]], 1),
                2,
            )
            if kind == "saddle-node"
            else None
        )
        if w is not None:
            x = at_arc - arc[j]
            vals = w[0] * x * x + w[1] * x + w[2]
            par, st, o = vals[0], vals[1 : 1 + s.shape[1]], vals[1 + s.shape[1] :]
        else:  # linear between i and i + 1
            f = 0.0 if arc[i + 1] == arc[i] else (at_arc - arc[i]) / (arc[i + 1] - arc[i])
            par, st, o = p[i] + f * (p[i + 1] - p[i]), s[i] + f * (s[i + 1] - s[i]), out[i] + f * (out[i + 1] - out[i])
        found.append(
            {
                "member": member,
                "branch": b,
                "kind": kind,
                "param": float(par),
                "input": u0 + par * du,
                "state": st,
                "output": o,
                "stable_lost": bool(stable_lost),
            }
        )

    folds = set()
    for i in range(1, p.size - 1):
        if dp[i - 1] * dp[i] < 0:  # p turns back at point i
            folds.add(i)
            event("saddle-node", i, _vertex(arc[i - 1 : i + 2], p[i - 1 : i + 2]), unstable[i - 1] == 0)
    for i in range(p.size - 1):
        if cplx_out[i] != cplx_out[i + 1]:
            m0 = np.max(np.where(~real[i], np.abs(eig[i]), 0.0))
            m1 = np.max(np.where(~real[i + 1], np.abs(eig[i + 1]), 0.0))
            f = 0.5 if m1 == m0 else float(np.clip((1.0 - m0) / (m1 - m0), 0.0, 1.0))
            event("hopf", i, arc[i] + f * (arc[i + 1] - arc[i]), unstable[i] == 0 and unstable[i + 1] > 0)
        if below_minus[i] != below_minus[i + 1]:
            event("flip", i, 0.5 * (arc[i] + arc[i + 1]), unstable[i] == 0 and unstable[i + 1] > 0)
        if above_one[i] != above_one[i + 1] and not folds & {i, i + 1}:
            event("branch point", i, 0.5 * (arc[i] + arc[i + 1]), unstable[i] == 0 and unstable[i + 1] > 0)
    return sorted(found, key=lambda e: e["param"])


__all__ = ["Continuation", "follow_fixed_points", "follow_states"]
