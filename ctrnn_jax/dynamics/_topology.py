"""The fixed-point topology of a network: which attractors its saddles connect (Maheswaranathan et al. 2019).

For every saddle of every member, the one-step map `F` is iterated from the saddle plus a small step
`eps` along `Σ_i s_i v_i / √d` for every sign pattern `s ∈ {±1}^d` of its `d` unstable eigenvectors
`v_i` (real part, unit norm; for an index-1 saddle: plus and minus `v`), until the state stops moving
or `max_steps` steps have run; each branch then reaches the member's memory state (`memory_states`) with
the nearest point, if that point is within `match_tol`. A member with a marginal memory state runs its
branches for `hold_steps` steps (the task's longest hold) instead of waiting for them to settle: on a
marginal manifold a state never quite stops, and where it ends after a hold is what the network
remembers. All branches of all saddles of all members run in one compiled function (`vmap` over members
and branches, `lax.while_loop` over chunks of steps), matching on the host.

The graph of member `k` (`MemberGraph`):

- **nodes**: its memory states (clusters of stable and marginal points, `memory_states`; for a network
  whose memory states are all attractors, its stable points), each at its point of least `q`, labelled
  by its readout rounded to a grid of step `resolution` (the flip-flop: the level −1, 0, +1 of each bit;
  the 8 memory states are the sign patterns);
- **edges**: its index-1 saddles whose two branches reach two different memory states (marginal saddles,
  points of one manifold of saddles, give one edge per pair of states);
- **higher saddles**: for index `d >= 2`, the set of stable points its `2^d` branches reach (the
  unstable manifold is `d`-dimensional; one branch into each of its orthants: a branch along a single
  eigenvector can end on a lower saddle, e.g. in a network of decoupled units).

Distances between two graphs (of any two networks, of any sizes and cells):

- `topology_distance`: the labelled one, `|A Δ B| / |A ∪ B|` over the multisets of labelled edges
  (node-label pairs); on the node labels when neither graph has an edge.
- `graph_spectrum_distance`: label-free, `‖s_A − s_B‖ / (‖s_A‖ + ‖s_B‖)` for the sorted spectra
  `s` of `L + I` (`L` the graph Laplacian; zero-padded, so graphs of different sizes differ).
- `linearization_distance`: the leading continuous-time rates `Re (λ − 1)/a` of the Jacobian at the
  stable points and index-1 saddles matched by label, mean absolute difference.

All three are undefined (NaN) when either graph has no node: a network without memory states has no
arrangement of them to compare (neither 0 between two such networks nor 1 against a full graph).
"""

import collections
import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int, check_positive
from .._files import jsonable
from .._results import Result
from ._fixed_point_set import FixedPoints
from ._fixed_points import _pad_pow2, matching, member_dt_tau, pairwise_distances
from ._memory_states import MemoryStates, memory_states


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class MemberGraph(Result):
    """The topology graph of one network (NumPy arrays, `V` nodes, `E` edges).

    **Fields:**

    - `labels`: `(V, O)` int, each node's (memory state's) readout on the label grid.
    - `outputs`: `(V, O)` the readouts themselves; `points`: `(V, S)` the nodes' points (each memory
      state's point of least `q`: the stable point of an attractor).
    - `edges`: `(E, 2)` int, node indices joined by each index-1 saddle (smaller index first).
    - `saddles`: `(E, S)` the saddle of each edge.
    - `node_rates`, `edge_rates`: `(V, L)`, `(E, L)` the `L` leading continuous-time rates
      `Re (λ − 1)/a` of the Jacobian (largest first) at each node and edge saddle.
    - `higher`: a list of `(index, frozenset of node indices)` for the saddles of index >= 2.
    - `n_unmatched`: branches of index-1 saddles that reached no memory state (or the saddle's
      two branches reached the same one).
    - `dimension`: `(V,)` int, each node's marginal dimension (0: an attractor), or None.
    """

    labels: np.ndarray
    outputs: np.ndarray
    points: np.ndarray
    edges: np.ndarray
    saddles: np.ndarray
    node_rates: np.ndarray
    edge_rates: np.ndarray
    higher: list
    n_unmatched: int
    dimension: np.ndarray | None = None

    @property
    def n_nodes(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edges.shape[0])

    def labelled_edges(self) -> collections.Counter:
        """The multiset of edges as unordered pairs of node labels (tuples of ints)."""
        labels = [tuple(int(v) for v in row) for row in self.labels]
        return collections.Counter(tuple(sorted((labels[i], labels[j]))) for i, j in self.edges)

    def without_edge(self, e: int) -> "MemberGraph":
        """The same graph with edge `e` removed."""
        keep = np.arange(self.n_edges) != e
        return dataclasses.replace(
            self, edges=self.edges[keep], saddles=self.saddles[keep], edge_rates=self.edge_rates[keep]
        )

    def to_dict(self) -> dict:
        """JSON-ready summary: node labels, edges, degree counts, higher saddles."""
        out = {
            "n_nodes": self.n_nodes,
            "n_edges": self.n_edges,
            "labels": self.labels.tolist(),
            "edges": self.edges.tolist(),
            "higher": [[d, sorted(s)] for d, s in self.higher],
            "n_unmatched": self.n_unmatched,
        }
        if self.dimension is not None:
            out["dimension"] = self.dimension.tolist()
        return out

    def _table(self) -> tuple[str, list[str], list[list[str]]]:
        degree = np.bincount(self.edges.reshape(-1), minlength=self.n_nodes) if self.n_edges else np.zeros(self.n_nodes)
        header = ["node", "label", "degree", "dimension"]
        body = [
            [
                str(i),
                " ".join(str(int(v)) for v in self.labels[i]),
                str(int(degree[i])),
                "?" if self.dimension is None else str(int(self.dimension[i])),
            ]
            for i in range(self.n_nodes)
        ]
        title = (
            f"MemberGraph: {self.n_nodes} nodes, {self.n_edges} edges, {len(self.higher)} higher saddles, "
            f"{self.n_unmatched} unmatched branches"
        )
        return title, header, body


