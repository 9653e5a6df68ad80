"""Comparing networks across ensembles, cells and activations: representational geometry against the
topology of the fixed points (Maheswaranathan, Williams, Golub, Ganguli & Sussillo 2019).

`compare_ensembles` takes any number of stacked ensembles (CTRNN, GRU, LSTM, UGRNN; any sizes) trained on
the same task and compares every member with every other:

- **geometry**: `pairwise_svcca`, `pairwise_cka` and the Procrustes shape metric
  (`pairwise_procrustes_distance`) of the hidden activity `h` on the task's test set;
- **dynamics**: `pairwise_dsa`, Hankel-DMD operators of the test-set trajectories compared up to an
  orthogonal similarity (in the spirit of DSA, Ostrow et al. 2023);
- **topology**: each member's fixed points at the task's constant input (`find_fixed_points` with
  restarts, then `complete_saddles`), its `topology_graph`, and `pairwise_graph_distances` (labelled,
  spectrum and linearization);
- **embeddings**: classical MDS (`classical_mds`) of the SVCCA and labelled-topology matrices in 2-D
  (networks without memory states, whose topology distances are undefined, are left out of the latter).

The result is a `Comparison` (data): `print` it or show it in a notebook for the headline numbers,
`figures()` for the Figures, `to_dict()` for the content of `comparison.json`, and `write(out_dir)` for
`comparison.json`, the figures and `report.md`; `ctrnn-jax compare` runs both on run folders.
"""

import dataclasses
import html
import math
import numbers
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int
from .._files import atomic_write, jsonable, write_json
from .._results import Result, html_table
from ..dynamics._behaviour import memory_check
from ..dynamics._config import FixedPointConfig
from ..dynamics._cube import has_memory_states
from ..dynamics._fixed_points import as_ensemble
from ..dynamics._limits import check_fixed_point_memory
from ..dynamics._stage import fixed_point_stage
from ..dynamics._switching import pulse_switching
from ..dynamics._topology import pairwise_graph_distances, topology_graph
from ..tasks._flipflop import FlipFlopConfig
from ..tasks._task import task_hold_steps
from ..training._evaluate import ensemble_states
from ._analysis import pairwise_cka, pairwise_svcca
from ._similarity import pairwise_dsa, pairwise_procrustes_distance

REPORT = "report.md"
# the distance matrices of a comparison, in the order of its tables (`cka`, a similarity, is added as 1 − cka)
MEASURES = ("svcca", "procrustes", "dynamics", "topology", "topology_spectrum", "linearization")


def _complete_members(d: np.ndarray) -> np.ndarray:
    """`(P,)` bool: the members kept for an embedding. Members with a NaN distance are dropped one at a
    time, the one with the most NaN entries in its row first (ties: the lowest index), until the distances
    among those left are all finite; a member whose diagonal is NaN (undefined, e.g. a graph without
    nodes) goes first."""
    keep = np.ones(d.shape[0], bool)
    bad = ~np.isfinite(d)
    while keep.any():
        sub = bad[np.ix_(keep, keep)]
        if not sub.any():
            break
        counts = np.zeros(d.shape[0], int)
        counts[keep] = sub.sum(axis=1) + d.shape[0] * np.diag(sub)
        keep[int(np.argmax(counts))] = False
    return keep


def classical_mds(distances, dim: int = 2) -> np.ndarray:
    """Classical (Torgerson) multidimensional scaling of a `(P, P)` symmetric distance matrix.

    `B = −½ J D² J` with the centring matrix `J`; the coordinates are the top-`dim` eigenvectors of `B`
    scaled by the square roots of their (non-negative) eigenvalues. Euclidean distances are reproduced
    exactly (up to rotation and reflection).

    Members with undefined (NaN) distances are **excluded**, not imputed: they are dropped one at a time,
    the one with the most NaN entries first (a NaN diagonal, e.g. a topology graph without nodes, counts
    as undefined throughout), until the distances among the rest are finite; the rest are embedded and
    the excluded members' coordinates are NaN.

    **Returns:** `(P, dim)` coordinates (zero columns where `B` has fewer positive eigenvalues; NaN rows
    for the excluded members).
    """
    d = np.asarray(distances, np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1] or d.shape[0] < 1:
        raise ValueError(f"`distances` must be a square (P, P) matrix with P >= 1, got shape {d.shape}.")
    dim = check_int("dim", dim, 1)
    d = 0.5 * (d + d.T)
    keep = _complete_members(d)
    out = np.full((d.shape[0], dim), np.nan)
    if not keep.any():
        return out
    d = d[np.ix_(keep, keep)]
    np.fill_diagonal(d, 0.0)
    p = d.shape[0]
    j = np.eye(p) - 1.0 / p
    b = -0.5 * j @ (d * d) @ j
    vals, vecs = np.linalg.eigh(b)
    order = np.argsort(vals)[::-1][:dim]
    vals, vecs = np.clip(vals[order], 0.0, None), vecs[:, order]
    coords = vecs * np.sqrt(vals)[None, :]
    out[keep] = np.pad(coords, ((0, 0), (0, dim - coords.shape[1])))
    return out


