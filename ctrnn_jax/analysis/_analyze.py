"""One analysis for every network and task: `analyze` computes an `Analysis` (data); its `figures()`,
`to_dict()`, `markdown()` and `write()` are views of it.

What every network gets: the evaluation on its task's test set (none without a task), the fixed points
at each constant input (`fixed_point_stage`), the spectrum of `W_rec` (cells with one recurrent matrix),
and the figures of the best member. What a task adds lives in the task: a task with memory states
(`memory_readouts()`, the flip-flop) adds the memory-state (cube) analysis of every member, the
behavioural memory check (`memory_check`), the robustness sweep, the comparison of realizations, and the
switching amplitudes by continuation (`pulse_switching`); a task with `relevant_inputs` (a context task) adds
the line attractors and selection vectors per context (`selection_analysis`); a network without a task is
probed at constant inputs (`probe_trials`).
"""

import dataclasses
import html
import math
import re
from pathlib import Path
from typing import Any, cast

import jax
import numpy as np

from .._files import atomic_write, write_json
from .._results import Result, html_table, text_table
from ..dynamics._behaviour import MemoryCheck, memory_check
from ..dynamics._config import FixedPointConfig
from ..dynamics._cube import has_memory_states, memory_state_analysis
from ..dynamics._fixed_point_set import FixedPoints
from ..dynamics._fixed_points import as_ensemble, matching
from ..dynamics._memory_states import memory_states as group_memory_states
from ..dynamics._selection import Selection, selection_analysis
from ..dynamics._stage import constant_inputs, fixed_point_stage, probe_trials
from ..dynamics._switching import Switching, pulse_switching
from ..io._eval import higher_is_better, ranking_score
from ..tasks._task import check_task
from ..training._ensemble import get_member
from ..training._evaluate import ensemble_outputs, ensemble_states

REPORT, ANALYSIS = "report.md", "analysis.json"


def _fmt(x, spec=".4f") -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def _hidden_points(fp: FixedPoints, n: int) -> FixedPoints:
    """`fp` with its points (and eigenvectors) cut to the hidden part `h` (the LSTM's `[h, c]`), for figures of
    the hidden activity."""
    if fp.points.shape[1] == n:
        return fp
    return dataclasses.replace(
        fp,
        points=fp.points[:, :n],
        eigvecs=None if fp.eigvecs is None else fp.eigvecs[:, :n, :],
        left_eigvecs=None if fp.left_eigvecs is None else fp.left_eigvecs[:, :, :n],
        input_jacobians=None if fp.input_jacobians is None else fp.input_jacobians[:, :n],
    )