@functools.partial(jax.jit, static_argnames=("chunk",))
def _follow(ensemble, inputs, h0, settle_tol, max_chunks, *, chunk):
    """Iterate each member's `F` from `(K, B, S)` states until every speed `‖F(h) − h‖∞ <= settle_tol`
    or `chunk · max_chunks[k]` steps (`(K,)` ints). Returns the `(K, B, S)` final states, their `(K, B)` speeds
    `q = ½‖F(h) − h‖²` and `(K, B, O)` readouts."""
    with jax.default_matmul_precision("highest"):

        def member(model, x, h, max_chunks):
            F = jax.vmap(lambda s: model.step(s, x))

            def speed(h):
                return jnp.max(jnp.abs(F(h) - h), axis=-1)

            def body(carry):
                i, h = carry
                return i + 1, jax.lax.fori_loop(0, chunk, lambda _, h: F(h), h)

            def cond(carry):
                i, h = carry
                return (i < max_chunks) & jnp.any(speed(h) > settle_tol)

            _, h = jax.lax.while_loop(cond, body, (jnp.asarray(0), h))
            return h, 0.5 * jnp.sum((F(h) - h) ** 2, axis=-1), model.readout(model.hidden(h))

        return jax.vmap(member)(ensemble, inputs, h0, max_chunks)


def _follow_grouped(params, inputs, h0, n_starts, settle_tol, max_chunks, chunk, dt):
    """`_follow` of the `(K, W, S)` branch starts `h0`, of which member `k` has `n_starts[k]`: the members
    in groups of equal padded count (a power of two), each group with only its own width, so that one
    member with a thousand saddles does not make the others follow padding. Returns `(K, W, S)` final
    states, `(K, W)` speeds and `(K, W, O)` readouts, float64 (zeros beyond a member's starts)."""
    k, w, s = h0.shape
    size = np.asarray([min(w, _pad_pow2(n)) for n in n_starts])
    final, end_q = np.zeros((k, w, s)), np.zeros((k, w))
    end_out = None
    for width in np.unique(size):
        rows = np.flatnonzero(size == width)

        def pick(a):
            return jax.tree_util.tree_map(lambda v: v[rows], a)

        f, q, o = _follow(
            pick(params),
            jnp.asarray(inputs[rows], dt),
            jnp.asarray(h0[rows, :width], dt),
            jnp.asarray(settle_tol, dt),
            jnp.asarray(max_chunks[rows]),
            chunk=chunk,
        )
        if end_out is None:
            end_out = np.zeros((k, w, o.shape[-1]))
        final[rows, :width], end_q[rows, :width], end_out[rows, :width] = (np.asarray(v, np.float64) for v in (f, q, o))
    return final, end_q, end_out