def _cell(ensemble) -> str:
    return ensemble.cell


def compare_ensembles(
    ensembles,
    *,
    names=None,
    task=None,
    success=None,
    config: FixedPointConfig | None = None,
    svcca_k: int | None = None,
    topology_options: dict | None = None,
    dsa_options: dict | None = None,
    log=None,
) -> "Comparison":
    """Compare every member of every ensemble with every other: geometry and fixed-point topology.

    **Arguments:**

    - `ensembles`: a list of `E` stacked ensembles (any cell, any `N`), all with the task's `M` inputs
      and `O` outputs; `P` members in all.
    - `names`: `E` names (e.g. the run folders); default `run0`, `run1`, ...
    - `task`: the task object (its `test_set`, `sample`, `fixed_point_inputs`); default the 3-bit flip-flop.
    - `success`: `None` or `E` boolean arrays `(K_e,)`, recorded per member (e.g. from `eval.json`).
    - `config`: the `FixedPointConfig` of every ensemble's fixed points at the task's first constant input
      (`fixed_point_stage`); default `FixedPointConfig(n_candidates=256)`.
    - `svcca_k`: components per network for SVCCA (`None`: 99% of the variance).
    - `topology_options`: keyword arguments of `topology_graph` (`eps`, `max_steps`, `resolution`, ...); by
      default its nodes are the memory states labelled by the task's `memory_readouts()` and its branches
      follow the task's longest hold (`readouts`, `hold_steps`).
    - `dsa_options`: keyword arguments of `pairwise_dsa` (`n_delays`, `rank`, `iters`, ...).
    - `log`: `None` or a function taking a progress message.

    **Returns:** a `Comparison`: `members` (`P` dicts: `run`, `member`, `cell`, `activation`, `units`,
    `success`, `memory_check`), the `(P, P)` matrices `svcca`, `cka`, `procrustes` (angular shape metric),
    `dynamics` (`pairwise_dsa`), `topology` (labelled), `topology_spectrum`, `linearization` (the topology
    ones NaN for a network without memory states, i.e. no node in its graph), the `(P, 2)` embeddings
    `mds_geometry` and `mds_topology` (NaN rows for the networks left out), `graphs` (`P`
    `MemberGraph`s), `fixed_points` (one `FixedPoints` per ensemble) and, for a task with memory states,
    `memory_check` (one `MemoryCheck` per ensemble: the behavioural check, no finder; each member's
    verdict is also in its `members` dict), else None. `print` it for the headline numbers,
    `.figures()` for the Figures, `.write(out_dir)` for the files.
    """
    if isinstance(ensembles, (str, bytes)) or not isinstance(ensembles, (list, tuple)) or not ensembles:
        raise ValueError("`ensembles` must be a non-empty list of stacked ensembles.")
    ensembles = [as_ensemble(e) for e in ensembles]
    task = FlipFlopConfig() if task is None else task
    names = [f"run{i}" for i in range(len(ensembles))] if names is None else [str(n) for n in names]
    if len(names) != len(ensembles):
        raise ValueError(f"`names` must have one name per ensemble ({len(ensembles)}), got {len(names)}.")
    for name, e in zip(names, ensembles):
        m, o = e.W_in.shape[-1], e.W_out.shape[-2]
        if (m, o) != (task.n_inputs, task.n_outputs):
            raise ValueError(
                f"{name}: the ensemble has M = {m} inputs and O = {o} outputs; the {task.name} task "
                f"has {task.n_inputs} and {task.n_outputs}."
            )
    if success is not None and (
        len(success) != len(ensembles) or any(np.shape(s) != (e.W_out.shape[0],) for s, e in zip(success, ensembles))
    ):
        raise ValueError("`success` must hold one (K,) boolean array per ensemble.")
    config = FixedPointConfig(n_candidates=256) if config is None else config
    if not isinstance(config, FixedPointConfig):
        raise TypeError(f"`config` must be a FixedPointConfig, got {type(config).__name__}.")
    if dsa_options is not None and not isinstance(dsa_options, dict):
        raise TypeError(
            f"`dsa_options` must be None or a dict of `pairwise_dsa` arguments, got {type(dsa_options).__name__}."
        )
    log = log or (lambda message: None)
    for ens in ensembles:  # every search fits in memory: checked before any work
        check_fixed_point_memory(ens.W_out.shape[0], ens.state_size, config, trials=config.n_trials, length=task.length)
    first_input = np.asarray(task.fixed_point_inputs(), np.float32)[0]

    inputs = jnp.asarray(task.test_set()[0])
    members, activity, trajectories, graphs, fixed_points, checks = [], [], [], [], [], []
    amplitudes: list[np.ndarray] = []  # (K, M) per ensemble: the median switching amplitude per channel
    for i, (name, ens) in enumerate(zip(names, ensembles)):
        k = ens.W_out.shape[0]
        log(f"{name}: {k} {_cell(ens)} members, N = {ens.W_out.shape[-1]}: activity and fixed points ...")
        states = np.asarray(ensemble_states(ens, inputs), np.float64)  # (K, B, T, N)
        activity += [s.reshape(-1, s.shape[-1]) for s in states]
        trajectories += list(states)  # (B, T, N) per member, trials kept apart for the delay embedding
        fp = fixed_point_stage(ens, task, inputs=first_input, config=dataclasses.replace(config, seed=config.seed + i))[
            0
        ]
        fixed_points.append(fp)
        over = {
            "readouts": task.memory_readouts() if has_memory_states(task) else None,  # nodes: memory states
            "hold_steps": task_hold_steps(task),
            **(topology_options or {}),
        }
        graphs += list(topology_graph(ens, fp, **over).graphs)
        check = memory_check(ens, task) if has_memory_states(task) else None  # the finder-free verdicts
        checks.append(check)
        if has_memory_states(task):  # c* by continuation, as `analyze` computes it
            from ._analyze import SWITCHING_CONTINUATION

            sw = pulse_switching(ens, task, fp, simulate=False, **SWITCHING_CONTINUATION)
            amplitudes.append(np.minimum(sw.channel_summary(k)["median"], sw.max_scale))
        for kk in range(k):
            members.append(
                {
                    "run": name,
                    "member": kk,
                    "cell": _cell(ens),
                    "activation": ens.activation,
                    "units": int(ens.W_out.shape[-1]),
                    "success": None if success is None else bool(np.asarray(success[i])[kk]),
                    "memory_check": None if check is None else str(check.verdict[kk]),
                }
            )
    log(f"{len(members)} members: distance matrices ...")
    svcca = pairwise_svcca(activity, k=svcca_k)
    topology = pairwise_graph_distances(graphs, "labelled")
    return Comparison(
        members=members,
        svcca=svcca,
        cka=pairwise_cka(activity),
        procrustes=pairwise_procrustes_distance(activity),
        dynamics=pairwise_dsa(trajectories, **(dsa_options or {})),
        topology=topology,
        topology_spectrum=pairwise_graph_distances(graphs, "spectrum"),
        linearization=pairwise_graph_distances(graphs, "linearization"),
        mds_geometry=classical_mds(svcca),
        mds_topology=classical_mds(topology),
        graphs=graphs,
        fixed_points=fixed_points,
        memory_check=checks if any(c is not None for c in checks) else None,
        switching=pairwise_switching(np.concatenate(amplitudes)) if amplitudes else None,
    )