@dataclasses.dataclass(frozen=True, eq=False)
class Analysis(Result):
    """The results of `analyze` for an ensemble of `K` members (NumPy arrays and plain dicts).

    **Fields:**

    - `ensemble`: the stacked ensemble analysed; `task`: its task, or None.
    - `source`: a name for the report (a run folder or file).
    - `evaluation`: the per-member test metrics (the `eval.json` dict: `mse`, `success`, `metric` or `norm`,
      ...), or None without a task.
    - `fixed_points`: one `FixedPoints` per constant input (its `inputs` field).
    - `memory_states`, `memory_summary`: `cube_analysis`' per-member list and `ensemble_summary` (at the first
      constant input), for a task with memory states; else None.
    - `W_rec_outside`, `spectral_radius`: `(K,)` eigenvalues of `W_rec` outside the unit circle and the
      largest modulus (None for the gated cells, whose `W_rec` stacks gate blocks).
    - `best`: the member shown in the single-member figures (the best on the test set; 0 without a task).
    - `losses`: `(S, K)` training losses or None; `initial_W_rec`: the best member's `W_rec` before training
      or None.
    - `robustness`: `robustness_sweep`'s dict (tasks with memory states and `pulse_robustness`), or None.
    - `realizations`: `compare_realizations`' dict (tasks with memory states), or None.
    - `threshold`: the MSE threshold of the memory analyses (the success threshold when the task's metric is an
      error, e.g. the flip-flop's test MSE; the evaluation records the threshold in effect); `seed`: the seed of
      the sampled trials.
    - `config`: the `FixedPointConfig` of the fixed points (None when they were given).
    - `memory_check`: `memory_check`'s `MemoryCheck` (tasks with memory states), or None: whether each member's
      memory states hold and whether perturbations of them shrink, persist or grow, by the network's own
      dynamics (no finder).
    - `memory`: one `MemoryStates` per constant input (`memory_states`: the stable and marginal points,
      fixed points and analysed slow points alike, grouped by the task's memory readouts when it has them),
      or None.
    - `training`: how training ended, or None (not a run folder): `eval.json`'s `training` record (`steps`,
      `max_steps`, `stop_mse`, `stop_margin`, `criterion`, `wall_s`, ...; see `ctrnn_jax.io` `training_record`)
      with the per-member `criterion_step`, `restarts` and `frozen` (`training_summary` reads it from a run
      folder).
    - `switching`: `pulse_switching`'s `Switching` by continuation only (`simulate=False`; tasks with memory
      states): the input amplitude `c*` at which each memory state stops existing along each pulse direction,
      or None (`switching_rows` is its per-member table).
    - `selection`: `selection_analysis`' `Selection` (tasks with `relevant_inputs`, e.g. `context_dm`): line
      attractors and selection vectors per member and context, or None (`selection_rows` is its table).
    """

    ensemble: Any
    task: Any
    source: str
    evaluation: dict | None
    fixed_points: tuple
    memory_states: list | None
    memory_summary: dict | None
    W_rec_outside: np.ndarray | None
    spectral_radius: np.ndarray | None
    best: int
    losses: np.ndarray | None = None
    initial_W_rec: np.ndarray | None = None
    robustness: dict | None = None
    realizations: dict | None = None
    threshold: float = 0.02
    seed: int = 0
    config: FixedPointConfig | None = None
    memory_check: MemoryCheck | None = None
    memory: tuple | None = None
    training: dict | None = None
    switching: Switching | None = None
    selection: Selection | None = None

    @property
    def n_members(self) -> int:
        return int(self.ensemble.W_out.shape[0])

    # ------------------------------------------------------------------------------------------------
    # tables
    # ------------------------------------------------------------------------------------------------

    def rows(self) -> list[dict]:
        """One dict per member: the test metric, success, fixed-point counts per constant input, memory states
        recovered, `W_rec` eigenvalues outside the unit circle."""
        out = []
        check = self.memory_check
        held = None if check is None else check.held_for_a_trial()
        check_rows = None if check is None or held is None else check.rows()
        for k in range(self.n_members):
            row: dict[str, Any] = {"member": k}
            if self.evaluation is not None:
                name = self.evaluation.get("metric_name", "mse")
                if name != "mse":  # an accuracy-like score, beside the test MSE
                    row[name] = float(self.evaluation["metric"][k])
                row["test MSE"] = float(self.evaluation["mse"][k])
                row["success"] = bool(self.evaluation["success"][k])
                if name == "mse":  # how far below the success threshold the member is
                    row["margin"] = f"{100 * (1 - row['test MSE'] / float(self.evaluation['threshold'])):.0f} %"
            for i, fp in enumerate(self.fixed_points):
                c = fp.counts()[k]
                tag = "" if len(self.fixed_points) == 1 else f" @{i}"
                row["fixed points" + tag] = c["points"]
                row["stable" + tag] = c["stable"]
                row["saddles by index" + tag] = (
                    "/".join(str(c["saddles"].get(j, 0)) for j in range(1, max(c["saddles"], default=0) + 1)) or "–"
                )
                row["slow" + tag] = c["slow"]
                if self.memory is not None:
                    row["memory states by mechanism" + tag] = _mechanisms(self.memory[i].counts(k))
            if check is not None and held is not None:  # the task's memories the member holds for a trial
                row["memory states held >= 1 trial"] = f"{int(held[k])}/{check.holds.shape[1]}"
            if self.memory_states is not None:
                d = self.memory_states[k]
                row["memory states at fixed points"] = f"{d['corners_recovered']}/{len(d['corner_points'])}"
                row["cube disparity"] = d["cube_disparity"]
            if check is not None:
                row["memory check"] = str(check.verdict[k])
                if check_rows is not None:  # (`held` is not None)
                    r = check_rows[k]
                    row["memory lifetime min / median (trials)"] = f"{r['lifetime min']} / {r['lifetime median']}"
            if self.W_rec_outside is not None:
                row["W_rec eigenvalues outside the unit circle"] = int(self.W_rec_outside[k])
            out.append(row)
        return out

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        rows = self.rows()
        header = list(rows[0]) if rows else ["member"]

        def cell(v):
            if isinstance(v, bool):
                return "yes" if v else "no"
            if isinstance(v, float):
                return _fmt(v)
            return str(v)

        return header, [[cell(r.get(h)) for h in header] for r in rows]

    def __repr__(self) -> str:
        task = "no task" if self.task is None else self.task.name
        return (
            text_table(
                f"Analysis of {self.source}: {self.n_members} {self.ensemble.cell} member(s), task {task}"
                + (f", {self.evaluation['n_success']} solve it" if self.evaluation else "")
                + f"; best member {self.best}",
                *self._cells(),
            )
            + self._dynamics_repr()
        )

    def _repr_html_(self) -> str:
        return (
            html_table(
                f"<b>Analysis</b> of {html.escape(self.source)}: {self.n_members} member(s), best member {self.best}",
                *self._cells(),
            )
            + self._dynamics_html()
        )

    def switching_rows(self) -> list[dict]:
        """The switching table (tasks with memory states): one dict per member and input channel (bit) with the
        memories followed, those removed up to the path's end, the smallest and the median `c*` over the
        memories (each memory's the smaller of its two signs; `Switching.channel_summary`; in units of the
        channel's pulse amplitude, +inf: above the path's end), and the robustness sweep's smallest pulse-amplitude
        scale from which on the member succeeds at every larger scale of the sweep (None: not even at the
        largest, or no sweep). Empty without `switching`."""
        if self.switching is None:
            return []
        summary = self.switching.channel_summary(self.n_members)
        robust = _robust_scales(self.robustness, self.n_members)
        out = []
        for k in range(self.n_members):
            for i in range(summary["min"].shape[1]):
                if not self.switching.amplitude[i] > 0:
                    continue
                out.append(
                    {
                        "member": k,
                        "channel": i,
                        "memories": int(summary["memories"][k, i]),
                        "lost": int(summary["lost"][k, i]),
                        "c* min": float(summary["min"][k, i]),
                        "c* median": float(summary["median"][k, i]),
                        "robust from": robust[k],
                    }
                )
        return out

    def selection_rows(self) -> list[dict]:
        """The selection table (tasks with `relevant_inputs`): one dict per member and constant input (context)
        with its line points, their alignment, the median `|l · B|` of the relevant channel and of the largest
        other evidence channel, and their ratio. Empty without `selection`."""
        sel = self.selection
        if sel is None:
            return []
        out = []
        for k in range(sel.n_points.shape[0]):
            for c in range(sel.inputs.shape[0]):
                rel = int(sel.relevant[c])
                others = [int(e) for e in sel.evidence if e != rel]
                out.append(
                    {
                        "member": k,
                        "context": c,
                        "relevant channel": rel if rel >= 0 else None,
                        "line points": int(sel.n_points[k, c]),
                        "alignment": float(sel.alignment[k, c]),
                        "relevant |l·B|": float(sel.overlap[k, c, rel]) if rel >= 0 else math.nan,
                        "other |l·B|": float(np.max(sel.overlap[k, c, others])) if others else math.nan,
                        "relevant / other": float(sel.ratio[k, c]),
                    }
                )
        return out

    def _switching_cells(self) -> tuple[list[str], list[list[str]]]:
        top = "–" if self.switching is None else f">{self.switching.max_scale:g}"
        header = ["member", "channel", "memories", "lost", "c* min", "c* median", "robust from scale"]

        def c(v):
            return top if v == math.inf else _fmt(v, ".3f")

        body = [
            [
                str(r["member"]),
                str(r["channel"]),
                str(r["memories"]),
                str(r["lost"]),
                c(r["c* min"]),
                c(r["c* median"]),
                _fmt(r["robust from"], "g"),
            ]
            for r in self.switching_rows()
        ]
        return header, body

    def _selection_cells(self) -> tuple[list[str], list[list[str]]]:
        header = ["member", "context", "relevant channel", "line points", "alignment", "relevant |l·B|"]
        header += ["other |l·B|", "relevant / other"]
        body = [
            [
                str(r["member"]),
                str(r["context"]),
                "–" if r["relevant channel"] is None else str(r["relevant channel"]),
                str(r["line points"]),
                *(_fmt(r[h], ".3g") for h in ("alignment", "relevant |l·B|", "other |l·B|", "relevant / other")),
            ]
            for r in self.selection_rows()
        ]
        return header, body

    def _consistency_cells(self) -> tuple[list[str], list[list[str]]]:
        header = ["context", "members", "ratio median", "min", "max", "log10 spread", "members relevant > other"]
        rows = [] if self.selection is None else self.selection.consistency()
        body = [
            [
                str(r["input"]),
                str(r["members"]),
                *(_fmt(r[h], ".3g") for h in ("median", "min", "max", "log_spread")),
                f"{r['favour_relevant']}/{r['members']}",
            ]
            for r in rows
        ]
        return header, body

    def _dynamics_markdown(self) -> list[str]:
        """report.md's `## Switching amplitudes` and `## Selection vectors` sections (none without them)."""

        def table(header, body):
            return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
                "| " + " | ".join(r) + " |" for r in body
            ]

        lines = []
        if self.switching is not None:
            sw = self.switching
            lines += ["## Switching amplitudes", ""]
            lines += table(*self._switching_cells())
            lines += [
                "",
                "*c\\**: the amplitude of a constant input on the channel, in units of the channel's pulse amplitude "
                f"({', '.join(f'{a:g}' for a in sw.amplitude)}), at which a memory state's stable fixed point "
                "disappears (a saddle-node, found by continuation): a pulse held long enough above it switches the "
                "memory, none below it does. Each memory's is the smaller of the two signs; *c\\* min* and *c\\* "
                f"median* over the member's memories (>{sw.max_scale:g}: none lost up to the path's end; *lost*: "
                "the memories removed). *robust from scale*: the robustness sweep's smallest pulse-amplitude scale "
                "from which on the member solves the task at every larger scale of the sweep; task pulses are "
                "brief, so it lies at or above c\\*.",
                "",
            ]
        if self.selection is not None:
            lines += ["## Selection vectors", ""]
            lines += table(*self._selection_cells())
            lines += ["", "Across members:", ""]
            lines += table(*self._consistency_cells())
            lines += [
                "",
                "*line points*: fixed and slow points whose slowest mode is real with |λ − 1| < "
                f"{self.selection.band:g}; *alignment*: the median |r_i · r_j| of their slow directions; "
                "*|l·B|*: the median overlap of the selection vector l (left eigenvector of the slow mode) with the "
                "input direction of the relevant (cued) evidence channel and of the largest other one, and their "
                "ratio (Mante et al. 2013). Across members: the ratio's median, range, the standard deviation of "
                "its log10 (0: every member selects alike) and the members whose ratio is above 1.",
                "",
            ]
        return lines

    def _dynamics_html(self) -> str:
        """The switching and selection tables of the notebook view (empty without them)."""
        out = ""
        if self.switching is not None:
            out += html_table("Switching amplitude c* (× pulse amplitude)", *self._switching_cells())
        if self.selection is not None:
            out += html_table("Selection vectors per context", *self._selection_cells())
            out += html_table("Across members: relevant / other ratio", *self._consistency_cells())
        return out

    def _dynamics_repr(self) -> str:
        """The switching and selection tables of `repr` (empty without them)."""
        out = ""
        if self.switching is not None:
            out += "\n" + text_table(
                "Switching amplitude c* by continuation (× each channel's pulse amplitude), robustness sweep beside",
                *self._switching_cells(),
            )
        if self.selection is not None:
            out += "\n" + text_table(
                f"Selection vectors per context (slow band |λ − 1| < {self.selection.band:g})", *self._selection_cells()
            )
            out += "\n" + text_table("Across members: relevant / other overlap ratio", *self._consistency_cells())
        return out

    # ------------------------------------------------------------------------------------------------
    # figures
    # ------------------------------------------------------------------------------------------------

    def figures(self) -> dict:
        """Every figure of the analysis as `{name: matplotlib Figure}`, drawn in memory (nothing is written;
        `write` saves them). Names are the file names `write` uses."""
        from ._plot_ensemble import plot_robustness, plot_similarity_matrices, plot_training_curves
        from ._plot_flipflop import (
            plot_ensemble_overview,
            plot_realizations,
            plot_state_space,
            plot_task_samples,
            plot_test_set,
        )
        from ._plot_network import plot_connectivity, plot_eigenvalues, plot_fixed_point_spectra, plot_spectra_grid
        from ._plot_task import plot_probe_state_space, plot_task_state_space, plot_task_trials

        ens, task, best = self.ensemble, self.task, self.best
        n = ens.n_units
        figs = {}
        memory = has_memory_states(task)
        if task is not None:
            inputs, targets, mask = (np.asarray(a) for a in task.test_set())
            states = np.asarray(ensemble_states(ens, inputs))  # (K, B, T, N)
            outputs = np.asarray(ensemble_outputs(ens, inputs))  # (K, B, T, O)
        if memory:
            x3, y3, _ = task.sample(jax.random.fold_in(jax.random.key(self.seed), 1), 3)
            figs["task_samples"] = plot_task_samples(np.asarray(x3), np.asarray(y3))
        matrix = ens.recurrent_matrix
        if matrix is not None:
            W = np.asarray(matrix)
            figs["connectivity"] = plot_connectivity(W[best])
            figs["eigenvalues"] = plot_eigenvalues(W[best], W_rec_initial=self.initial_W_rec)
            figs["spectra_members"] = plot_spectra_grid(W)
        several = len(self.fixed_points) > 1 or not memory
        for i, fp in enumerate(self.fixed_points):
            mine = _hidden_points(fp.select(best), n)
            tag = f"_{i}" if several else ""
            at = np.round(np.asarray(fp.inputs[best], np.float64), 3).tolist()
            title = f"member {best}, fixed points at input {at}"
            if memory and i == 0:
                figs["test_set"] = plot_test_set(inputs[0], outputs[best][0], targets[0])
                figs["state_space"] = plot_state_space(
                    states[best][0], targets[0], fixed_points=mine, W_out=np.asarray(get_member(ens, best).W_out)
                )
            elif task is not None:
                labels, names = task.trial_groups(targets, mask)
                figs[f"state_space{tag}"] = plot_task_state_space(
                    states[best], labels, group_names=names, fixed_points=mine, title=title
                )
            else:
                trials = probe_trials(fp.inputs[best], key=_probe_key(self.seed, i), batch=32)
                figs[f"state_space{tag}"] = plot_probe_state_space(
                    np.asarray(ensemble_states(ens, trials))[best], fixed_points=mine, title=title
                )
            figs[f"fixed_point_spectra{tag}"] = plot_fixed_point_spectra(fp.select(best))
        if task is not None and not memory:
            order = _spread_trials(task.trial_groups(targets, mask)[0])
            figs["test_trials"] = plot_task_trials(inputs[order], outputs[best][order], targets[order], mask[order])
        if memory:
            ranked = self._ranking()[: min(4, self.n_members)]
            fp0 = self.fixed_points[0]
            figs["realizations"] = plot_realizations(
                [states[k][0] for k in ranked],
                targets[0],
                fixed_points_list=[_hidden_points(fp0.select(k), n) for k in ranked],
            )
        if self.losses is not None:
            figs["training_curves"] = plot_training_curves(self.losses, steps=np.arange(1, len(self.losses) + 1))
        if memory:
            assert self.memory_states is not None and self.evaluation is not None  # a memory task has both
            disparity = np.asarray([d["cube_disparity"] for d in self.memory_states], float)
            n_stable = np.asarray([d["n_stable"] for d in self.memory_states])
            outside = self.W_rec_outside if self.W_rec_outside is not None else np.full(self.n_members, np.nan)
            figs["ensemble_overview"] = plot_ensemble_overview(
                np.asarray(self.evaluation["mse"]), n_stable, disparity, outside, threshold=self.threshold
            )
        if self.memory_check is not None and self.memory_check.lifetime is not None:
            from ._plot_memory import plot_memory_lifetimes

            figs["memory_lifetimes"] = plot_memory_lifetimes(self.memory_check)
        if self.robustness is not None:
            figs["robustness"] = plot_robustness(self.robustness)
        if self.realizations is not None:
            figs["realization_similarity"] = plot_similarity_matrices(
                self.realizations["procrustes"], self.realizations["cka"]
            )
        return figs

    def _ranking(self) -> list[int]:
        """Members from best to worst on the test set (member order without a task)."""
        if self.evaluation is None:
            return list(range(self.n_members))
        return [int(k) for k in np.argsort(-ranking_score(self.evaluation), kind="stable")]

    # ------------------------------------------------------------------------------------------------
    # files
    # ------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The JSON-able content of `analysis.json`."""
        from .._files import jsonable as _jsonable

        ens = self.ensemble
        out = {
            "source": self.source,
            "task": None if self.task is None else self.task.name,
            "cell": ens.cell,
            "members": self.n_members,
            "inputs": ens.n_inputs,
            "units": ens.n_units,
            "outputs": ens.n_outputs,
            "best_member": self.best,
            "eval": self.evaluation,
            "fixed_points": [{"input": fp.inputs[0].tolist(), "per_member": fp.counts()} for fp in self.fixed_points],
        }
        if self.evaluation is not None:  # the evaluation's headline numbers at the top level, as before
            out.update(
                {
                    name: self.evaluation[name]
                    for name in ("n_members", "n_success", "threshold", "mse", "success", "norm", "metric")
                    if name in self.evaluation
                }
            )
        if self.W_rec_outside is not None:
            assert self.spectral_radius is not None  # given with W_rec_outside
            out["W_rec"] = {
                "spectral_radius": self.spectral_radius.tolist(),
                "outside_unit_circle": self.W_rec_outside.tolist(),
            }
            out["n_eigenvalues_outside_unit_circle"] = self.W_rec_outside.tolist()
        if self.memory is not None:
            out["memory"] = [m.to_dict() for m in self.memory]
        if self.memory_states is not None:
            out["memory_states"] = {"per_member": self.memory_states, "summary": self.memory_summary}
            out["cube_summary"] = self.memory_summary
        if self.memory_check is not None:
            out["memory_check"] = self.memory_check.to_dict()
        if self.training is not None:
            out["training"] = self.training
        if self.robustness is not None:
            out["robustness"] = {k: np.asarray(v).tolist() for k, v in self.robustness.items()}
        if self.realizations is not None:
            out["procrustes"] = np.asarray(self.realizations["procrustes"]).tolist()
            out["cka"] = np.asarray(self.realizations["cka"]).tolist()
        if self.switching is not None:
            out["switching"] = self.switching.to_dict()
            out["switching_table"] = self.switching_rows()
        if self.selection is not None:
            out["selection"] = self.selection.to_dict()
            out["selection_consistency"] = self.selection.consistency()
        return _jsonable(out)

    def markdown(self, written: dict | None = None, out_dir: str | Path | None = None) -> str:
        """`report.md`: the summary, the per-member table, and the figures in `written` (`{name: [png, pdf]}`,
        paths relative to `out_dir`)."""
        written = written or {}
        ev = self.evaluation
        task = None if self.task is None else self.task.name
        lines = [f"# Analysis of `{_shown_source(self.source, out_dir)}`" + (" (no task)" if ev is None else ""), ""]
        cell = (
            f"{self.n_members} {self.ensemble.cell} member(s) with M = {self.ensemble.n_inputs} inputs, "
            f"N = {self.ensemble.n_units} units, O = {self.ensemble.n_outputs} outputs"
        )
        if ev is None:
            lines += [
                f"{cell}. No task: no test set and no score; the fixed points at each constant input were "
                "found from probe trials (the input plus noise, then the input alone) and from points over "
                "the state space. Give a task to analyse the network on it.",
                "",
            ]
        else:
            name = ev.get("metric_name", "mse")
            compare = ">=" if higher_is_better(ev) else "<"
            lines += [
                f"{cell}, on the {task} task: {ev['n_success']} of {ev['n_members']} members solve the task "
                f"({name} {compare} {ev['threshold']} on the {ev['test_set']}). Best member: {self.best}.",
                "",
            ]
        if self.memory_summary is not None:
            s = self.memory_summary
            lines += [
                f"Members with every memory state at a stable fixed point: {s['n_all_corners']} of "
                f"{s['n_members']}; cube disparity median {_fmt(s['cube_disparity_median'])}.",
                "",
            ]
        if self.memory_check is not None:
            c = self.memory_check
            verdicts = ", ".join(f"{int(np.sum(c.verdict == v))} {v}" for v in dict.fromkeys(c.verdict.tolist()))
            trials = "" if c.trial_steps is None else f" ({c.horizon_steps / c.trial_steps:.3g} test trials)"
            lines += [
                (
                    f"Memory check (the network's own dynamics, no finder: each memory state reached on the test "
                    f"set run {c.horizon_steps} steps{trials} at rest, unperturbed and with {c.n_perturbations} "
                    f"small perturbations; the readout must stay within {c.tolerance:.3g}): {verdicts}."
                ),
                "",
            ]
        lines += training_markdown(self.training, self.n_members)
        header, body = self._cells()
        lines += ["## Per member", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        lines.append("")
        lines += legend_markdown(header, self)
        for i, fp in enumerate(self.fixed_points):
            lines.append(f"Fixed points at input {i}: `{np.round(np.asarray(fp.inputs[0], np.float64), 4).tolist()}`.")
        lines.append("")
        if self.robustness is not None:
            r = self.robustness
            lines += ["## Robustness", ""]
            lines += _margin_sentence(self)
            lines += ["| input noise std | success rate |", "|---|---|"]
            lines += [f"| {float(a):g} | {float(b):.2f} |" for a, b in zip(r["noise_levels"], r["noise_success_rate"])]
            lines += ["", "| pulse amplitude scale | success rate |", "|---|---|"]
            lines += [
                f"| {float(a):g} | {float(b):.2f} |" for a, b in zip(r["amplitude_scales"], r["amplitude_success_rate"])
            ]
            lines.append("")
        lines += self._dynamics_markdown()
        if written:
            lines += ["## Figures", ""]
            base = Path(out_dir) if out_dir is not None else Path(".")
            for name, paths in written.items():
                png = next(p for p in paths if str(p).endswith(".png"))
                rel = Path(png).relative_to(base).as_posix() if out_dir is not None else Path(png).as_posix()
                caption = _CAPTIONS.get(re.sub(r"_\d+$", "", name), name)  # state_space_0: as state_space
                lines += [f"![{name}]({rel})", "", f"*{caption}*", ""]
        return "\n".join(lines) + "\n"

    def write(
        self,
        out_dir: str | Path,
        *,
        fixed_points: bool = True,
        overwrite: bool = False,
        explorer: bool = True,
        log=None,
    ) -> Path:
        """Write `figures/*.png|pdf`, `analysis.json`, `report.md` (and, with `fixed_points`, the fixed points:
        `fixed_points.npz`, or `fixed_points_<i>.npz` per constant input) into `out_dir`, every file atomically.
        Returns the path of `report.md`.

        `out_dir` is checked first (`ctrnn_jax.io.check_output_folder`): another network's run folder is
        refused; a folder holding another network's analysis, a comparison, or loose result files only with
        `overwrite=True` (which removes the files that earlier result listed). `analysis.json` records the
        network's fingerprint and every file written, so the next writer can tell whose files these are.

        With `explorer` (and plotly installed: `pip install 'ctrnn-ensembles[explorer]'`) also `report.html`, the
        interactive explorer (`write_explorer`); without plotly it is skipped and `log` is told how to get it.

        The folder's lock (`ctrnn_jax.io` `folder_lock`) is held while writing: another writer of the folder (a
        `train --resume` of the run, another analysis) is refused with `FolderBusy`. The files are written as a
        set: the earlier `analysis.json` goes first, the new one is written last, and a marker of the write in
        progress lists them meanwhile, so that a write killed half-way is cleaned up by the folder's next writer
        and refused by `Analysis.load`, never read as a mix of two analyses."""
        from ..io._lock import lock_outputs
        from ..io._outputs import check_writable_folder

        with lock_outputs(folders=[check_writable_folder(out_dir, "`out_dir`")], what="Analysis.write", log=log):
            return self._write(
                Path(out_dir), fixed_points=fixed_points, overwrite=overwrite, explorer=explorer, log=log
            )

    def _write(self, out_dir: Path, *, fixed_points: bool, overwrite: bool, explorer: bool, log) -> Path:
        from ..io._fixed_point_files import fixed_point_config_path
        from ..io._lock import writing
        from ..io._outputs import check_output_folder
        from ..io._serialisation import fingerprint
        from ._explorer import EXPLORER

        network = fingerprint(self.ensemble)
        out = check_output_folder(out_dir, "analysis", network, overwrite=overwrite)
        names = (
            (
                ["fixed_points.npz"]
                if len(self.fixed_points) == 1
                else [f"fixed_points_{i}.npz" for i in range(len(self.fixed_points))]
            )
            if fixed_points
            else []
        )
        names += [fixed_point_config_path(out / "fixed_points.npz").name] if fixed_points and self.config else []
        with writing(out, files=[ANALYSIS, REPORT, EXPLORER, *names], dirs=["figures"]):
            (out / ANALYSIS).unlink(missing_ok=True)  # the earlier manifest first: never over the new files
            return self._write_files(out, network, names, explorer, log)

    def _write_files(self, out: Path, network: str, names: list, explorer: bool, log) -> Path:
        import matplotlib.pyplot

        from ._figure import save_figure

        figs = out / "figures"
        written = {}
        for name, fig in self.figures().items():
            written[name] = save_figure(fig, figs / name)
            matplotlib.pyplot.close(fig)  # written: free its memory (figures() draws new ones)
        files = [p.relative_to(out).as_posix() for paths in written.values() for p in paths]
        if names:
            names = [n for n in names if n.endswith(".npz")]
            for name, fp in zip(names, self.fixed_points):
                dataclasses.replace(fp, network=network).to_npz(out / name)
            files += names
            if self.config is not None:
                from ..io._fixed_point_files import fixed_point_config_path

                write_json(fixed_point_config_path(out / "fixed_points.npz"), self.config.to_dict())
                files.append(fixed_point_config_path(out / "fixed_points.npz").name)
        with atomic_write(out / REPORT, "w") as f:
            f.write(self.markdown(written, out))
        files.append(REPORT)
        if explorer:
            from ._explorer import EXPLORER, write_explorer

            try:
                write_explorer(self, out / EXPLORER)
                files.append(EXPLORER)
            except ImportError as e:
                (log or (lambda message: None))(f"{EXPLORER} skipped: {e}")
        write_json(out / ANALYSIS, {**self.to_dict(), "network": network, "files": files, "settings": _settings(self)})
        return out / REPORT

    @classmethod
    def load(cls, path: str | Path, *, ensemble=None, task=None) -> "Analysis":
        """Read back the analysis that `write` saved in the folder `path` (a run folder after `ctrnn-jax
        analyze`, or any `out_dir` of `write`), without computing anything again: no fixed-point search, no
        evaluation, no sweep.

        **Arguments:**

        - `path`: the folder holding `analysis.json` (or that file).
        - `ensemble`: the network analysed; by default the folder's `ensemble.npz`, else the run folder or
          `.npz` file the analysis records as its `source`. It must be the network analysed (its fingerprint).
        - `task`: the task; by default the one in the run folder's `config.json`, else the registered task of
          the recorded name with its defaults (pass `task` for a task with other settings and no run folder).

        What comes back: the evaluation, the fixed points (the `fixed_points*.npz` written with the analysis,
        else the run folder's when they belong to this network) and their `FixedPointConfig`, the memory states
        and their summary, the memory check (without its `states`, which `analysis.json` does not hold), the
        robustness sweep, the comparison of realizations, the `W_rec` spectra, the best member, the threshold
        and seed, and the training losses (`metrics.csv`) and initial `W_rec` (`config.json`) of the run folder
        where the analysis had them.

        Raises `FileNotFoundError` for a folder without `analysis.json`, and `ValueError` naming what is missing
        (the network analysed, its fixed points) or does not match.
        """
        return _load_analysis(cls, Path(path), ensemble=ensemble, task=task)


_CAPTIONS = {
    "task_samples": "Three training samples: inputs per channel, target overlaid (paper Fig. 3).",
    "connectivity": "Recurrent weights of the best member (paper Fig. 4 left).",
    "eigenvalues": "Eigenvalues of W_rec of the best member, before and after training (paper Fig. 4 right).",
    "spectra_members": "W_rec spectra across members (paper Fig. 5).",
    "test_set": "The test set with the best member's output (paper Fig. 6A).",
    "state_space": "The best member's activity in its top principal components, with its fixed points (paper Fig. 6C).",
    "fixed_point_spectra": "Jacobian eigenvalues at the best member's fixed points, by saddle index.",
    "realizations": "Several realizations in their own top-3 PCs (paper Fig. 7).",
    "training_curves": "Training loss per member; median highlighted.",
    "ensemble_overview": "Ensemble overview: test MSE, stable points, cube disparity, W_rec eigenvalues outside "
    "the unit circle.",
    "robustness": "Test MSE against input noise and pulse amplitude, every member.",
    "memory_lifetimes": "Memory lifetimes at rest (the memory check, the network's own dynamics): per member, how "
    "long each memory state's readout stays within the task's tolerance, in test-trial lengths; "
    "open triangles held for the whole horizon (censored).",
    "realization_similarity": "Pairwise Procrustes disparity of the memory states and linear CKA of the activity.",
    "test_trials": "Test trials of the best member: inputs, outputs and targets.",
}


def _shown_source(source: str, out_dir: str | Path | None) -> str:
    """The analysed network as the report names it: relative to the folder the report is written to (`.` for
    that folder itself, e.g. a run folder analysed in place), never an absolute path (its name where it lies
    on no path relative to the folder)."""
    import os

    path = Path(source)
    if out_dir is None or not path.exists():
        return path.name if path.is_absolute() else source
    try:
        return Path(os.path.relpath(path.resolve(), Path(out_dir).resolve())).as_posix()
    except ValueError:  # another drive
        return path.name


# The legend of report.md's per-member table: every column (a constant input's tag ` @i` aside).
LEGEND = {
    "member": "the member's index in the ensemble.",
    "test MSE": "the mean squared error of the member's readout on the task's test set.",
    "success": "the test metric reaches the success threshold (the flip-flop: test MSE < 0.02).",
    "margin": "how far the test MSE is below the success threshold, as a fraction of the threshold "
    "(`1 − MSE / threshold`; negative: above it). The robustness sweep measures the network together "
    "with this margin.",
    "fixed points": "distinct fixed points found at the constant input (exact: `q` below the search's tolerance).",
    "stable": "fixed points whose Jacobian has every eigenvalue inside the unit circle (attractors).",
    "saddles by index": "saddle points counted by their number of unstable eigenvalues: `a/b/c` are the "
    "index-1/2/3 saddles.",
    "slow": "slow points: states where the dynamics is slow (`q` below the slow tolerance) but not zero, whose "
    "readout drifts less than the task's tolerance over its longest hold; listed apart from the fixed "
    "points.",
    "memory states by mechanism": "the points that hold a memory (stable and marginal points, fixed and slow), "
    "grouped by the task's memory readouts and counted by mechanism: `attractor` (a "
    "stable point), `slow` (a slow point), `marginal m=k` (a marginal manifold of "
    "dimension k: k Jacobian eigenvalues at 1, a line (k = 1) or plane (k = 2) "
    "attractor).",
    "memory states held >= 1 trial": "the task's memories (the flip-flop: its 8 readout corners) the member reaches "
    "on the test set and holds at rest for at least one test trial, by its own "
    "dynamics (the memory check's lifetimes), of those the test set visits.",
    "memory states at fixed points": "the task's memories at which the member has a stable fixed point (the "
    "finder), of all of them.",
    "cube disparity": "Procrustes disparity between the member's stable points at the memory readouts and a cube "
    "(0: a perfect cube, 1: unrelated).",
    "memory check": "the memory check's verdict (the network's own dynamics, no finder): `attractors` every memory "
    "held for the whole horizon and small perturbations shrink; `marginal` held, a perturbation "
    "persists; `unstable` held, a perturbation grows; `long-lived` some memory lost within the "
    "horizon, every one held for at least one test trial; `short-lived` some memory lost within one "
    "trial (`drifts`: a check written before the lifetimes, some memory not held for the horizon).",
    "memory lifetime min / median (trials)": "the shortest and the median lifetime of the member's memories, in "
    "test-trial lengths: the time the readout stays within the task's "
    "tolerance at rest from the memory state; `>H` held for the whole "
    "horizon H (censored).",
    "W_rec eigenvalues outside the unit circle": "eigenvalues of the trained recurrent matrix with modulus above 1.",
}


def legend_markdown(header: list, analysis: "Analysis | None" = None) -> list[str]:
    """report.md's legend: one line per column of the per-member table, in its order (`LEGEND`; a task's own
    score, e.g. an accuracy, by the evaluation's metric name)."""
    lines = ["### Columns", ""]
    for name in header:
        base = re.sub(r" @\d+$", "", name)
        text = LEGEND.get(base)
        if text is None:  # the task's own metric beside the test MSE
            text = "the task's own score on its test set (its metric), beside the test MSE."
        tag = "" if base == name else f" (at constant input {name.rsplit('@', 1)[1]})"
        lines.append(f"- **{name}**: {text}{tag}")
    return lines + [""]


def training_summary(run_dir: str | Path, network: str | None = None, losses=None) -> dict | None:
    """How a run folder's training ended, from its `eval.json` (the training record, written since #31, and the
    per-member `criterion_step`, `restarts`, `frozen`) and `config.json` (the settings, for an older `eval.json`);
    None without them, or when `eval.json` records another network than `network`. `losses`: `(S, K)` from
    `metrics.csv`, for the steps an older record lacks."""
    import json

    from ..io._outputs import CONFIG, EVAL
    from ..io._run_config import read_config

    run_dir = Path(run_dir)
    if not (run_dir / EVAL).is_file():
        return None
    try:
        ev = json.loads((run_dir / EVAL).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(ev, dict) or (network is not None and ev.get("network") not in (None, network)):
        return None
    record = dict(ev.get("training") or {})
    if not record and (run_dir / CONFIG).is_file():  # an eval.json written before the training record
        t = read_config(run_dir).train
        record = {
            "max_steps": t.steps,
            "stop_mse": t.stop_mse,
            "stop_margin": t.stop_margin,
            "criterion": t.criterion,
            "restart_after": t.restart_after,
        }
        if losses is not None:
            record["steps"] = int(np.asarray(losses).shape[0])
    for name in ("criterion_step", "restarts", "frozen"):
        if name in ev:
            record[name] = ev[name]
    return record or None


def training_markdown(training: dict | None, n_members: int) -> list[str]:
    """report.md's `## Training` section: steps, the criterion and margin, how many members met it and when,
    restarts, frozen members, wall time (nothing without a record)."""
    if not training:
        return []
    t = training
    parts = []
    steps, most = t.get("steps"), t.get("max_steps")
    if steps is not None:
        parts.append(f"{steps} steps" + (f" of at most {most}" if most is not None else ""))
    elif most is not None:
        parts.append(f"at most {most} steps")
    met = [int(v) for v in t.get("criterion_step") or []]
    if t.get("criterion") is not None:
        margin = float(t.get("stop_margin") or 0.0)
        parts.append(
            f"to criterion: held-out MSE < {t['criterion']:.4g}"
            + (
                f" (the threshold {t['stop_mse']:g} less a margin of {100 * margin:.0f} %)"
                if margin
                else f" (the threshold {t['stop_mse']:g}, no margin)"
                if t.get("stop_mse") is not None
                else ""
            )
        )
        if met:
            reached = [v for v in met if v >= 0]
            parts.append(
                f"{len(reached)} of {len(met)} members met it"
                + (f", at steps {min(reached)}–{max(reached)}" if reached else "")
            )
    else:
        parts.append("no criterion (every step trained)")
    restarts = [int(v) for v in t.get("restarts") or []]
    parts.append(
        f"{sum(restarts)} restart(s) of dead starts"
        + (f" (members {[k for k, r in enumerate(restarts) if r]})" if sum(restarts) else "")
    )
    frozen = [k for k, f in enumerate(t.get("frozen") or []) if f]
    if frozen:
        parts.append(f"members {frozen} frozen after a non-finite loss")
    if t.get("wall_s") is not None:
        sessions = int(t.get("sessions", 1))
        parts.append(
            f"wall time {float(t['wall_s']):.0f} s of training (compiles included"
            + (f", over {sessions} sessions" if sessions > 1 else "")
            + ")"
        )
    lines = ["## Training", "", "Training: " + "; ".join(parts) + ".", ""]
    if met or restarts:
        lines += ["| member | criterion step | restarts |", "|---|---|---|"]
        for k in range(n_members):
            step = met[k] if k < len(met) else None
            lines.append(
                f"| {k} | {'–' if step is None or step < 0 else step} | {restarts[k] if k < len(restarts) else '–'} |"
            )
        lines += [
            "",
            "*criterion step*: the training step at which the member first met the criterion; it is "
            "held there (its weights those that met it) from then on (– never met). *restarts*: times the "
            "member was re-initialised as a dead start.",
            "",
        ]
    return lines


def _margin_sentence(analysis: "Analysis") -> list[str]:
    """What the robustness sweep is measured against: the criterion the members were trained to and their test
    margins below the success threshold."""
    ev, t = analysis.evaluation, analysis.training or {}
    if ev is None or ev.get("metric_name", "mse") != "mse":
        return []
    threshold = float(ev["threshold"])
    margins = 100 * (1 - np.asarray(ev["mse"], np.float64) / threshold)
    trained = ""
    if t.get("criterion") is not None:
        trained = (
            f"The members were trained to held-out MSE < {t['criterion']:.4g} (a margin of "
            f"{100 * float(t.get('stop_margin') or 0):.0f} % below the success threshold {threshold:g}); "
        )
    return [
        trained + f"their test MSE is {np.nanmin(margins):.0f}–{np.nanmax(margins):.0f} % below the threshold "
        f"(median {np.nanmedian(margins):.0f} %, column *margin*). A success rate below 1 at a level measures "
        "the network together with that margin.",
        "",
    ]


def _robust_scales(robustness: dict | None, n_members: int) -> list:
    """Per member: the robustness sweep's smallest pulse-amplitude scale from which on the member succeeds at
    every larger scale of the sweep (None: it fails at the largest, or there is no sweep)."""
    if robustness is None:
        return [None] * n_members
    scales = np.asarray(robustness["amplitude_scales"], np.float64)
    ok = np.asarray(robustness["amplitude_success"], bool)  # (A, K)
    order = np.argsort(scales)
    out: list = []
    for k in range(n_members):
        best = None
        for a in order[::-1]:  # from the largest scale down, while the member succeeds
            if not ok[a, k]:
                break
            best = float(scales[a])
        out.append(best)
    return out


# the continuation of `analyze`'s switching amplitudes: coarser than `pulse_switching`'s defaults, its fine pass
# over each fold sharing the first pass's compile (on the suite's flip-flop ensemble the per-channel smallest and
# median c* within 7e-5 of the defaults', the same memories never removed; see docs/linearization.md), to keep the
# analysis cheap
SWITCHING_CONTINUATION: dict[str, Any] = {
    "max_steps": 20,
    "ds": 0.1,
    "ds_max": 0.4,
    "refine": "shared",
}


def _probe_key(seed: int, i: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), 1000 + i)


def _mechanisms(counts: dict) -> str:
    """`{mechanism: count}` as a short cell: `8 attractor`, `8 marginal m=1`, or `–`."""
    short = {name: name.replace("marginal manifold of dimension ", "marginal m=") for name in counts}
    return ", ".join(f"{n} {short[name]}" for name, n in counts.items()) or "–"


def _spread_trials(labels, n: int = 6) -> np.ndarray:
    """Up to `n` test trials alternating between the groups `labels (B,)` (the task's `trial_groups`), so that
    every group is shown."""
    labels = np.asarray(labels)
    groups = [np.flatnonzero(labels == a) for a in sorted(set(labels.tolist()))]
    picked = [g[i] for i in range(n) for g in groups if i < len(g)][:n]
    return np.asarray(picked, int)


def analyze(
    ensemble,
    task=None,
    *,
    config: FixedPointConfig | None = None,
    inputs=None,
    fixed_points=None,
    threshold: float | None = None,
    losses=None,
    initial_W_rec=None,
    seed: int = 0,
    source: str = "ensemble",
    robustness: bool = True,
    training: dict | None = None,
    log=None,
) -> Analysis:
    """Analyse an ensemble on its task (or without one): the one analysis of every network, task and cell.

    **Arguments:**

    - `ensemble`: a stacked ensemble of `K` networks (any cell), or one network.
    - `task`: a task object (its sizes must be the ensemble's), or None (a network without a task).
    - `config`: the `FixedPointConfig` of the fixed-point stage (default `FixedPointConfig(seed=seed)`).
    - `inputs`: constant inputs of the fixed points, `(M,)` or `(P, M)`; default the task's
      `fixed_point_inputs()` (zeros without a task).
    - `fixed_points`: fixed points found before (a `FixedPoints`, or one per constant input) instead of a
      new search; they must belong to this ensemble.
    - `threshold`: the success threshold on the task's metric (None: the task's own `success_threshold()`, e.g.
      test MSE < 0.02 for the flip-flop); the memory check and the robustness sweep of a task with memory states
      use it as their MSE threshold when the metric is an error, else the square of the task's
      `readout_tolerance()`.
    - `losses`: `(S, K)` training losses for the training-curve figure, or None.
    - `initial_W_rec`: the best member's `W_rec` before training, drawn in the eigenvalue figure, or None.
    - `seed`: seed of the sampled trials (figures and robustness).
    - `source`: the name shown in the report.
    - `robustness`: run the robustness sweep (tasks with memory states and `pulse_robustness`: the flip-flop).
    - `training`: how training ended, for the report (`training_summary` of a run folder), or None.
    - `log`: None or a function of one string, told what is being done.

    **Returns:** an `Analysis`: `print` it or show it in a notebook, `.figures()` for the Figures,
    `.write(out_dir)` for the files.
    """
    from .._checks import check_seed
    from ..io._eval import evaluate_run
    from ..io._run_config import RunConfig
    from ._analysis import compare_realizations, robustness_sweep

    check_seed("seed", seed)
    ensemble = as_ensemble(ensemble)
    k = ensemble.W_out.shape[0]
    say = log or (lambda message: None)
    if task is not None:
        check_task(task)
        if (task.n_inputs, task.n_outputs) != (ensemble.n_inputs, ensemble.n_outputs):
            raise ValueError(
                f"the {task.name} task has {task.n_inputs} input(s) and {task.n_outputs} output(s); the "
                f"ensemble has M = {ensemble.n_inputs} and O = {ensemble.n_outputs}."
            )
    if losses is not None:
        losses = np.asarray(losses, np.float64)
        if losses.ndim != 2 or losses.shape[1] != k:
            raise ValueError(f"`losses` must have shape (S, {k}), got {losses.shape}.")
    config = FixedPointConfig(seed=seed) if config is None else config
    evaluation = None if task is None else evaluate_run(ensemble, RunConfig(task=task, threshold=threshold))
    if evaluation is not None:
        threshold = evaluation["threshold"]  # the one in effect
    # with a task, `threshold` is the evaluation's (never None)
    mse_threshold = (
        0.02 if task is None else cast(float, threshold) if not task.higher_is_better else task.readout_tolerance() ** 2
    )
    if fixed_points is None:
        found = tuple(fixed_point_stage(ensemble, task, inputs=inputs, config=config, log=say))
    else:
        found = (fixed_points,) if isinstance(fixed_points, FixedPoints) else tuple(fixed_points)
        expected = constant_inputs(ensemble, task, inputs)
        if len(found) != len(expected):
            raise ValueError(f"`fixed_points`: {len(found)} given for {len(expected)} constant input(s).")
        from ..io._serialisation import fingerprint

        network = fingerprint(ensemble)
        for fp in found:
            matching(ensemble, fp)
            if fp.network is not None and fp.network != network:
                raise ValueError(
                    f"`fixed_points` were found for another network (fingerprint {fp.network}; this "
                    f"ensemble's is {network}): e.g. before training went on. Leave `fixed_points` "
                    "out to find them again."
                )
    memory = has_memory_states(task)
    memory_states, memory_summary = memory_state_analysis(ensemble, task, found[0]) if memory else (None, None)
    check = None
    if memory:
        say("memory check ...")
        check = memory_check(ensemble, task, threshold=mse_threshold, key=jax.random.fold_in(jax.random.key(seed), 3))
    states = tuple(group_memory_states(fp, readouts=task.memory_readouts() if memory else None) for fp in found)
    outside = radius = None
    if ensemble.recurrent_matrix is not None:
        moduli = np.abs(np.linalg.eigvals(np.asarray(ensemble.recurrent_matrix, np.float64)))
        outside, radius = np.sum(moduli > 1, axis=1), moduli.max(axis=1)
    best = 0 if evaluation is None else int(np.argmax(ranking_score(evaluation)))
    sweep = comparison = None
    if memory and robustness and task.pulse_robustness:
        say("robustness sweep ...")
        sweep = robustness_sweep(
            ensemble, key=jax.random.fold_in(jax.random.key(seed), 2), config=task, threshold=mse_threshold
        )
    if memory:
        test_inputs, test_targets, _ = task.test_set()
        comparison = compare_realizations(ensemble, found[0], inputs=test_inputs, targets=test_targets)
    switching = selection = None
    if memory:
        say("switching amplitudes ...")
        switching = pulse_switching(ensemble, task, found[0], simulate=False, **SWITCHING_CONTINUATION)
    relevant = None if task is None else task.relevant_inputs()
    if relevant is not None and len(relevant) == len(found):  # one cued channel per constant input (context)
        say("selection vectors ...")
        selection = selection_analysis(ensemble, task, list(found))
    return Analysis(
        ensemble=ensemble,
        task=task,
        source=str(source),
        evaluation=evaluation,
        fixed_points=found,
        memory_states=memory_states,
        memory_summary=memory_summary,
        W_rec_outside=outside,
        spectral_radius=radius,
        best=best,
        losses=losses,
        initial_W_rec=initial_W_rec,
        robustness=sweep,
        realizations=comparison,
        threshold=mse_threshold,
        seed=seed,
        config=config if fixed_points is None else None,
        memory_check=check,
        memory=states,
        training=training,
        switching=switching,
        selection=selection,
    )


def task_fixed_points(ensemble, task, *, inputs=None, config: FixedPointConfig | None = None, log=None) -> list:
    """`[(input (M,), FixedPoints), ...]`: `fixed_point_stage` at each of the task's constant inputs (or
    `inputs`), as pairs."""
    return [
        (np.asarray(fp.inputs[0]), fp)
        for fp in fixed_point_stage(ensemble, task, inputs=inputs, config=config, log=log)
    ]


# ----------------------------------------------------------------------------------------------------
# Analysis.load: what `write` saved, read back
# ----------------------------------------------------------------------------------------------------


def _settings(analysis: "Analysis") -> dict:
    """What `analysis.json` records beside `to_dict()` so that `Analysis.load` restores the analysis."""
    return {
        "seed": analysis.seed,
        "threshold": analysis.threshold,
        "losses": analysis.losses is not None,
        "initial_W_rec": analysis.initial_W_rec is not None,
    }


def initial_W_rec(run_config) -> np.ndarray:
    """`(K, ...)` the `W_rec` a run's members started from: the ensemble its `EnsembleConfig` builds from the
    trainer's model key (the first half of `jax.random.key(train.seed)`)."""
    from ..training._ensemble import make_ensemble

    k_model, _ = jax.random.split(jax.random.key(run_config.train.seed))
    return np.asarray(make_ensemble(run_config.ensemble, key=k_model).W_rec)


def _nan(v):
    return math.nan if v is None else v


def _analysed_network(folder: Path, data: dict, ensemble):
    """`(ensemble, run_dir)`: the network analysed (given, the folder's `ensemble.npz`, or the recorded
    source), checked against the recorded fingerprint; `run_dir` the run folder it came from, or None."""
    from ..io._outputs import CONFIG, ENSEMBLE
    from ..io._serialisation import fingerprint, load_npz

    network = data.get("network")
    if ensemble is not None:
        ensemble = as_ensemble(ensemble)
        if network is not None and fingerprint(ensemble) != network:
            raise ValueError(
                f"{folder}: `ensemble` is not the network analysed (fingerprint {fingerprint(ensemble)}; "
                f"analysis.json records {network})."
            )
        return ensemble, (folder if (folder / CONFIG).is_file() else None)
    source = Path(str(data.get("source", "")))
    tried, other = [], []
    for place in dict.fromkeys([folder, source, folder / source]):
        npz = place / ENSEMBLE if place.is_dir() else place
        if npz.suffix != ".npz" or not npz.is_file():
            continue
        tried.append(str(npz))
        try:
            found = load_npz(npz)
        except (ValueError, OSError, TypeError):
            continue
        if network is None or fingerprint(found) == network:
            return found, (place if place.is_dir() and (place / CONFIG).is_file() else None)
        other.append(str(npz))
    where = f" ({', '.join(other)} holds other weights, e.g. trained further since)" if other else ""
    raise ValueError(
        f"{folder}: the network analysed is not found: no ensemble.npz of it here or at its source "
        f"{str(source)!r}{where}. Pass `ensemble=`."
    )


def _analysed_task(folder: Path, data: dict, ensemble, task, run_config):
    name = data.get("task")
    if task is not None:
        check_task(task)
        if task.name != name:
            raise ValueError(
                f"{folder}: the analysis is of the {name or 'network without a'} task; `task` is the {task.name} task."
            )
        return task
    if name is None:
        return None
    if run_config is not None:
        return run_config.task
    from ..io._run import task_for_ensemble

    try:
        return task_for_ensemble(ensemble, name)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{folder}: the analysis is of the {name} task and no run folder records its settings ({e}); pass `task=`."
        ) from None


