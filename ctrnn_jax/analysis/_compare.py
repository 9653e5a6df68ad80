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

`write_comparison` writes `comparison.json`, the figures and `report.md` of a result; `ctrnn-jax compare`
runs both on run folders.
"""

import dataclasses
import math
import numbers
from pathlib import Path


import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int
from .._files import atomic_write, write_json
from ..dynamics._config import FixedPointConfig
from ..dynamics._fixed_points import as_ensemble
from ..dynamics._behaviour import memory_check
from ..dynamics._cube import has_memory_states
from ..dynamics._stage import fixed_point_stage
from ..dynamics._topology import pairwise_graph_distances, topology_graph
from ..tasks._task import task_hold_steps
from ..tasks._flipflop import FlipFlopConfig
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
) -> dict:
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

    **Returns:** a dict with `members` (`P` dicts: `run`, `member`, `cell`, `activation`, `units`,
    `success`), the `(P, P)` matrices `svcca`, `cka`, `procrustes` (angular shape metric), `dynamics`
    (`pairwise_dsa`), `topology` (labelled), `topology_spectrum`, `linearization` (the topology ones NaN
    for a network without memory states, i.e. no node in its graph), the `(P, 2)` embeddings
    `mds_geometry` and `mds_topology` (NaN rows for the networks left out), `graphs` (`P`
    `MemberGraph`s), `fixed_points` (one `FixedPoints` per ensemble) and, for a task with memory states,
    `memory_check` (one `MemoryCheck` per ensemble: the behavioural check, no finder; each member's
    verdict is also in its `members` dict), else None.
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
            raise ValueError(f"{name}: the ensemble has M = {m} inputs and O = {o} outputs; the {task.name} task "
                             f"has {task.n_inputs} and {task.n_outputs}.")
    if success is not None and (len(success) != len(ensembles) or any(
            np.shape(s) != (e.W_out.shape[0],) for s, e in zip(success, ensembles))):
        raise ValueError("`success` must hold one (K,) boolean array per ensemble.")
    config = FixedPointConfig(n_candidates=256) if config is None else config
    if not isinstance(config, FixedPointConfig):
        raise TypeError(f"`config` must be a FixedPointConfig, got {type(config).__name__}.")
    if dsa_options is not None and not isinstance(dsa_options, dict):
        raise TypeError(f"`dsa_options` must be None or a dict of `pairwise_dsa` arguments, got "
                        f"{type(dsa_options).__name__}.")
    log = log or (lambda message: None)
    first_input = np.asarray(task.fixed_point_inputs(), np.float32)[0]

    inputs = jnp.asarray(task.test_set()[0])
    members, activity, trajectories, graphs, fixed_points, checks = [], [], [], [], [], []
    for i, (name, ens) in enumerate(zip(names, ensembles)):
        k = ens.W_out.shape[0]
        log(f"{name}: {k} {_cell(ens)} members, N = {ens.W_out.shape[-1]}: activity and fixed points ...")
        states = np.asarray(ensemble_states(ens, inputs), np.float64)  # (K, B, T, N)
        activity += [s.reshape(-1, s.shape[-1]) for s in states]
        trajectories += list(states)  # (B, T, N) per member, trials kept apart for the delay embedding
        fp = fixed_point_stage(ens, task, inputs=first_input,
                               config=dataclasses.replace(config, seed=config.seed + i))[0]
        fixed_points.append(fp)
        over = {"readouts": task.memory_readouts() if has_memory_states(task) else None,  # nodes: memory states
                "hold_steps": task_hold_steps(task), **(topology_options or {})}
        graphs += list(topology_graph(ens, fp, **over).graphs)
        check = memory_check(ens, task) if has_memory_states(task) else None  # the finder-free verdicts
        checks.append(check)
        for kk in range(k):
            members.append({"run": name, "member": kk, "cell": _cell(ens), "activation": ens.activation,
                            "units": int(ens.W_out.shape[-1]),
                            "success": None if success is None else bool(np.asarray(success[i])[kk]),
                            "memory_check": None if check is None else str(check.verdict[kk])})
    log(f"{len(members)} members: distance matrices ...")
    svcca = pairwise_svcca(activity, k=svcca_k)
    topology = pairwise_graph_distances(graphs, "labelled")
    return {
        "members": members,
        "svcca": svcca,
        "cka": pairwise_cka(activity),
        "procrustes": pairwise_procrustes_distance(activity),
        "dynamics": pairwise_dsa(trajectories, **(dsa_options or {})),
        "topology": topology,
        "topology_spectrum": pairwise_graph_distances(graphs, "spectrum"),
        "linearization": pairwise_graph_distances(graphs, "linearization"),
        "mds_geometry": classical_mds(svcca),
        "mds_topology": classical_mds(topology),
        "graphs": graphs,
        "fixed_points": fixed_points,
        "memory_check": checks if any(c is not None for c in checks) else None,
    }


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
    return {"within": w, "between": b, "ratio": b / w if w > 0 else math.nan,
            "n_pairs": int(upper.sum()), "excluded_pairs": int((upper & ~finite).sum()),
            "excluded_members": int(np.sum(~finite.any(axis=1))) if len(g) > 1 else 0}


def _group_table(result, key) -> dict:
    groups = [m[key] if key != "cell_activation" else f"{m['cell']}/{m['activation']}" for m in result["members"]]
    table = {name: within_between(result[name], groups) for name in MEASURES if name in result}
    table["1 - cka"] = within_between(1.0 - np.asarray(result["cka"]), groups)  # CKA is a similarity
    return table


def write_comparison(result: dict, out_dir, *, n_graphs: int = 4, owner: str | None = None,
                     networks=None, overwrite: bool = False) -> Path:
    """Write a `compare_ensembles` result to `out_dir`: `comparison.json` (members, every matrix, the
    embeddings, each graph's nodes and edges, within/between-group means), `figures/` (the two MDS
    embeddings coloured by run and by cell/activation, the distance matrices, `n_graphs` topology graphs)
    and `report.md`. Returns the path of `report.md`.

    `out_dir` is checked first (`check_output_folder`, as the comparison `owner`: by default a hash of the
    members' runs and cells): never a run folder; a folder of another comparison or analysis only with
    `overwrite`. `comparison.json` records `owner`, the `networks` fingerprints (if given) and the files
    written."""
    import hashlib
    import json

    from ..io._outputs import check_output_folder
    from ..io._run import _jsonable
    from ._figure import save_figure
    from ._plot_compare import (
        plot_distance_matrices,
        plot_mds_pair,
        plot_topology_graphs,
    )
    if isinstance(n_graphs, bool) or not isinstance(n_graphs, numbers.Integral) or n_graphs < 0:
        raise ValueError(f"`n_graphs` must be an integer >= 0, got {n_graphs!r}.")
    members = result["members"]
    if owner is None:
        owner = hashlib.sha256(json.dumps(_jsonable(members), sort_keys=True).encode()).hexdigest()[:16]
    out = check_output_folder(out_dir, "comparison", owner, option="output folder", overwrite=overwrite)
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    by_run = [m["run"] for m in members]
    by_cell = [f"{m['cell']}/{m['activation']}" for m in members]
    written = {
        "mds_run": save_figure(plot_mds_pair(result["mds_geometry"], result["mds_topology"], by_run),
                               figs / "mds_by_run"),
        "mds_cell": save_figure(plot_mds_pair(result["mds_geometry"], result["mds_topology"], by_cell),
                                figs / "mds_by_cell"),
        "matrices": save_figure(plot_distance_matrices(result["svcca"], result["topology"], by_cell),
                                figs / "distances"),
    }
    shown = _graphs_to_show(members, n_graphs)
    if shown:
        written["graphs"] = save_figure(plot_topology_graphs(
            [result["graphs"][i] for i in shown],
            [f"{members[i]['run']} #{members[i]['member']}" for i in shown]), figs / "topology_graphs")
    groups = {"run": _group_table(result, "run"), "cell_activation": _group_table(result, "cell_activation")}
    data = {
        "members": members,
        **{name: np.asarray(result[name]).tolist() for name in (*MEASURES, "cka", "mds_geometry", "mds_topology")
           if name in result},
        "no_memory_states": _no_memory_states(result["graphs"]),
        "graphs": [g.to_dict() for g in result["graphs"]],
        "within_between": groups,
    }
    files = [p.relative_to(out).as_posix() for paths in written.values() for p in paths] + [REPORT]
    with atomic_write(out / REPORT, "w") as f:
        f.write(_markdown(out, written, result, groups, shown))
    write_json(out / "comparison.json", _jsonable({**data, "owner": owner, "networks": networks, "files": files}))
    return out / REPORT


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
        line += (f": networks {', '.join(map(str, info['members']))}. Their topology distances are undefined "
                 "(NaN): they are left out of the topology MDS and of the topology within/between means")
    return line + ".\n"


def _markdown(out, written, result, groups, shown) -> str:
    def img(name, caption):
        png = next(p for p in written[name] if str(p).endswith(".png"))
        return f"![{caption}]({Path(png).relative_to(out).as_posix()})\n\n*{caption}*\n"

    members = result["members"]
    lines = ["# Comparison of networks: geometry and fixed-point topology\n",
             f"{len(members)} networks from {len({m['run'] for m in members})} runs. Geometry: SVCCA distance "
             "(1 − mean canonical correlation of the top principal components of the test-set activity) and "
             "the angular Procrustes shape metric (Williams et al. 2021; radians, in [0, π/2]). Dynamics: "
             "Hankel-DMD operators of the test-set trajectories compared up to an orthogonal similarity "
             "(angular, in [0, π]; in the spirit of DSA, Ostrow et al. 2023). "
             "Topology: the labelled graph of each network's stable points (readout levels) and the index-1 "
             "saddles joining them; distance `|A Δ B| / |A ∪ B|` of the labelled edge sets.\n",
             _memory_line(result["graphs"]),
             "## Networks\n",
             ("| # | run | member | cell | activation | N | solved | memory states | edges | unmatched branches | "
              "memory check |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for i, (m, g) in enumerate(zip(members, result["graphs"])):
        solved = "–" if m["success"] is None else ("yes" if m["success"] else "no")
        lines.append(f"| {i} | {m['run']} | {m['member']} | {m['cell']} | {m['activation']} | {m['units']} | "
                     f"{solved} | {g.n_nodes} | {g.n_edges} | {g.n_unmatched} | {m.get('memory_check') or '–'} |")
    lines += ["", "## Within versus between groups\n",
              ("Mean distance between networks of the same group and of different groups, over the pairs "
               "whose distance is defined (excluded: pairs with an undefined distance, of the networks' pairs; "
               "members: networks with no defined distance at all).\n"),
              "| grouping | measure | within | between | between / within | excluded pairs | excluded members |",
              "|---|---|---|---|---|---|---|"]
    for grouping, table in groups.items():
        for name, row in table.items():
            lines.append(f"| {grouping} | {name} | {_fmt(row['within'])} | {_fmt(row['between'])} | "
                         f"{_fmt(row['ratio'])} | {row['excluded_pairs']} of {row['n_pairs']} | "
                         f"{row['excluded_members']} |")
    lines += ["", "## Figures\n",
              img("mds_cell", "MDS embeddings of the SVCCA (left) and topology (right) distances, coloured by "
                              "cell/activation."),
              img("mds_run", "The same embeddings coloured by run."),
              img("matrices", "The distance matrices, networks ordered as in the table.")]
    if "graphs" in written:
        lines.append(img("graphs", "Topology graphs: stable points placed at their readout, edges the index-1 "
                                   "saddles joining them."))
    return "\n".join(lines) + "\n"


def compare_runs(paths, out_dir, *, allow_mixed: bool = False, solved_only: bool = False, log=None,
                 overwrite: bool = False, **options) -> Path:
    """`ctrnn-jax compare`: load run folders (or `ensemble.npz` files), `compare_ensembles`, and
    `write_comparison` to `out_dir`.

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
    import hashlib
    import json

    from ..io._outputs import check_output_folder, check_writable_folder
    from ..io._run import EVAL, load_run_ensemble, task_for_ensemble
    from ..io._serialisation import fingerprint
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no run folder given.")
    check_writable_folder(out_dir, "output folder")
    ensembles, tasks, success, names, skipped, networks = [], [], [], [], [], {}
    for path in paths:
        if path.is_dir() and not (path / "ensemble.npz").is_file():
            raise FileNotFoundError(f"{path}: no ensemble.npz; is it a run folder?")
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such run folder or ensemble file.")
        ensemble, config = load_run_ensemble(path)
        network = fingerprint(ensemble)
        if network in networks:
            raise ValueError(f"{path}: the same network as {networks[network]} (given twice); identical copies "
                             "would distort the within/between statistics. Give each run once.")
        networks[network] = path
        task = config.task if config is not None else task_for_ensemble(ensemble)
        if task is None:
            raise ValueError(f"{path}: an ensemble.npz with M = {ensemble.W_in.shape[-1]} inputs and O = "
                             f"{ensemble.W_out.shape[-2]} outputs and no config.json: no task to compare it on.")
        ok = None
        if path.is_dir() and (path / EVAL).is_file():
            ok = np.asarray(json.loads((path / EVAL).read_text())["success"], bool)
            if ok.shape != (ensemble.W_out.shape[0],):
                raise ValueError(f"{path / EVAL}: {ok.size} success flags for {ensemble.W_out.shape[0]} members.")
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
        raise ValueError("no members to compare" + (" (no member solves its task; drop `solved_only`)."
                                                    if solved_only else "."))
    if skipped and log:
        log(f"no member to compare in {', '.join(skipped)}: skipped")
    kinds = sorted({t.name for t in tasks})
    if len(kinds) > 1 and not allow_mixed:
        raise ValueError(f"the runs are of different tasks ({', '.join(kinds)}); pass `allow_mixed=True` to compare them "
                         "on the first run's task.")
    if len(set(names)) < len(names):
        names = [f"{i}:{n}" for i, n in enumerate(names)]
    success = None if any(s is None for s in success) else success
    owner = hashlib.sha256(" ".join([*networks, str(solved_only), repr(options)]).encode()).hexdigest()[:16]
    check_output_folder(out_dir, "comparison", owner, option="output folder", overwrite=overwrite)
    result = compare_ensembles(ensembles, names=names, task=tasks[0], success=success, log=log, **options)
    return write_comparison(result, out_dir, owner=owner, networks=list(networks), overwrite=overwrite)


__all__ = ["classical_mds", "compare_ensembles", "compare_runs", "within_between", "write_comparison"]