def pairwise_switching(amplitudes) -> np.ndarray:
    """`(P, P)` the switching-amplitude distance: the mean over input channels of `|c_a − c_b|`, with `c` `(P, M)`
    each network's median switching amplitude per channel (`Switching.channel_summary`, in units of the channel's
    pulse amplitude, capped at the path's end), over the channels where both are defined; NaN for a network
    without memory states (no amplitude at all). 0 between a network and itself."""
    c = np.asarray(amplitudes, np.float64)
    if c.ndim != 2:
        raise ValueError(f"`amplitudes` must be (P, M), got shape {c.shape}.")
    diff = np.abs(c[:, None, :] - c[None, :, :])
    both = np.isfinite(diff)
    total = np.where(both, diff, 0.0).sum(axis=-1)
    n = both.sum(axis=-1)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def within_between(distances, groups) -> dict:
    """Mean distance between members of the same group and of different groups, over the off-diagonal
    pairs whose distance is defined (NaN pairs are excluded, and counted).

    **Returns:** `{"within": float, "between": float, "ratio": between / within, "n_pairs": int,
    "excluded_pairs": int, "excluded_members": int}`: the unordered off-diagonal pairs, those with a NaN
    distance, and the members without any defined distance to another member (e.g. networks without
    memory states in a topology distance).
    """
    d = np.asarray(distances, np.float64)
    g = np.asarray(groups)
    if d.ndim != 2 or d.shape[0] != d.shape[1] or g.shape != (d.shape[0],):
        raise ValueError(f"`distances` must be (P, P) and `groups` (P,), got {d.shape} and {g.shape}.")
    same = g[:, None] == g[None, :]
    off = ~np.eye(len(g), dtype=bool)
    within = d[same & off]
    between = d[~same]
    w = float(np.nanmean(within)) if np.isfinite(within).any() else math.nan
    b = float(np.nanmean(between)) if np.isfinite(between).any() else math.nan
    upper = np.triu(off)
    finite = np.isfinite(d) & off
    return {
        "within": w,
        "between": b,
        "ratio": b / w if w > 0 else math.nan,
        "n_pairs": int(upper.sum()),
        "excluded_pairs": int((upper & ~finite).sum()),
        "excluded_members": int(np.sum(~finite.any(axis=1))) if len(g) > 1 else 0,
    }