def _saved_fixed_points(folder: Path, run_dir: Path | None, data: dict, network: str | None) -> tuple:
    """The `FixedPoints` per constant input: the analysis folder's `fixed_points*.npz`, else the run folder's,
    whichever belong to this network and were found at the recorded inputs."""
    recorded = data.get("fixed_points") or []
    names = ["fixed_points.npz"] if len(recorded) == 1 else [f"fixed_points_{i}.npz" for i in range(len(recorded))]
    for place in dict.fromkeys(p for p in (folder, run_dir) if p is not None):
        if not names or not all((place / n).is_file() for n in names):
            continue
        try:
            found = tuple(FixedPoints.from_npz(place / n) for n in names)
        except ValueError:
            continue
        if all(
            fp.network in (None, network)
            and fp.n_members == data.get("members")
            and np.allclose(fp.inputs[0], np.asarray(r["input"], np.float64), atol=1e-6)
            for fp, r in zip(found, recorded)
        ):
            return found
    raise ValueError(
        f"{folder}: no fixed points of the network analysed ({', '.join(names) or 'none recorded'}); "
        "the analysis was written without them (`write(..., fixed_points=False)`) and its run folder "
        "has none of this network. Write the analysis with its fixed points."
    )


def _cube_member(d: dict) -> dict:
    return {
        **d,
        "n_saddles": {int(i): n for i, n in d["n_saddles"].items()},
        "cube_disparity": _nan(d["cube_disparity"]),
    }