def _unstable_directions(jacobian: np.ndarray, eigvecs: np.ndarray | None, index: int) -> np.ndarray:
    """`(2^index, S)` unit directions `Σ_i s_i v_i / √index` over the sign patterns `s` (in
    `itertools.product((1, -1), ...)` order) of the `index` leading (largest `|λ|`) real eigenvectors."""
    if eigvecs is None:
        vals, vecs = np.linalg.eig(np.asarray(jacobian, np.float64))
        vecs = vecs[:, np.argsort(-np.abs(vals), kind="stable")]
    else:
        vecs = eigvecs
    d = np.real(vecs[:, :index]).T
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-30)
    signs = np.asarray(list(itertools.product((1.0, -1.0), repeat=index)))
    combo = signs @ d
    return combo / np.maximum(np.linalg.norm(combo, axis=1, keepdims=True), 1e-30)


def _nearest_slow_state(node, dist, state, memory, k, pool_q, end_q, end_out, floor):
    """Branch ends `node (D, B)` of a member with marginal memory states, completed: an unmatched end
    whose speed `end_q` is at most the slowest memory-state point's (`max(pool_q)`, at least `floor`) has
    stopped on a memory state (a marginal one never settles exactly) and goes to the nearest state with the
    label of its readout `end_out (D, B, O)` (any state without readouts). `dist (D, B, P)`: distances to the
    member's memory-state points, `state (P,)` their states."""
    allowed = np.ones(dist.shape, bool)
    if memory.readouts is not None:
        end_label = np.argmin(np.linalg.norm(end_out[:, :, None, :] - memory.readouts[None, None], axis=3), axis=2)
        allowed = memory.label[k][state][None, None, :] == end_label[:, :, None]
    masked = np.where(allowed, dist, np.inf)
    slow = (end_q <= max(float(pool_q.max()), floor)) & np.isfinite(masked.min(axis=2))
    return np.where((node < 0) & slow, state[masked.argmin(axis=2)], node)


def _rates(eigvals: np.ndarray, alpha: float, leading: int) -> np.ndarray:
    """The `leading` largest continuous-time rates `Re (λ − 1)/a`, padded with NaN."""
    r = np.sort((np.real(eigvals) - 1) / alpha)[::-1][:leading]
    return np.pad(r.astype(np.float64), (0, leading - len(r)), constant_values=np.nan)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Topology(Result):
    """The topology graphs of every member of an ensemble (`topology_graph`'s result).

    **Fields:** `n_members`; `graphs`, a list of `K` `MemberGraph`s; `branch_node`, a list of `K`
    arrays `(D_k, 2^max_index)` int, the node reached by each branch of each saddle of member `k`
    (−1: none; the branches beyond a saddle's `2^index` also −1); `saddle_point`, a list of `K` arrays
    `(D_k,)`, the saddles' indices into the `FixedPoints` arrays; `memory`, the `MemoryStates` the nodes
    are (node `i` of member `k` is its memory state `i`).
    """

    n_members: int
    graphs: list
    branch_node: list
    saddle_point: list
    memory: MemoryStates | None = None

    def __getitem__(self, k: int) -> MemberGraph:
        return self.graphs[k]

    def __len__(self) -> int:
        return self.n_members

    def to_dict(self) -> dict:
        """`n_members`, each graph's `MemberGraph.to_dict()`, `branch_node` and `saddle_point` (nested lists per
        member), and the memory states' `MemoryStates.to_dict()` (or None)."""
        return jsonable(
            {
                "n_members": int(self.n_members),
                "graphs": [g.to_dict() for g in self.graphs],
                "branch_node": [np.asarray(b).tolist() for b in self.branch_node],
                "saddle_point": [np.asarray(p).tolist() for p in self.saddle_point],
                "memory": None if self.memory is None else self.memory.to_dict(),
            }
        )

    def _table(self) -> tuple[str, list[str], list[list[str]]]:
        header = ["member", "nodes", "edges", "higher saddles", "unmatched branches"]
        body = [
            [str(k), str(g.n_nodes), str(g.n_edges), str(len(g.higher)), str(g.n_unmatched)]
            for k, g in enumerate(self.graphs)
        ]
        return f"Topology: {self.n_members} member(s)", header, body