# the figures of a comparison: the file names `write` uses, in the order of the report
FIGURES = ("mds_by_cell", "mds_by_run", "distances", "topology_graphs")


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Comparison(Result):
    """The result of `compare_ensembles` for `P` networks (members of `E` ensembles), as NumPy arrays.

    **Fields:**

    - `members`: `P` dicts: `run`, `member`, `cell`, `activation`, `units`, `success` (None when unknown)
      and `memory_check` (the member's verdict, or None).
    - `svcca`, `cka`, `procrustes`, `dynamics`, `topology`, `topology_spectrum`, `linearization`: the
      `(P, P)` matrices (`MEASURES`, and `cka`, a similarity): SVCCA distance, linear CKA, the angular
      Procrustes shape metric, `pairwise_dsa`, and the labelled, spectrum and linearization distances of
      the topology graphs (NaN for a network without memory states, i.e. no node in its graph).
    - `mds_geometry`, `mds_topology`: `(P, 2)` classical MDS embeddings of `svcca` and `topology` (NaN rows
      for the networks left out).
    - `graphs`: `P` `MemberGraph`s.
    - `fixed_points`: one `FixedPoints` per ensemble, or None.
    - `memory_check`: one `MemoryCheck` per ensemble (a task with memory states), or None.
    - `switching`: `(P, P)` `pairwise_switching`, the distance of the networks' switching amplitudes (the median
      `c*` per input channel, `pulse_switching` by continuation), for a task with memory states; else None.

    `print` it (or show it in a notebook) for what was compared and the headline numbers; `figures()` for
    the Figures, `to_dict()` for the content of `comparison.json`, `write(out_dir)` for the files.
    """

    members: list
    svcca: np.ndarray
    cka: np.ndarray
    procrustes: np.ndarray
    dynamics: np.ndarray
    topology: np.ndarray
    topology_spectrum: np.ndarray
    linearization: np.ndarray
    mds_geometry: np.ndarray
    mds_topology: np.ndarray
    graphs: list
    fixed_points: list | None = None
    memory_check: list | None = None
    switching: np.ndarray | None = None

    @property
    def n_networks(self) -> int:
        """`P`, the number of networks compared."""
        return len(self.members)

    @property
    def runs(self) -> list[str]:
        """The names of the ensembles compared, in order."""
        return list(dict.fromkeys(m["run"] for m in self.members))

    def groups(self, key: str) -> list[str]:
        """Each network's group: `key` `"run"`, `"cell"` or `"cell_activation"` (`cell/activation`)."""
        if key not in ("run", "cell", "cell_activation"):
            raise ValueError(f"`key` must be 'run', 'cell' or 'cell_activation', got {key!r}.")
        return [f"{m['cell']}/{m['activation']}" if key == "cell_activation" else str(m[key]) for m in self.members]

    def within_between(self) -> dict:
        """`{"run": {measure: within_between(...)}, "cell_activation": {...}}`: the mean distance within and
        between the groups of every measure (and `1 - cka`), as in `comparison.json`."""
        out = {}
        for key in ("run", "cell_activation"):
            groups = self.groups(key)
            table = {name: within_between(getattr(self, name), groups) for name in MEASURES}
            table["1 - cka"] = within_between(1.0 - np.asarray(self.cka), groups)  # CKA is a similarity
            if self.switching is not None:
                table["switching"] = within_between(self.switching, groups)
            out[key] = table
        return out

    # ------------------------------------------------------------------------------------------------
    # views
    # ------------------------------------------------------------------------------------------------

    def _runs_line(self) -> str:
        parts = []
        for run in self.runs:
            mine = [m for m in self.members if m["run"] == run]
            kinds = ", ".join(
                f"{n} {kind}"
                for kind, n in _counts(f"{m['cell']}/{m['activation']} N={m['units']}" for m in mine).items()
            )
            parts.append(f"{run} ({kinds})")
        return f"{self.n_networks} networks from {len(self.runs)} run(s): " + "; ".join(parts)

    def _status_line(self) -> str:
        solved = [m["success"] for m in self.members if m.get("success") is not None]
        verdicts = [m["memory_check"] for m in self.members if m.get("memory_check") is not None]
        info = _no_memory_states(self.graphs)
        parts = [
            f"solved: {sum(map(bool, solved))} of {len(solved)}" if solved else "solved: –",
            "memory check: " + (", ".join(f"{n} {v}" for v, n in _counts(verdicts).items()) or "–"),
            f"no memory states: {info['count']} of {info['of']}",
        ]
        return "; ".join(parts)

    def _table(self) -> tuple[str, list[str], list[list[str]]]:
        """The headline table of `repr`: between / within ratios of the main measures (`_repr_html_` shows
        every measure's within and between)."""
        tables = self.within_between()
        names = ("svcca", "procrustes", "dynamics", "topology", "1 - cka")  # the headline measures
        header = ["between / within", *names]
        body = [
            [f"by {label}", *(_fmt(tables[key][name]["ratio"]) for name in names)]
            for key, label in (("run", "run"), ("cell_activation", "cell/activation"))
        ]
        return f"Comparison: {self._runs_line()}\n  {self._status_line()}", header, body

    def _repr_html_(self) -> str:
        header = ["grouping", "measure", "within", "between", "between / within", "excluded pairs"]
        body = [
            [
                grouping,
                name,
                _fmt(row["within"]),
                _fmt(row["between"]),
                _fmt(row["ratio"]),
                f"{row['excluded_pairs']} of {row['n_pairs']}",
            ]
            for grouping, table in self.within_between().items()
            for name, row in table.items()
        ]
        return html_table(
            f"<b>Comparison</b>: {html.escape(self._runs_line())}<br>{html.escape(self._status_line())}", header, body
        )

    def figures(self, *, n_graphs: int = 4) -> dict:
        """The figures as `{name: matplotlib Figure}`, drawn in memory (nothing is written; `write` saves them):
        `mds_by_cell` and `mds_by_run` (the two MDS embeddings coloured by cell/activation and by run),
        `distances` (the SVCCA and topology matrices) and `topology_graphs` (up to `n_graphs` graphs, the first
        network of each run first; left out with `n_graphs=0`). Names are the file names `write` uses."""
        from ._plot_compare import plot_distance_matrices, plot_mds_pair, plot_topology_graphs

        if isinstance(n_graphs, bool) or not isinstance(n_graphs, numbers.Integral) or n_graphs < 0:
            raise ValueError(f"`n_graphs` must be an integer >= 0, got {n_graphs!r}.")
        by_run, by_cell = self.groups("run"), self.groups("cell_activation")
        figs = {
            "mds_by_cell": plot_mds_pair(self.mds_geometry, self.mds_topology, by_cell),
            "mds_by_run": plot_mds_pair(self.mds_geometry, self.mds_topology, by_run),
            "distances": plot_distance_matrices(self.svcca, self.topology, by_cell),
        }
        shown = _graphs_to_show(self.members, n_graphs)
        if shown:
            figs["topology_graphs"] = plot_topology_graphs(
                [self.graphs[i] for i in shown],
                [f"{self.members[i]['run']} #{self.members[i]['member']}" for i in shown],
            )
        return figs

    def to_dict(self) -> dict:
        """The JSON-able content of `comparison.json` (without the `owner`, `networks` and `files` that `write`
        adds): `members`, every matrix and embedding as lists (NaN as None), `no_memory_states`, each graph's
        `to_dict()`, and the `within_between` tables."""
        data = {
            "members": self.members,
            **{
                name: np.asarray(getattr(self, name)).tolist()
                for name in (*MEASURES, "cka", "mds_geometry", "mds_topology")
            },
            "no_memory_states": _no_memory_states(self.graphs),
            "graphs": [g.to_dict() for g in self.graphs],
            "within_between": self.within_between(),
        }
        if self.switching is not None:
            data["switching"] = np.asarray(self.switching).tolist()
        return jsonable(data)

    def markdown(self, written: dict | None = None, out_dir: str | Path | None = None) -> str:
        """`report.md`: the networks, the within/between tables and the figures in `written` (`{name: [png,
        pdf]}`, paths relative to `out_dir`)."""
        written = written or {}
        base = Path(out_dir) if out_dir is not None else Path(".")

        def img(name, caption):
            png = next(p for p in written[name] if str(p).endswith(".png"))
            rel = Path(png).relative_to(base).as_posix() if out_dir is not None else Path(png).as_posix()
            return f"![{caption}]({rel})\n\n*{caption}*\n"

        members = self.members
        lines = [
            "# Comparison of networks: geometry and fixed-point topology\n",
            f"{len(members)} networks from {len({m['run'] for m in members})} runs. Geometry: SVCCA distance "
            "(1 − mean canonical correlation of the top principal components of the test-set activity) and "
            "the angular Procrustes shape metric (Williams et al. 2021; radians, in [0, π/2]). Dynamics: "
            "Hankel-DMD operators of the test-set trajectories compared up to an orthogonal similarity "
            "(angular, in [0, π]; in the spirit of DSA, Ostrow et al. 2023). "
            "Topology: the labelled graph of each network's stable points (readout levels) and the index-1 "
            "saddles joining them; distance `|A Δ B| / |A ∪ B|` of the labelled edge sets.\n",
            _memory_line(self.graphs),
            "## Networks\n",
            (
                "| # | run | member | cell | activation | N | solved | memory states | edges | unmatched branches | "
                "memory check |"
            ),
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for i, (m, g) in enumerate(zip(members, self.graphs)):
            solved = "–" if m["success"] is None else ("yes" if m["success"] else "no")
            lines.append(
                f"| {i} | {m['run']} | {m['member']} | {m['cell']} | {m['activation']} | {m['units']} | "
                f"{solved} | {g.n_nodes} | {g.n_edges} | {g.n_unmatched} | {m.get('memory_check') or '–'} |"
            )
        lines += [
            "",
            "## Within versus between groups\n",
            (
                "Mean distance between networks of the same group and of different groups, over the pairs "
                "whose distance is defined (excluded: pairs with an undefined distance, of the networks' pairs; "
                "members: networks with no defined distance at all).\n"
            ),
            "| grouping | measure | within | between | between / within | excluded pairs | excluded members |",
            "|---|---|---|---|---|---|---|",
        ]
        for grouping, table in self.within_between().items():
            for name, row in table.items():
                lines.append(
                    f"| {grouping} | {name} | {_fmt(row['within'])} | {_fmt(row['between'])} | "
                    f"{_fmt(row['ratio'])} | {row['excluded_pairs']} of {row['n_pairs']} | "
                    f"{row['excluded_members']} |"
                )
        if self.switching is not None:
            lines += [
                "",
                "*switching*: the mean over input channels of the difference of two networks' median switching "
                "amplitude c\\* (the input, in units of the channel's pulse amplitude, at which a memory state's "
                "stable point disappears; by continuation).",
            ]
        captions = {
            "mds_by_cell": "MDS embeddings of the SVCCA (left) and topology (right) distances, coloured by "
            "cell/activation.",
            "mds_by_run": "The same embeddings coloured by run.",
            "distances": "The distance matrices, networks ordered as in the table.",
            "topology_graphs": "Topology graphs: stable points placed at their readout, edges the index-1 saddles "
            "joining them.",
        }
        shown = [name for name in FIGURES if name in written]
        if shown:
            lines += ["", "## Figures\n", *(img(name, captions[name]) for name in shown)]
        return "\n".join(lines) + "\n"

    def write(
        self,
        out_dir: str | Path,
        *,
        n_graphs: int = 4,
        owner: str | None = None,
        networks=None,
        overwrite: bool = False,
    ) -> Path:
        """Write `comparison.json` (`to_dict()`, with `owner`, `networks` and the files written), `figures/`
        (`figures(n_graphs=n_graphs)`, PNG and PDF) and `report.md` into `out_dir`, every file atomically.
        Returns the path of `report.md`.

        `out_dir` is checked first (`check_output_folder`, as the comparison `owner`: by default a hash of the
        members' runs and cells): never a run folder; a folder of another comparison or analysis only with
        `overwrite`. `comparison.json` records `owner`, the `networks` fingerprints (if given) and the files
        written.

        The folder's lock (`ctrnn_jax.io` `folder_lock`) is held while writing: another writer of the folder is
        refused with `FolderBusy`. The files are written as a set (the earlier `comparison.json` removed first,
        the new one written last, a marker of the write in progress meanwhile), so a write killed half-way is
        cleaned up by the folder's next writer, never read as a mix of two comparisons."""
        import hashlib
        import json

        from ..io._lock import lock_outputs, writing
        from ..io._outputs import check_output_folder, check_writable_folder

        if isinstance(n_graphs, bool) or not isinstance(n_graphs, numbers.Integral) or n_graphs < 0:
            raise ValueError(f"`n_graphs` must be an integer >= 0, got {n_graphs!r}.")
        if owner is None:
            owner = hashlib.sha256(json.dumps(jsonable(self.members), sort_keys=True).encode()).hexdigest()[:16]
        with lock_outputs(folders=[check_writable_folder(out_dir, "output folder")], what="Comparison.write"):
            out = check_output_folder(out_dir, "comparison", owner, option="output folder", overwrite=overwrite)
            with writing(out, files=["comparison.json", REPORT], dirs=["figures"]):
                (out / "comparison.json").unlink(missing_ok=True)  # the earlier manifest first
                return self._write_files(out, n_graphs, owner, networks)

    def _write_files(self, out: Path, n_graphs: int, owner: str, networks) -> Path:
        import matplotlib.pyplot

        from ._figure import save_figure

        figs = out / "figures"
        figs.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, fig in self.figures(n_graphs=n_graphs).items():
            written[name] = save_figure(fig, figs / name)
            matplotlib.pyplot.close(fig)
        files = [
            p.relative_to(out).as_posix()
            for name in ("mds_by_run", "mds_by_cell", "distances", "topology_graphs")
            if name in written
            for p in written[name]
        ] + [REPORT]
        with atomic_write(out / REPORT, "w") as f:
            f.write(self.markdown(written, out))
        write_json(
            out / "comparison.json", jsonable({**self.to_dict(), "owner": owner, "networks": networks, "files": files})
        )
        return out / REPORT


def write_comparison(
    result: "Comparison | dict",
    out_dir,
    *,
    n_graphs: int = 4,
    owner: str | None = None,
    networks=None,
    overwrite: bool = False,
) -> Path:
    """`Comparison.write`, for a `Comparison` or a dict of its fields (e.g. hand-made). Returns the path of
    `report.md`."""
    if isinstance(result, dict):
        unknown = sorted(set(result) - {f.name for f in dataclasses.fields(Comparison)})
        if unknown:
            raise ValueError(f"`result` has keys that are not fields of a Comparison: {', '.join(unknown)}.")
        result = Comparison(**result)
    if not isinstance(result, Comparison):
        raise TypeError(f"`result` must be a Comparison (or a dict of its fields), got {type(result).__name__}.")
    return result.write(out_dir, n_graphs=n_graphs, owner=owner, networks=networks, overwrite=overwrite)


def _counts(values) -> dict:
    """`{value: count}` in order of first occurrence."""
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _no_memory_states(graphs) -> dict:
    """`{"count": k, "of": n, "members": [...]}`: the networks whose topology graph has no node."""
    empty = [i for i, g in enumerate(graphs) if g.n_nodes == 0]
    return {"count": len(empty), "of": len(graphs), "members": empty}


def _graphs_to_show(members, n):
    """Up to `n` members, the first of each run first."""
    first = {}
    for i, m in enumerate(members):
        first.setdefault(m["run"], i)
    order = list(first.values()) + [i for i in range(len(members)) if i not in first.values()]
    return order[:n]


def _fmt(x) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.3f}"


