"""`report.html`: an interactive, self-contained explorer of an `Analysis` (plotly; an optional extra).

The page opens from the file system with no network (plotly.js is inlined: about 4.7 MB, once per page):

- the state space of one member in its top 3 principal components, rotatable and zoomable: the test-set
  trajectories coloured by the target the network holds at each time (the flip-flop's memory states; by
  trial for tasks with more than 6 outputs), the fixed points by stability and
  saddle index, hover showing each point's index, speed q, readout and leading eigenvalues; a legend
  toggles each group;
- a member selector (`<select id="member">`) that shows one member at a time in both plots;
- the topology graph of the selected member: stable points (nodes, labelled by their readout) joined by
  the index-1 saddles between them, drawn in the same three PCs;
- the summary tables of the analysis.

`pip install 'ctrnn-ensembles[explorer]'` installs plotly; without it `explorer_html` raises an ImportError that
says so, and `ctrnn-jax analyze` writes everything else and says in one line how to get the explorer.
"""

import html
import json

import numpy as np

from ..dynamics._fixed_point_set import FixedPoints
from ..training._evaluate import ensemble_states
from ._figure import pca_projection

INSTALL = "pip install 'ctrnn-ensembles[explorer]' (or pip install plotly)"
EXPLORER = "report.html"
_SADDLE_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _plotly():
    try:
        import plotly.graph_objects as go
        import plotly.offline
    except ImportError:
        raise ImportError(f"the interactive explorer (report.html) needs plotly: {INSTALL}.") from None
    return go, plotly.offline


def _trajectories(analysis) -> tuple[np.ndarray | None, dict]:
    """`(states (K, B, T, N), segments)` of the task's test set: `segments` maps a label, the target the
    network should be holding (`state (+1, -1, +1)` for the flip-flop's memory states; per trial for tasks
    with more than 6 outputs), to its `(trial, start, stop)` stretches. `(None, {})` without a task."""
    task = analysis.task
    if task is None:
        return None, {}
    inputs, targets, _ = (np.asarray(a) for a in task.test_set())
    states = np.asarray(ensemble_states(analysis.ensemble, inputs))
    segments: dict[str, list] = {}
    for b in range(targets.shape[0]):
        if targets.shape[-1] > 6:
            segments.setdefault(f"trial {b}", []).append((b, 0, targets.shape[1]))
            continue
        codes = np.rint(targets[b]).astype(int)
        change = np.flatnonzero(np.any(codes[1:] != codes[:-1], axis=1)) + 1
        bounds = [0, *change.tolist(), targets.shape[1]]
        for t0, t1 in zip(bounds[:-1], bounds[1:]):
            label = "target (" + ", ".join(f"{v:+d}" if v else "0" for v in codes[t0]) + ")"
            segments.setdefault(label, []).append((b, t0, min(t1 + 1, targets.shape[1])))  # joined to the next
    return states, dict(sorted(segments.items()))


def _hover(fp: FixedPoints, rows: np.ndarray) -> list[str]:
    text = []
    for p in rows:
        lead = ", ".join(f"{abs(v):.3f}" for v in fp.eigvals[p][:3])
        out = ", ".join(f"{v:.2f}" for v in np.asarray(fp.outputs[p]).ravel()[:6])
        kind = "stable" if fp.n_unstable[p] == 0 else f"saddle, index {int(fp.n_unstable[p])}"
        text.append(f"{kind}<br>q = {fp.q[p]:.2e}<br>readout [{out}]<br>leading |λ|: {lead}")
    return text