def topology_graph(
    ensemble,
    fixed_points: FixedPoints,
    *,
    eps: float = 1e-2,
    max_steps: int = 20000,
    chunk: int = 200,
    settle_tol: float = 1e-5,
    match_tol: float | None = None,
    resolution: float = 1.0,
    max_index: int = 3,
    leading: int = 3,
    memory: MemoryStates | None = None,
    readouts=None,
    hold_steps: int | None = None,
) -> Topology:
    """The topology graph of every member: which memory states each saddle's unstable branches reach.

    **Arguments:**

    - `ensemble`: the stacked ensemble of `K` members (any cell) that `fixed_points` belongs to.
    - `fixed_points`: `find_fixed_points`' (or `complete_saddles`') result, at the input the branches
      are followed at (`fixed_points.inputs`).
    - `eps`: the step along each unstable eigenvector from the saddle (> 0, Euclidean norm).
    - `max_steps`, `chunk`: at most `max_steps` steps of `F`, checked for settling every `chunk` steps.
    - `settle_tol`: a state has settled when `‖F(h) − h‖∞ <= settle_tol`.
    - `match_tol`: a branch reaches the memory state of the member's nearest memory-state point when it
      ends within this distance of it; `None` for a quarter of the smallest distance between two points of
      different memory states (for attractors: between two stable points; `inf` with one memory state).
    - `resolution`: node labels are `rint(readout / resolution)` (> 0).
    - `max_index`: saddles of index up to this are followed (>= 1); higher ones are ignored.
    - `leading`: rates kept per point for `linearization_distance` (>= 1).
    - `memory`: the nodes, a `MemoryStates` of `fixed_points`; None for `memory_states(fixed_points,
      readouts=readouts)`.
    - `readouts`: `(C, O)` the task's memory readouts (`memory_readouts()`), or None (see `memory_states`).
    - `hold_steps`: a member with a marginal memory state runs its branches at most this many steps
      (rounded up to whole `chunk`s, at most `max_steps`; they stop earlier only if every branch settles);
      None for `max_steps`.

    **Returns:** a `Topology`, whose item `k` is member `k`'s `MemberGraph`.
    """
    ensemble, k, s = matching(ensemble, fixed_points)
    eps = check_positive("eps", eps)
    max_steps = check_int("max_steps", max_steps, 1)
    chunk = min(check_int("chunk", chunk, 1), max_steps)
    settle_tol = check_positive("settle_tol", settle_tol)
    if match_tol is not None:
        match_tol = check_positive("match_tol", match_tol)
    resolution = check_positive("resolution", resolution)
    max_index = check_int("max_index", max_index, 1)
    leading = check_int("leading", leading, 1)
    hold_steps = max_steps if hold_steps is None else min(check_int("hold_steps", hold_steps, 1), max_steps)
    if memory is None:
        memory = memory_states(fixed_points, readouts=readouts)
    elif not isinstance(memory, MemoryStates) or memory.n_members != k:
        raise TypeError(f"`memory` must be the MemoryStates of `fixed_points` ({k} members), got {memory!r}.")

    fp = fixed_points
    alphas = member_dt_tau(ensemble)
    points = fp.points.astype(np.float64)
    saddles = [
        np.flatnonzero((fp.member == kk) & (fp.n_unstable >= 1) & (fp.n_unstable <= max_index)) for kk in range(k)
    ]
    n_branch = 2**max_index
    width = max(1, max(len(sd) for sd in saddles) * n_branch)
    h0 = np.zeros((k, width, s))
    for kk, sd in enumerate(saddles):
        starts = []
        for p in sd:
            dirs = _unstable_directions(
                fp.jacobians[p], None if fp.eigvecs is None else fp.eigvecs[p], int(fp.n_unstable[p])
            )
            dirs = np.concatenate([dirs, np.repeat(dirs[:1], n_branch - len(dirs), axis=0)])  # pad
            starts.append(points[p] + eps * dirs)
        if starts:
            h0[kk, : len(sd) * n_branch] = np.concatenate(starts)
    dt = jnp.dtype(fp.points.dtype)
    params = jax.tree_util.tree_map(lambda v: jnp.asarray(v, dt), ensemble)
    marginal = np.asarray([np.any(memory.dimension[kk] > 0) for kk in range(k)])
    steps = np.where(marginal, hold_steps, max_steps)
    final, end_q, end_out = _follow_grouped(
        params,
        np.asarray(fp.inputs),
        h0,
        [len(sd) * n_branch for sd in saddles],
        settle_tol,
        -(-steps // chunk),
        chunk,
        dt,
    )
    floor = 0.5 * s * (10 * float(np.finfo(dt).eps)) ** 2  # the default tol_q: speeds below are rounding

    graphs, branch_nodes = [], []
    for kk, sd in enumerate(saddles):
        nodes = memory.representative[kk]
        pool = np.concatenate([np.zeros(0, np.int64), *memory.points[kk]])  # every memory-state point
        state = np.repeat(np.arange(len(nodes)), [len(g) for g in memory.points[kk]])
        tol = match_tol
        if tol is None:
            tol = math.inf
            if len(nodes) >= 2:
                dd = pairwise_distances(points[pool], points[pool])
                dd[state[:, None] == state[None, :]] = np.inf
                tol = 0.25 * float(dd.min())
        ends = final[kk, : len(sd) * n_branch].reshape(len(sd), n_branch, s)
        if len(nodes) and len(sd):
            dist = pairwise_distances(ends.reshape(-1, s), points[pool]).reshape(len(sd), n_branch, len(pool))
            node = np.where(dist.min(axis=2) <= tol, state[dist.argmin(axis=2)], -1)
            if marginal[kk]:  # a branch that ends as slow as the memory states is on one: the nearest
                node = _nearest_slow_state(
                    node,
                    dist,
                    state,
                    memory,
                    kk,
                    fp.q[pool].astype(np.float64),
                    end_q[kk, : len(sd) * n_branch].reshape(len(sd), n_branch),
                    end_out[kk, : len(sd) * n_branch].reshape(len(sd), n_branch, -1),
                    floor,
                )
        else:
            node = np.full((len(sd), n_branch), -1)
        index = fp.n_unstable[sd]
        node[np.arange(n_branch)[None, :] >= 2 ** index[:, None]] = -1  # padding branches
        branch_nodes.append(node)
        one = index == 1
        a_node, b_node = node[one, 0], node[one, 1]
        ok = (a_node >= 0) & (b_node >= 0) & (a_node != b_node)
        edges = np.sort(np.stack([a_node[ok], b_node[ok]], axis=1), axis=1).astype(np.int64)
        edge_pts = sd[one][ok]
        # a marginal saddle lies on a manifold of saddles, found as many points: one edge per pair of states
        assert fp.n_marginal is not None  # the finder sets it
        marginal_saddle = np.flatnonzero(fp.n_marginal[edge_pts] > 0)
        keep = np.ones(len(edges), bool)
        if len(marginal_saddle):
            keep[marginal_saddle] = False
            keep[marginal_saddle[np.unique(edges[marginal_saddle], axis=0, return_index=True)[1]]] = True
        edges, edge_pts = edges[keep], edge_pts[keep]
        a = alphas[kk]
        higher = [(int(index[i]), frozenset(int(v) for v in node[i] if v >= 0)) for i in np.flatnonzero(~one)]
        outputs = fp.outputs[nodes].astype(np.float64).reshape(len(nodes), fp.outputs.shape[-1])

        def rates(idx, a=a):
            return np.asarray([_rates(fp.eigvals[p], a, leading) for p in idx], np.float64).reshape(len(idx), leading)

        graphs.append(
            MemberGraph(
                labels=np.rint(outputs / resolution).astype(np.int64),
                outputs=outputs,
                points=points[nodes],
                edges=edges.reshape(-1, 2),
                saddles=points[edge_pts],
                node_rates=rates(nodes),
                edge_rates=rates(edge_pts),
                higher=higher,
                n_unmatched=int(2 * np.sum(one) - 2 * np.sum(ok)),
                dimension=memory.dimension[kk],
            )
        )
    return Topology(n_members=k, graphs=graphs, branch_node=branch_nodes, saddle_point=saddles, memory=memory)


def _check_graph(name: str, g: object) -> MemberGraph:
    if not isinstance(g, MemberGraph):
        raise TypeError(
            f"`{name}` must be a MemberGraph (an item of `topology_graph`'s result), got {type(g).__name__}."
        )
    return g


def topology_distance(a: MemberGraph, b: MemberGraph) -> float:
    """Labelled topology distance `|A Δ B| / |A ∪ B|` in [0, 1] between the multisets of labelled edges
    (unordered pairs of node labels) of two graphs; over the node labels when neither has an edge;
    NaN when either graph has no node (no memory states: undefined)."""
    a, b = _check_graph("a", a), _check_graph("b", b)
    if not a.n_nodes or not b.n_nodes:
        return math.nan
    ea, eb = a.labelled_edges(), b.labelled_edges()
    if not ea and not eb:
        ea = collections.Counter(tuple(int(v) for v in row) for row in a.labels)
        eb = collections.Counter(tuple(int(v) for v in row) for row in b.labels)
    return float(sum(((ea - eb) + (eb - ea)).values()) / sum((ea | eb).values()))


def _spectrum(g: MemberGraph) -> np.ndarray:
    adj = np.zeros((g.n_nodes, g.n_nodes))
    for i, j in g.edges:
        adj[i, j] += 1
        adj[j, i] += 1
    lap = np.diag(adj.sum(axis=1)) - adj + np.eye(g.n_nodes)
    return np.sort(np.linalg.eigvalsh(lap))[::-1] if g.n_nodes else np.zeros(0)


def graph_spectrum_distance(a: MemberGraph, b: MemberGraph) -> float:
    """Label-free distance in [0, 1]: `‖s_a − s_b‖ / (‖s_a‖ + ‖s_b‖)` between the descending spectra of
    `L + I` (graph Laplacian plus identity), the shorter one zero-padded. 0 for isomorphic graphs;
    it sees the number of nodes, of edges and how they are arranged, not the labels. NaN when either
    graph has no node."""
    sa, sb = _spectrum(_check_graph("a", a)), _spectrum(_check_graph("b", b))
    if not len(sa) or not len(sb):
        return math.nan
    n = max(len(sa), len(sb))
    sa, sb = np.pad(sa, (0, n - len(sa))), np.pad(sb, (0, n - len(sb)))
    return float(np.linalg.norm(sa - sb) / (np.linalg.norm(sa) + np.linalg.norm(sb)))  # L + I: norms >= 1


def linearization_distance(a: MemberGraph, b: MemberGraph) -> float:
    """Mean absolute difference of the leading continuous-time rates `Re (λ − 1)/a` at the stable
    points with the same label and the index-1 saddles with the same pair of labels (the first of each
    label in either graph); NaN when nothing matches (in particular when either graph has no node)."""
    a, b = _check_graph("a", a), _check_graph("b", b)

    def keyed(g):
        labels = [tuple(int(v) for v in row) for row in g.labels]
        out = {}
        for i, lab in enumerate(labels):
            out.setdefault(("node", lab), g.node_rates[i])
        for e, (i, j) in enumerate(g.edges):
            out.setdefault(("edge", *sorted((labels[i], labels[j]))), g.edge_rates[e])
        return out

    ka, kb = keyed(a), keyed(b)
    diffs = [np.abs(ka[key] - kb[key]) for key in ka.keys() & kb.keys()]
    diffs = [d[np.isfinite(d)] for d in diffs]
    diffs = [d for d in diffs if d.size]
    return float(np.mean(np.concatenate(diffs))) if diffs else math.nan


def pairwise_graph_distances(graphs: list, metric: str = "labelled") -> np.ndarray:
    """`(G, G)` symmetric matrix of a distance between every pair of `MemberGraph`s: `metric` is
    `"labelled"` (`topology_distance`), `"spectrum"` (`graph_spectrum_distance`) or `"linearization"`
    (`linearization_distance`). The row and column of a graph without nodes are NaN (its diagonal
    entry too); the other diagonal entries are 0."""
    fns = {"labelled": topology_distance, "spectrum": graph_spectrum_distance, "linearization": linearization_distance}
    if metric not in fns:
        raise ValueError(f"`metric` must be one of {', '.join(fns)}, got {metric!r}.")
    if not isinstance(graphs, (list, tuple)) or not graphs:
        raise ValueError("`graphs` must be a non-empty list of MemberGraphs.")
    for i, g in enumerate(graphs):
        _check_graph(f"graphs[{i}]", g)
    n = len(graphs)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = fns[metric](graphs[i], graphs[j])
    for i in range(n):
        out[i, i] = 0.0 if graphs[i].n_nodes else math.nan
    return out


__all__ = [
    "MemberGraph",
    "Topology",
    "graph_spectrum_distance",
    "linearization_distance",
    "pairwise_graph_distances",
    "topology_distance",
    "topology_graph",
]