def _memory_line(graphs) -> str:
    info = _no_memory_states(graphs)
    line = f"{info['count']} of {info['of']} networks have no memory states (no stable point in their topology graph)"
    if info["count"]:
        line += (
            f": networks {', '.join(map(str, info['members']))}. Their topology distances are undefined "
            "(NaN): they are left out of the topology MDS and of the topology within/between means"
        )
    return line + ".\n"


def _success_flags(path: Path, members: int) -> np.ndarray:
    """The `(K,)` `success` flags of an `eval.json`; a ValueError naming the file when it is not one."""
    import json

    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable evaluation (not JSON: {e}); run ctrnn-jax evaluate again.") from None
    flags = record.get("success") if isinstance(record, dict) else None
    if not isinstance(flags, list) or not all(isinstance(f, int) and f in (0, 1) for f in flags):
        raise ValueError(
            f"{path}: not an evaluation (no list of true/false `success` flags, one per member); "
            "run ctrnn-jax evaluate again."
        )
    if len(flags) != members:
        raise ValueError(f"{path}: {len(flags)} success flags for {members} members.")
    return np.asarray(flags, bool)


def compare_runs(
    paths,
    out_dir,
    *,
    allow_mixed: bool = False,
    solved_only: bool = False,
    log=None,
    overwrite: bool = False,
    **options,
) -> Path:
    """`ctrnn-jax compare`: load run folders (or `ensemble.npz` files), `compare_ensembles`, and write the
    `Comparison` to `out_dir` (`Comparison.write`).

    **Arguments:**

    - `paths`: run folders (`ensemble.npz` with `config.json`; a bare `.npz` is taken as the task its
      sizes give, `task_for_ensemble`).
    - `out_dir`: where `comparison.json`, `figures/` and `report.md` go.
    - `allow_mixed`: compare runs of different tasks (on the first run's task, whose test set and
      constant input every network must fit); otherwise such runs are an error.
    - `solved_only`: keep only the members that solve the task (their run's `eval.json`).
    - `overwrite`: write into a folder that holds another comparison (see `check_output_folder`; never a
      run folder). `out_dir` is checked before any work.
    - `options`: further `compare_ensembles` arguments (`config`, `svcca_k`, `topology_options`).

    Raises `ValueError` / `FileNotFoundError` with a one-line message for a path without an ensemble, the
    same run (or the same network) given twice (identical copies would distort the within/between means),
    mixed tasks without `allow_mixed`, sizes that do not fit the task, or no member left to compare.
    """
    from ..io._lock import lock_outputs
    from ..io._outputs import check_writable_folder

    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no run folder given.")
    # the output folder's lock for the whole command (Comparison.write takes it again)
    with lock_outputs(folders=[check_writable_folder(out_dir, "output folder")], what="compare_runs", log=log):
        return _compare_runs(
            paths, out_dir, allow_mixed=allow_mixed, solved_only=solved_only, log=log, overwrite=overwrite, **options
        )