def explorer_figures(analysis, *, members=None, graphs: bool = True):
    """The two plotly figures of the explorer (state space, topology graph) and, per trace, the member it
    belongs to: `(state_space, graph, owners_3d, owners_graph, members)`.

    `members`: which members to include (default: the best, then the others in order, up to 16)."""
    go, _ = _plotly()
    k = analysis.n_members
    if members is None:  # the best member first
        members = [int(analysis.best), *(m for m in range(k) if m != analysis.best)][:16]
    fp = analysis.fixed_points[0]
    states, segments = _trajectories(analysis)
    n = analysis.ensemble.n_units
    space, graph = go.Figure(), go.Figure()
    owners_3d, owners_graph = [], []
    topology = None
    if graphs and fp.n_members and np.any(fp.n_unstable == 1):
        from ..dynamics._topology import topology_graph

        topology = topology_graph(analysis.ensemble, fp)
    for m in members:
        rows = np.flatnonzero(fp.member == m)
        points = np.asarray(fp.points[rows])[:, :n]  # the hidden part (an LSTM's state is [h, c])
        basis = states[m].reshape(-1, n) if states is not None else points
        if basis.shape[0] < 2:
            basis = np.vstack([basis, np.zeros((2, n))])
        mean, top = pca_projection(basis, min(3, n))
        comps = np.vstack([top, np.zeros((3 - top.shape[0], n))])  # N < 3: the missing axes are zero

        def project(x):
            return (np.asarray(x, np.float64) - mean) @ comps.T

        visible = m == members[0]
        if states is not None:
            for label, stretches in segments.items():
                xs, ys, zs = [], [], []
                for b, t0, t1 in stretches:
                    pc = project(states[m, b, t0:t1])
                    xs += [*pc[:, 0], None]
                    ys += [*pc[:, 1], None]
                    zs += [*pc[:, 2], None]
                space.add_trace(
                    go.Scatter3d(
                        x=xs,
                        y=ys,
                        z=zs,
                        mode="lines",
                        name=label,
                        legendgroup=label,
                        visible=visible,
                        line={"width": 3},
                        hoverinfo="name",
                    )
                )
                owners_3d.append(m)
        index = np.asarray(fp.n_unstable[rows])
        for i in np.unique(index):
            sel = rows[index == i]
            pc = project(np.asarray(fp.points[sel])[:, :n])
            name = "stable points" if i == 0 else f"saddles, index {int(i)}"
            colour = "#1f77b4" if i == 0 else _SADDLE_COLOURS[(int(i) - 1) % len(_SADDLE_COLOURS)]
            space.add_trace(
                go.Scatter3d(
                    x=pc[:, 0],
                    y=pc[:, 1],
                    z=pc[:, 2],
                    mode="markers",
                    name=name,
                    legendgroup=name,
                    visible=visible,
                    marker={"size": 5 if i == 0 else 3, "color": colour, "symbol": "circle" if i == 0 else "diamond"},
                    text=_hover(fp, sel),
                    hovertemplate="%{text}<extra>" + name + "</extra>",
                )
            )
            owners_3d.append(m)
        if topology is not None:
            g = topology[m]
            nodes = project(np.asarray(g.points)[:, :n]) if g.n_nodes else np.zeros((0, 3))
            ex, ey, ez = [], [], []
            for a, b in g.edges:
                ex += [nodes[a, 0], nodes[b, 0], None]
                ey += [nodes[a, 1], nodes[b, 1], None]
                ez += [nodes[a, 2], nodes[b, 2], None]
            graph.add_trace(
                go.Scatter3d(
                    x=ex,
                    y=ey,
                    z=ez,
                    mode="lines",
                    name="index-1 saddles",
                    visible=visible,
                    line={"color": "#999999", "width": 4},
                    hoverinfo="skip",
                )
            )
            node_text = ["(" + ", ".join(str(int(v)) for v in row) + ")" for row in g.labels]
            graph.add_trace(
                go.Scatter3d(
                    x=nodes[:, 0],
                    y=nodes[:, 1],
                    z=nodes[:, 2],
                    mode="markers",
                    name="memory states",
                    visible=visible,
                    text=node_text,
                    marker={"size": 6, "color": "#1f77b4"},
                    hovertemplate="readout label %{text}<extra>stable point</extra>",
                )
            )
            owners_graph += [m, m]
    space.update_layout(
        height=650,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        legend={"itemsizing": "constant"},
        scene={"xaxis_title": "PC 1", "yaxis_title": "PC 2", "zaxis_title": "PC 3"},
        title="State space (top 3 PCs of the member's test-set activity)",
    )
    graph.update_layout(
        height=550,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        showlegend=True,
        scene={"xaxis_title": "PC 1", "yaxis_title": "PC 2", "zaxis_title": "PC 3"},
        title="Topology graph: stable points joined by index-1 saddles",
    )
    return space, graph, owners_3d, owners_graph, members


_SCRIPT = """
(function () {
  var owners = %(owners)s;
  function show(member) {
    for (var id in owners) {
      var div = document.getElementById(id);
      if (!div || !div.data) continue;
      var vis = owners[id].map(function (m) { return m === member; });
      if (vis.length) Plotly.restyle(div, {visible: vis});
    }
    document.getElementById('member').dataset.shown = String(member);
  }
  document.getElementById('member').addEventListener('change', function (e) { show(Number(e.target.value)); });
  window.ctrnnExplorer = {show: show, owners: owners};
})();
"""


def explorer_html(analysis, *, members=None) -> str:
    """The explorer page of an `Analysis` as one self-contained HTML string (see the module docstring)."""
    go, offline = _plotly()
    space, graph, owners_3d, owners_graph, members = explorer_figures(analysis, members=members)
    parts = [space.to_html(full_html=False, include_plotlyjs=False, div_id="state-space")]
    owners = {"state-space": owners_3d}
    if owners_graph:
        parts.append(graph.to_html(full_html=False, include_plotlyjs=False, div_id="topology-graph"))
        owners["topology-graph"] = owners_graph
    else:
        parts.append('<p id="topology-graph-missing">No topology graph: no index-1 saddle was found.</p>')
    options = "".join(f'<option value="{m}">member {m}</option>' for m in members)
    tables = analysis._repr_html_() if hasattr(analysis, "_repr_html_") else ""
    title = html.escape(f"ctrnn_jax analysis: {analysis.source}")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<script type="text/javascript">{offline.get_plotlyjs()}</script>
<style>body {{ font-family: sans-serif; margin: 1em 2em; }} table {{ border-collapse: collapse; }}
td, th {{ padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: right; }}</style>
</head><body>
<h1>{title}</h1>
<p><label for="member">Member: </label><select id="member" data-shown="{members[0]}">{options}</select>
 (best first; the legend toggles trajectories by memory state and fixed points by kind)</p>
{parts[0]}
{parts[1]}
<h2>Summary</h2>
{tables}
<script type="text/javascript">{_SCRIPT % {"owners": json.dumps(owners)}}</script>
</body></html>
"""


def write_explorer(analysis, path, *, members=None):
    """Write `explorer_html` to `path` atomically; returns the path."""
    from pathlib import Path

    from .._files import atomic_write

    path = Path(path)
    text = explorer_html(analysis, members=members)
    with atomic_write(path, "w") as f:
        f.write(text)
    return path


__all__ = ["EXPLORER", "INSTALL", "explorer_figures", "explorer_html", "write_explorer"]