def _cube_summary(s: dict | None) -> dict | None:
    if s is None:
        return None
    out = {
        k: _nan(v) if k.startswith(("mean_", "cube_disparity")) and not isinstance(v, dict) else v for k, v in s.items()
    }
    out["mean_saddles_by_index"] = {int(i): _nan(v) for i, v in s.get("mean_saddles_by_index", {}).items()}
    return out


def _evaluation(ev: dict | None) -> dict | None:
    if ev is None:
        return None
    return {
        k: [_nan(x) for x in v] if k in ("mse", "metric", "norm") and isinstance(v, list) else v for k, v in ev.items()
    }


def _load_analysis(cls, folder: Path, *, ensemble=None, task=None) -> "Analysis":
    import json

    from ..dynamics._behaviour import MemoryCheck
    from ..dynamics._memory_states import MemoryStates
    from ..io._fixed_point_files import fixed_point_config_path
    from ..io._lock import check_complete
    from ..io._metrics import read_losses
    from ..io._outputs import CONFIG, METRICS, listed_files
    from ..io._run_config import read_config
    from ._analysis import memory_state_points

    if folder.name == ANALYSIS and folder.is_file():
        folder = folder.parent
    check_complete(folder, "its analysis files")  # a write in progress, or killed half-way: not a mix of two
    if not (folder / ANALYSIS).is_file():
        raise FileNotFoundError(
            f"{folder}: no {ANALYSIS}; not an analysis folder (write one with `Analysis.write` or `ctrnn-jax analyze`)."
        )
    try:
        data = json.loads((folder / ANALYSIS).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{folder / ANALYSIS}: unreadable ({e}).") from None
    if not isinstance(data, dict) or not {"source", "best_member", "fixed_points"} <= set(data):
        raise ValueError(f"{folder / ANALYSIS}: not an analysis (no source, best_member or fixed_points).")
    listed_files(folder, ANALYSIS)  # its `files` name only files of ours inside the folder, or it is refused
    ensemble, run_dir = _analysed_network(folder, data, ensemble)
    run_config = read_config(run_dir) if run_dir is not None and (run_dir / CONFIG).is_file() else None
    task = _analysed_task(folder, data, ensemble, task, run_config)
    found = _saved_fixed_points(folder, run_dir, data, data.get("network"))
    files = set(data.get("files", []))
    settings = data.get("settings") or {}
    evaluation = _evaluation(data.get("eval"))
    fp_config = fixed_point_config_path(folder / "fixed_points.npz")
    config = FixedPointConfig.from_dict(json.loads(fp_config.read_text())) if fp_config.name in files else None
    best = int(data["best_member"])
    if "threshold" in settings:
        threshold = float(settings["threshold"])
    elif evaluation is not None and not higher_is_better(evaluation):  # written before "settings": the error's
        threshold = float(evaluation["threshold"])
    else:  # the memory analyses' MSE threshold before #29
        threshold = 0.02
    seed = int(settings.get("seed", config.seed if config is not None else 0))
    k = ensemble.W_out.shape[0]
    losses = None
    if (
        settings.get("losses", "figures/training_curves.png" in files)
        and run_dir is not None
        and (run_dir / METRICS).is_file()
    ):
        losses = read_losses(run_dir / METRICS, k)
    initial = None
    if settings.get("initial_W_rec") and run_config is not None and ensemble.recurrent_matrix is not None:
        initial = initial_W_rec(run_config)[best]
    cube = data.get("memory_states")
    w = data.get("W_rec")
    realizations = None
    if "procrustes" in data and "cka" in data:
        realizations = {
            "procrustes": np.asarray(data["procrustes"], np.float64),
            "cka": np.asarray(data["cka"], np.float64),
            "points": memory_state_points(found[0], ensemble),
            "source": "fixed_points",
        }
    robustness = None
    if data.get("robustness") is not None:
        robustness = {
            name: np.asarray(v, bool if name.endswith("_success") else np.float64)
            for name, v in data["robustness"].items()
        }
    return cls(
        ensemble=ensemble,
        task=task,
        source=str(data["source"]),
        evaluation=evaluation,
        fixed_points=found,
        memory_states=None if cube is None else [_cube_member(d) for d in cube["per_member"]],
        memory_summary=None if cube is None else _cube_summary(cube["summary"]),
        W_rec_outside=None if w is None else np.asarray(w["outside_unit_circle"], np.int64),
        spectral_radius=None if w is None else np.asarray(w["spectral_radius"], np.float64),
        best=best,
        losses=losses,
        initial_W_rec=initial,
        robustness=robustness,
        realizations=realizations,
        threshold=threshold,
        seed=seed,
        config=config,
        memory_check=None if data.get("memory_check") is None else MemoryCheck.from_dict(data["memory_check"]),
        memory=None if data.get("memory") is None else tuple(MemoryStates.from_dict(m) for m in data["memory"]),
        training=data.get("training"),
        switching=None if data.get("switching") is None else Switching.from_dict(data["switching"]),
        selection=None if data.get("selection") is None else Selection.from_dict(data["selection"]),
    )


__all__ = ["Analysis", "analyze", "has_memory_states", "task_fixed_points", "training_summary"]