def _compare_runs(paths, out_dir, *, allow_mixed, solved_only, log, overwrite, **options) -> Path:
    import hashlib

    from ..io._outputs import EVAL, check_output_folder
    from ..io._run import load_run_ensemble, task_for_ensemble
    from ..io._serialisation import fingerprint

    success: list[np.ndarray | None] | None  # None at the end where a run has no success flags
    networks: dict[str, Path]
    ensembles, tasks, success, names, skipped, networks = [], [], [], [], [], {}
    for path in paths:
        if path.is_dir() and not (path / "ensemble.npz").is_file():
            raise FileNotFoundError(f"{path}: no ensemble.npz; is it a run folder?")
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such run folder or ensemble file.")
        ensemble, config = load_run_ensemble(path)
        network = fingerprint(ensemble)
        if network in networks:
            raise ValueError(
                f"{path}: the same network as {networks[network]} (given twice); identical copies "
                "would distort the within/between statistics. Give each run once."
            )
        networks[network] = path
        task = config.task if config is not None else task_for_ensemble(ensemble)
        if task is None:
            raise ValueError(
                f"{path}: an ensemble.npz with M = {ensemble.W_in.shape[-1]} inputs and O = "
                f"{ensemble.W_out.shape[-2]} outputs and no config.json: no task to compare it on."
            )
        ok = None
        if path.is_dir() and (path / EVAL).is_file():
            ok = _success_flags(path / EVAL, ensemble.W_out.shape[0])
        if solved_only:
            if ok is None:
                raise ValueError(f"{path}: `solved_only` needs the run's {EVAL}.")
            keep = np.flatnonzero(ok)
            ensemble = jax.tree_util.tree_map(lambda a: a[keep], ensemble) if len(keep) else None
            ok = ok[keep]
        if ensemble is None or ensemble.W_out.shape[0] == 0:
            skipped.append(str(path))
            continue
        ensembles.append(ensemble)
        tasks.append(task)
        success.append(ok)
        names.append(path.name if path.is_dir() else path.stem)
    if not ensembles:
        raise ValueError(
            "no members to compare" + (" (no member solves its task; drop `solved_only`)." if solved_only else ".")
        )
    if skipped and log:
        log(f"no member to compare in {', '.join(skipped)}: skipped")
    kinds = sorted({t.name for t in tasks})
    if len(kinds) > 1 and not allow_mixed:
        raise ValueError(
            f"the runs are of different tasks ({', '.join(kinds)}); pass `allow_mixed=True` to compare "
            "them on the first run's task."
        )
    if len(set(names)) < len(names):
        names = [f"{i}:{n}" for i, n in enumerate(names)]
    success = None if any(s is None for s in success) else success
    owner = hashlib.sha256(" ".join([*networks, str(solved_only), repr(options)]).encode()).hexdigest()[:16]
    check_output_folder(out_dir, "comparison", owner, option="output folder", overwrite=overwrite)
    result = compare_ensembles(ensembles, names=names, task=tasks[0], success=success, log=log, **options)
    if log:
        log(repr(result))
    return result.write(out_dir, owner=owner, networks=list(networks), overwrite=overwrite)


__all__ = [
    "Comparison",
    "classical_mds",
    "compare_ensembles",
    "compare_runs",
    "pairwise_switching",
    "within_between",
    "write_comparison",
]
